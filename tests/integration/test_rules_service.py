"""Rule decisions from a running worker: HTTP, Kafka request/reply, the CLI on live rules."""

from __future__ import annotations

import json
from typing import Any

import httpx
import orjson
import pytest
import yaml
from click.testing import CliRunner
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from eventrules.cli.main import cli
from integration.harness import TEMPLATES, Deployment, wait_until

pytestmark = pytest.mark.integration

SEED_RULES = [
    "bulk-order-discount",
    "first-order-discount",
    "weekend-special",
    "minimum-order-validation",
]


def _publish_seed_rules(deployment: Deployment) -> None:
    for name in SEED_RULES:
        rule: dict[str, Any] = yaml.safe_load((TEMPLATES / "rules" / f"{name}.yaml").read_text())
        deployment.publish_definition(rule)


def test_http_endpoint_answers_decisions_and_rejects_bad_requests(deployment: Deployment) -> None:
    _publish_seed_rules(deployment)
    worker = deployment.start_worker()
    assert worker.wait_ready()["rules"] == 4
    url = worker.url + "/rules/evaluate"

    bulk = httpx.post(
        url,
        json={
            "rule_type": "pricing",
            "facts": {"total": 600},
            "evaluation_time": "2026-03-04T12:00:00+00:00",
        },
        trust_env=False,
    )
    assert bulk.status_code == 200, bulk.text
    decision = bulk.json()
    assert [m["rule_id"] for m in decision["matched"] if m["applied"]] == ["bulk-order-discount"]
    assert decision["outcome"]["price"]["original"] == "600.00"
    assert decision["outcome"]["price"]["final"] == "510.00"

    small = httpx.post(
        url, json={"rule_type": "validation", "facts": {"total": 12}}, trust_env=False
    )
    assert small.status_code == 200
    assert small.json()["outcome"]["allowed"] is False
    assert small.json()["outcome"]["reasons"]

    not_json = httpx.post(url, content=b"{nope", trust_env=False)
    assert not_json.status_code == 400
    assert "not JSON" in not_json.json()["error"]
    unknown = httpx.post(url, json={"rule_type": "astrology", "facts": {}}, trust_env=False)
    assert unknown.status_code == 422
    assert "astrology" in unknown.json()["error"]
    no_facts = httpx.post(url, json={"rule_type": "pricing"}, trust_env=False)
    assert no_facts.status_code == 422
    assert "facts" in no_facts.json()["error"]

    wait_until(
        lambda: (
            worker.metric(
                "eventrules_rule_evaluations_total", rule="bulk-order-discount", outcome="applied"
            )
            == 1
        ),
        what="the rule evaluation to be counted",
    )
    result = CliRunner().invoke(cli, ["rules", "stats", "--url", worker.url, "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["bulk-order-discount"]["applied"] == 1
    assert stats["minimum-order-validation"]["applied"] == 1
    assert stats["bulk-order-discount"]["last_executed"] is not None


def test_kafka_request_reply_and_malformed_requests(deployment: Deployment) -> None:
    _publish_seed_rules(deployment)
    replies = deployment.topic("rules.replies.checkout")
    admin = AdminClient({"bootstrap.servers": deployment.bootstrap})
    admin.create_topics([NewTopic(replies, 1, 1)])[replies].result(30)
    worker = deployment.start_worker()
    worker.wait_ready()
    deployment.produce(
        "rules.requests",
        orjson.dumps({"correlation_id": "c-1", "rule_type": "pricing", "facts": {"total": 1000}}),
        key=b"c-1",
    )
    deployment.produce(
        "rules.requests",
        orjson.dumps(
            {
                "correlation_id": "c-2",
                "rule_type": "pricing",
                "facts": {"total": 100},
                "reply_to": replies,
            }
        ),
        key=b"c-2",
    )
    deployment.produce("rules.requests", b"{broken", key=b"c-3")
    deployment.produce("rules.requests", orjson.dumps({"correlation_id": "c-4", "facts": {}}))
    deployment.produce("rules.requests", b"no key, not json")

    results = deployment.read("rules.results", until=lambda found: len(found) >= 3)
    by_key = {r.key(): orjson.loads(r.value()) for r in results}
    assert set(by_key) == {b"c-1", b"c-3", b"c-4"}
    assert by_key[b"c-1"]["decision"]["outcome"]["price"]["final"] == "850.00"
    assert by_key[b"c-1"]["error"] is None
    assert "not JSON" in by_key[b"c-3"]["error"]
    assert "rule_type" in by_key[b"c-4"]["error"]

    replied = deployment.read("rules.replies.checkout", until=lambda found: len(found) >= 1)
    assert orjson.loads(replied[0].value())["correlation_id"] == "c-2"
    dead = deployment.read("dlq", until=lambda found: len(found) >= 1)
    headers = dict(dead[0].headers() or [])
    assert headers["dlq.reason"] == b"no_correlation_id"
    assert dead[0].value() == b"no key, not json"


def test_reply_to_cannot_write_to_the_config_or_action_topics(deployment: Deployment) -> None:
    """The attack: a reply keyed like a definition, sent to the config topic, replaced that
    definition (and after compaction erased it); actions.* and events.* were reachable too."""
    _publish_seed_rules(deployment)
    workflow = yaml.safe_load((TEMPLATES / "workflows" / "order-confirmation.yaml").read_text())
    deployment.publish_definition(workflow)
    worker = deployment.start_worker()
    worker.wait_ready()
    for number, target in enumerate(("config", "actions.tasks", "events.orders", "dlq")):
        deployment.produce(
            "rules.requests",
            orjson.dumps(
                {
                    "correlation_id": "workflow:order-confirmation",
                    "rule_type": "pricing",
                    "facts": {"total": 620 + number},
                    "reply_to": deployment.topic(target),
                }
            ),
        )
    refusals = deployment.read("rules.results", until=lambda found: len(found) >= 4)
    for record in refusals:
        assert record.key() == b"workflow:order-confirmation"
        reply = orjson.loads(record.value())
        assert reply["decision"] is None
        assert "is not an allowed reply topic" in reply["error"]
    assert worker.metric("eventrules_rule_replies_refused_total") == 4
    config = deployment.read("config", until=lambda found: len(found) >= 5)
    assert len(config) == 5  # the four rules and the workflow, nothing else
    probe = Consumer({"bootstrap.servers": deployment.bootstrap, "group.id": "probe"})
    try:
        for logical in ("actions.tasks", "events.orders", "dlq"):
            tp = TopicPartition(deployment.topic(logical), 0)
            assert probe.get_watermark_offsets(tp, timeout=10) == (0, 0), logical
    finally:
        probe.close()
    restarted = deployment.start_worker()
    assert restarted.wait_ready()["workflows"] == 1


def test_cli_evaluates_the_live_rules(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    _publish_seed_rules(deployment)
    monkeypatch.setenv("EVENTRULES_BOOTSTRAP_SERVERS", deployment.bootstrap)
    monkeypatch.setenv("EVENTRULES_TOPIC_PREFIX", deployment.prefix)
    result = CliRunner().invoke(
        cli, ["rules", "eval", "--type", "pricing", "--facts", '{"total": 500}', "--json"]
    )
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert decision["outcome"]["price"]["final"] == "425.00"


def nested_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_hostile_rule_requests_get_answers_and_the_worker_stays_up(
    deployment: Deployment,
) -> None:
    _publish_seed_rules(deployment)
    # a rule whose condition used to kill the config follower with a RecursionError
    hostile_rule: dict[str, Any] = yaml.safe_load(
        (TEMPLATES / "rules" / "bulk-order-discount.yaml").read_text()
    )
    deployment.publish_definition(
        {**hostile_rule, "id": "hostile", "conditions": "not " * 2000 + "x exists"}
    )
    worker = deployment.start_worker()
    assert worker.wait_ready()["rules"] == 4
    assert (
        worker.metric("eventrules_config_rejects_total", kind="rule", reason="limit_exceeded") == 1
    )

    base = {"rule_type": "pricing", "facts": {"total": 1000}}
    hostile = {
        b"huge": {**base, "facts": {"total": 1e308}},
        b"late": {**base, "evaluation_time": "9999-12-31T23:59:59-14:00"},
        b"deep": {**base, "facts": {"total": 5, "x": nested_list(30)}},
        b"reply": {**base, "reply_to": "bad topic!"},
    }
    for key, body in hostile.items():
        request = orjson.dumps({"correlation_id": key.decode(), **body})
        deployment.produce("rules.requests", request, key=key)
    # 300 levels: orjson reads it, but no reply could carry it back
    facts = b'{"a":' * 300 + b"1" + b"}" * 300
    deep = b'{"correlation_id": "deeper", "rule_type": "pricing", "facts": ' + facts + b"}"
    deployment.produce("rules.requests", deep, key=b"deeper")
    # a good request behind them is answered too
    deployment.produce("rules.requests", orjson.dumps({"correlation_id": "ok", **base}), key=b"ok")

    results = deployment.read("rules.results", until=lambda found: len(found) >= 6)
    by_key = {r.key(): orjson.loads(r.value()) for r in results}
    assert by_key[b"ok"]["decision"]["outcome"]["price"]["final"] == "850.00"
    assert "out of range" in by_key[b"huge"]["error"]
    assert "evaluation_time" in by_key[b"late"]["error"]
    assert by_key[b"deep"]["decision"] is not None  # 30 levels are within the limit
    assert "not an allowed reply topic" in by_key[b"reply"]["error"]
    assert "deeper than 64" in by_key[b"deeper"]["error"]
    for key in (b"huge", b"late", b"reply", b"deeper"):
        assert by_key[key]["decision"] is None

    assert worker.process is not None
    assert worker.process.poll() is None, worker.log_tail()
    assert worker.get("/healthz").status_code == 200

    url = worker.url + "/rules/evaluate"
    for body in (hostile[b"huge"], hostile[b"late"]):
        answer = httpx.post(url, json=body, trust_env=False)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/json")
        assert "out of range" in answer.json()["error"]
    too_big = httpx.post(url, content=b" " * (2 * 1024 * 1024), trust_env=False)
    assert too_big.status_code == 413
    assert "exceeded" in too_big.json()["error"]
    assert worker.get("/healthz").status_code == 200
