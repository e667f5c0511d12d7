"""No record stops a worker (issue 11): the reproductions that used to kill or wedge a worker,
against a real broker and a real worker process. Each hostile record ends up in the
dead-letter topic with a reason (or rejected, for config), the worker stays up and healthy,
and the valid records around it are processed."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest
from confluent_kafka import Message, Producer

from integration.harness import Deployment, cloudevent, ids_of, order_workflow, wait_until

pytestmark = pytest.mark.integration


def _headers(record: Message) -> dict[str, str]:
    return {name: (value or b"").decode(errors="replace") for name, value in record.headers() or []}


def _dead_letters(
    deployment: Deployment, reasons: set[str]
) -> list[tuple[Message, dict[str, str]]]:
    """The dead letters, once one of each reason is there (a batch retried after a refused
    output may dead-letter a record twice: at-least-once)."""
    found = deployment.read(
        "dlq",
        until=lambda records: reasons <= {_headers(r).get("dlq.reason", "") for r in records},
        timeout=90,
    )
    return [(record, _headers(record)) for record in found]


def _nested_json(depth: int, leaf: bytes = b'"bottom"') -> bytes:
    """``{"x": {"x": ... leaf}}`` ``depth`` levels deep (orjson writes at most 254)."""
    return b'{"x":' * depth + leaf + b"}" * depth


def _email_workflow() -> dict[str, Any]:
    workflow = order_workflow("email-orders")
    workflow["actions"] = [
        {"type": "send_email", "to": "ops@example.com", "subject": "order", "body": "hi"}
    ]
    return workflow


def test_records_that_used_to_kill_a_worker_are_dead_lettered_and_it_goes_on(
    deployment: Deployment,
) -> None:
    deployment.publish_definition(_email_workflow())
    # Config records that made ConfigTable.apply raise (RecursionError) out of the follower.
    deep_not = order_workflow("deep-not") | {"conditions": "not " * 2000 + "x exists"}
    deployment.publish_definition(deep_not)
    leaf = b'{"field": "orderId", "operator": "exists"}'
    tree = b'{"all": [' * 400 + leaf + b"]}" * 400
    deep_tree = orjson.dumps(order_workflow("deep-tree") | {"conditions": "CONDITIONS"})
    deployment.produce(
        "config", deep_tree.replace(b'"CONDITIONS"', tree), key=b"workflow:deep-tree"
    )
    worker = deployment.start_worker()
    worker.wait_ready()

    # An event orjson reads (300 levels) but cannot write back in the execution record.
    deep_event = cloudevent("order.created", {"orderId": "deep-1", "nested": "NESTED"})
    deep_event["id"] = "deep-1"
    deep = orjson.dumps(deep_event).replace(b'"NESTED"', _nested_json(300))
    deployment.produce("events.orders", deep, key=b"deep-1")
    deployment.produce_orders(["after-deep"])
    # Rule requests that killed the rule-request stream (decimal overflow, an illegal reply_to).
    big = {"correlation_id": "c-big", "rule_type": "pricing", "facts": {"total": 1e308}}
    bad_reply = {
        "correlation_id": "c-bad-topic",
        "rule_type": "pricing",
        "facts": {"total": 10},
        "reply_to": "bad topic!",
    }
    good = {"correlation_id": "c-ok", "rule_type": "pricing", "facts": {"total": 10}}
    for request in (big, bad_reply, good):
        deployment.produce(
            "rules.requests", orjson.dumps(request), key=request["correlation_id"].encode()
        )

    executions = deployment.executions(until=lambda found: "after-deep" in ids_of(found))
    assert "deep-1" not in ids_of(executions)
    # the hostile requests are answered with an error (the rules engine bounds prices, and an
    # illegal reply_to is answered on the results topic), in any order with the good one
    asked = {"c-ok", "c-big", "c-bad-topic"}
    answered = deployment.read_json(
        "rules.results", until=lambda found: asked <= {r["correlation_id"] for r in found}
    )
    replies = {reply["correlation_id"]: reply for reply in answered}
    assert replies["c-ok"]["error"] is None
    assert "out of range" in replies["c-big"]["error"]
    assert "not an allowed reply topic" in replies["c-bad-topic"]["error"]

    # (at-least-once: a batch retried after a refused output may dead-letter a record twice)
    letters = [
        (record, _headers(record))
        for record in deployment.read(
            "dlq", until=lambda found: b"deep-1" in {r.key() for r in found}, timeout=90
        )
    ]
    reasons = {record.key().decode(): headers["dlq.reason"] for record, headers in letters}
    assert reasons["deep-1"] in {"unserialisable", "too_deep"}
    for record, headers in letters:
        assert headers["dlq.error"], "a dead letter says what went wrong"
        assert headers["dlq.source.topic"].startswith(deployment.prefix)
        if record.key() == b"deep-1":
            assert record.value() == deep, "the original bytes are kept"
            assert headers.get("dlq.error.class") or headers["dlq.reason"] == "too_deep"

    # The deep event's email went out at most once (it used to go out again on every restart).
    emails = deployment.read_json("actions.email", until=lambda found: len(found) >= 1)
    assert sum(1 for email in emails if email["event_id"] == "deep-1") <= 1
    rejects = sum(
        float(line.rpartition(" ")[2])
        for line in worker.metrics().splitlines()
        if line.startswith("eventrules_config_rejects_total{")
    )
    assert rejects >= 2, "both unusable definitions were rejected with a metric"
    assert worker.process is not None
    assert worker.process.poll() is None, worker.log_tail()
    assert worker.get("/healthz").status_code == 200


def test_oversized_events_and_refused_outputs_are_dead_lettered_and_the_rest_flows(
    deployment: Deployment,
) -> None:
    # The event topic takes 3 MiB records; the worker's limit stays at 1 MiB and the dead
    # letter of a 2 MiB event is larger than the dlq topic takes.
    deployment.set_topic_config("events.orders", "max.message.bytes", str(3 * 1024 * 1024))
    # The tasks topic refuses records over 4 KiB: an action rendered larger is refused for good.
    deployment.set_topic_config("actions.tasks", "max.message.bytes", "4096")
    workflow = order_workflow("big-titles")
    workflow["actions"] = [{"type": "create_task", "title": "{{orderId}} {{note}}"}]
    deployment.publish_definition(workflow)
    worker = deployment.start_worker()
    worker.wait_ready()

    big_producer = Producer(
        {"bootstrap.servers": deployment.bootstrap, "message.max.bytes": 4 * 1024 * 1024}
    )
    huge = cloudevent(
        "order.created", {"orderId": "huge", "note": "x" * (2 * 1024 * 1024)}, event_id="huge"
    )
    huge_value = orjson.dumps(huge)
    big_producer.produce(
        deployment.topic("events.orders"), huge_value, key=b"k", headers=[("trace", b"t-1")]
    )
    refused = cloudevent("order.created", {"orderId": "refused", "note": "y" * 10_000})
    big_producer.produce(deployment.topic("events.orders"), orjson.dumps(refused), key=b"k")
    for n in range(5):
        ok = cloudevent("order.created", {"orderId": f"ok-{n}", "note": "fine"}, event_id=f"ok-{n}")
        big_producer.produce(deployment.topic("events.orders"), orjson.dumps(ok), key=b"k")
    assert big_producer.flush(30) == 0

    executions = deployment.executions(
        until=lambda found: {f"ok-{n}" for n in range(5)} <= set(ids_of(found))
    )
    # (at-least-once: the refused record's execution record, delivered before its action was
    # refused, may be there too; exactly-once aborts it with the rest of its transaction)
    assert "huge" not in ids_of(executions)
    letters = {
        headers["dlq.reason"]: (record, headers)
        for record, headers in _dead_letters(deployment, {"oversized", "output_rejected"})
    }
    assert set(letters) == {"oversized", "output_rejected"}

    record, headers = letters["oversized"]
    assert headers["dlq.truncated"] == "true"
    assert int(headers["dlq.original.size"]) == len(huge_value)
    assert headers["dlq.original.sha256"] == hashlib.sha256(huge_value).hexdigest()
    assert huge_value.startswith(record.value()), "the kept part is the original's start"
    assert headers["trace"] == "t-1", "the original headers are kept"

    record, headers = letters["output_rejected"]
    assert record.value() == orjson.dumps(refused)
    assert "actions.tasks" in headers["dlq.error"]
    assert worker.metric("eventrules_events_dead_lettered_total", reason="output_rejected") == 1
    wait_until(lambda: worker.get("/healthz").status_code == 200, what="healthz 200")
    assert worker.process is not None
    assert worker.process.poll() is None, worker.log_tail()
