"""The stream worker end to end on the real broker: templates, config changes, poison events,
the ready gate, metrics and health endpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from cloudevents.v1.http import CloudEvent
from cloudevents.v1.kafka import to_binary, to_structured

from integration.harness import TEMPLATES, Deployment, cloudevent, ids_of, wait_until

pytestmark = pytest.mark.integration

# Template -> (the action topics its sample event must reach, in action order).
EXPECTED_ACTIONS = {
    "order-confirmation": ["actions.email", "actions.sms"],
    "low-stock-alert": ["actions.email"],
    "welcome-email": ["actions.email", "actions.entity-commands"],
    "vip-customer-tag": ["actions.entity-commands"],
    "abandoned-cart": ["actions.email"],
}


def _template(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((TEMPLATES / "workflows" / f"{name}.yaml").read_text())
    return loaded


def _sample_event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((TEMPLATES / "events" / f"{name}.json").read_text())
    return loaded


def _topic_for(event_type: str) -> str:
    family = event_type.split(".", maxsplit=1)[0]
    return {
        "order": "events.orders",
        "user": "events.users",
        "product": "events.products",
        "scheduled": "events.scheduled",
        "cart": "events.carts",
    }[family]


def _produce_sdk(deployment: Deployment, event: dict[str, Any], *, binary: bool) -> None:
    """Publish as an upstream service would, with the CNCF CloudEvents SDK."""
    attributes = {k: v for k, v in event.items() if k not in {"data", "specversion"}}
    attributes["datacontenttype"] = "application/json"
    sdk_event = CloudEvent(attributes, event["data"])
    message = to_binary(sdk_event) if binary else to_structured(sdk_event)
    deployment.produce(
        _topic_for(event["type"]),
        message.value,
        key=(event.get("subject") or "").encode(),
        headers=list(message.headers.items()),
    )


def test_each_template_fires_on_its_event_with_actions_and_an_execution_record(
    deployment: Deployment,
) -> None:
    for name in EXPECTED_ACTIONS:
        deployment.publish_definition(_template(name))
    worker = deployment.start_worker()
    assert worker.wait_ready()["workflows"] == 5

    events = {name: _sample_event(name) for name in EXPECTED_ACTIONS}
    for number, event in enumerate(events.values()):
        _produce_sdk(deployment, event, binary=number % 2 == 0)

    # order.created for the VIP sample (total 1499) fires both order workflows.
    expected_runs = {(name, events[name]["id"]) for name in EXPECTED_ACTIONS}
    expected_runs.add(("order-confirmation", events["vip-customer-tag"]["id"]))
    executions = deployment.executions(
        until=lambda found: (
            {(e["workflow_id"], e["trigger_event_id"]) for e in found} >= expected_runs
        )
    )
    by_run = {(e["workflow_id"], e["trigger_event_id"]): e for e in executions}
    assert len(by_run) == len(executions), "no execution is recorded twice"
    # The order-confirmation sample (total 129.9) must not tag a VIP.
    assert ("vip-customer-tag", events["order-confirmation"]["id"]) not in by_run

    for name, topics in EXPECTED_ACTIONS.items():
        record = by_run[(name, events[name]["id"])]
        assert record["status"] == "success", record
        # the abandoned cart is an absence watch: its sample cart's 24 hours are long over, so
        # its timer runs it as soon as the grace has passed
        assert record["triggered_by"] == ("timer" if name == "abandoned-cart" else "event")
        assert record["workflow_version"] == 1
        assert [a["topic"] for a in record["actions"]] == [deployment.topic(t) for t in topics]
        for action in record["actions"]:
            messages = deployment.read_json(
                action["topic"].removeprefix(deployment.prefix),
                until=lambda found, a=action: any(m["action_id"] == a["action_id"] for m in found),
            )
            message = next(m for m in messages if m["action_id"] == action["action_id"])
            assert message["workflow_id"] == name
            assert message["event_id"] == events[name]["id"]
            assert message["execution_id"] == record["execution_id"]

    low_stock = by_run[("low-stock-alert", events["low-stock-alert"]["id"])]
    email = deployment.read_json(
        "actions.email",
        until=lambda found: any(m["execution_id"] == low_stock["execution_id"] for m in found),
    )
    body = next(m for m in email if m["execution_id"] == low_stock["execution_id"])["params"]
    assert "Vitamin D3 1000 IU" in body["body"], "the seed's {{productName}} template rendered"


def _workflow(
    workflow_id: str,
    *,
    version: int = 1,
    enabled: bool = True,
    subject: str = "v1",
    conditions: str | None = None,
) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "kind": "workflow",
        "id": workflow_id,
        "version": version,
        "name": workflow_id,
        "trigger": "order.created",
        "enabled": enabled,
        "created_by": "tests",
        "actions": [
            {
                "type": "send_email",
                "to": "ops@example.com",
                "subject": subject,
                "body": "order {{orderId}}",
            }
        ],
    }
    if conditions:
        definition["conditions"] = conditions
    return definition


def test_disabled_workflow_does_not_fire_and_changes_reach_a_running_worker(
    deployment: Deployment,
) -> None:
    deployment.publish_definition(_workflow("always"))
    deployment.publish_definition(_workflow("switched-off", enabled=False))
    deployment.publish_definition(_workflow("changing", subject="first"))
    worker = deployment.start_worker()
    assert worker.wait_ready()["workflows"] == 3

    def send(event_id: str) -> None:
        event = cloudevent("order.created", {"orderId": event_id, "total": 10}, event_id=event_id)
        deployment.produce("events.orders", orjson.dumps(event), key=event_id.encode())

    send("e1")
    first = deployment.executions(
        until=lambda f: {"e1"} <= set(ids_of(f, "changing")) and "e1" in ids_of(f, "always")
    )
    assert "e1" not in ids_of(first, "switched-off")

    # A new version replaces the old one on the running worker.
    deployment.publish_definition(_workflow("changing", version=2, subject="second"))
    # A tombstone deletes "always".
    deployment.delete_definition("always")
    # Wait until the worker has applied both (the config gauge drops to 1 enabled + 1 disabled).
    wait_until(
        lambda: (
            worker.metric("eventrules_definitions_loaded", kind="workflow", enabled="true") == 1
        ),
        what="the running worker to apply the new version and the tombstone",
    )
    send("e2")
    after = deployment.executions(until=lambda f: "e2" in ids_of(f, "changing"))
    changed = next(e for e in after if e["trigger_event_id"] == "e2")
    assert changed["workflow_version"] == 2
    assert "e2" not in ids_of(after, "always"), "a deleted workflow must not fire"
    assert "e2" not in ids_of(after, "switched-off")


def test_invalid_definition_is_rejected_and_the_previous_version_stays(
    deployment: Deployment,
) -> None:
    deployment.publish_definition(_workflow("keeper", subject="good"))
    worker = deployment.start_worker()
    worker.wait_ready()
    broken = _workflow("keeper", version=2)
    broken["trigger"] = "order.teleported"  # not in the trigger catalog
    deployment.publish_definition(broken)
    deployment.produce("config", b"{not json", key=b"workflow:keeper")
    wait_until(
        lambda: (
            worker.metric("eventrules_config_rejects_total", kind="workflow", reason="invalid") == 1
        ),
        what="the invalid definition to be rejected",
    )
    assert worker.metric("eventrules_config_rejects_total", kind="workflow", reason="not_json") == 1
    event = cloudevent("order.created", {"orderId": "k1"}, event_id="k1")
    deployment.produce("events.orders", orjson.dumps(event))
    executions = deployment.executions(until=lambda f: "k1" in ids_of(f, "keeper"))
    assert executions[-1]["workflow_version"] == 1


def test_poison_events_are_dead_lettered_and_the_next_good_event_is_processed(
    deployment: Deployment,
) -> None:
    deployment.publish_definition(_workflow("catch-all"))
    worker = deployment.start_worker(EVENTRULES_MAX_EVENT_BYTES="4096")
    worker.wait_ready()

    poison = {
        "not_json": b"\x00\x01 definitely not json",
        "not_cloudevent": orjson.dumps({"hello": "world"}),
        "missing_type": orjson.dumps({"specversion": "1.0", "id": "x", "source": "s"}),
        "oversized": orjson.dumps(cloudevent("order.created", {"blob": "x" * 5000})),
    }
    for reason, value in poison.items():
        deployment.produce(
            "events.orders", value, key=reason.encode(), headers=[("trace", reason.encode())]
        )
    good = cloudevent("order.created", {"orderId": "after-poison"}, event_id="after-poison")
    deployment.produce("events.orders", orjson.dumps(good))

    executions = deployment.executions(until=lambda f: "after-poison" in ids_of(f))
    assert ids_of(executions) == ["after-poison"]

    dead = deployment.read("dlq", until=lambda found: len(found) >= 4)
    assert len(dead) == 4
    by_reason = {}
    for record in dead:
        headers = {name: value.decode() for name, value in record.headers() or []}
        by_reason[headers["dlq.reason"]] = (record, headers)
    assert set(by_reason) == set(poison)
    for reason, (record, headers) in by_reason.items():
        assert record.value() == poison[reason], "the original bytes are kept"
        assert record.key() == reason.encode()
        assert headers["dlq.source.topic"] == deployment.topic("events.orders")
        assert int(headers["dlq.source.offset"]) >= 0
        assert headers["dlq.error"]
        assert headers["trace"] == reason, "the original headers are kept"
        assert worker.metric("eventrules_events_dead_lettered_total", reason=reason) == 1
    assert worker.get("/healthz").status_code == 200


def test_ready_gate_holds_events_until_the_config_table_is_loaded(
    deployment: Deployment, tmp_path: Path
) -> None:
    # Many definitions ahead of the one the event needs: without the gate the event would be
    # evaluated against a half-loaded table and match nothing.
    for number in range(1500):
        deployment.produce(
            "config",
            orjson.dumps(_workflow(f"filler-{number}", conditions="total > 1000000")),
            key=f"workflow:filler-{number}".encode(),
        )
    deployment.publish_definition(_workflow("the-last-one"))
    event = cloudevent("order.created", {"orderId": "gate", "total": 1}, event_id="gate")
    deployment.produce("events.orders", orjson.dumps(event))

    worker = deployment.start_worker()
    executions = deployment.executions(until=lambda f: "gate" in ids_of(f))
    assert ids_of(executions) == ["gate"]
    assert executions[0]["workflow_id"] == "the-last-one"
    assert worker.wait_ready()["workflows"] == 1501
    assert worker.metric("eventrules_ready") == 1


def test_metrics_endpoint_exposes_the_documented_families(deployment: Deployment) -> None:
    deployment.publish_definition(_workflow("metered"))
    worker = deployment.start_worker()
    worker.wait_ready()
    event = cloudevent("order.created", {"orderId": "m1"}, event_id="m1")
    deployment.produce("events.orders", orjson.dumps(event))
    deployment.executions(until=lambda f: "m1" in ids_of(f))
    wait_until(
        lambda: (
            worker.metric("eventrules_executions_total", status="success", workflow="metered") == 1
        ),
        what="the execution to be counted",
    )
    text = worker.metrics()
    for family in (
        "eventrules_events_consumed_total",
        "eventrules_workflow_matches_total",
        "eventrules_executions_total",
        "eventrules_execution_duration_seconds_bucket",
        "eventrules_actions_total",
        "eventrules_definitions_loaded",
        "eventrules_ready",
    ):
        assert family in text, family
    assert (
        worker.metric(
            "eventrules_events_consumed_total",
            topic=deployment.topic("events.orders"),
            type="order.created",
        )
        == 1
    )
    response = worker.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
