"""The runner's outputs keep the documented shapes (they are built without re-validation)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import jsonschema
import orjson

from eventrules.kafka.records import Record
from eventrules.kafka.topics import load_topic_specs
from eventrules.metrics import Metrics
from eventrules.models.executions import ActionMessage, ExecutionRecord
from eventrules.models.workflows import parse_workflow
from eventrules.runtime.runner import WorkflowRunner
from eventrules.settings import TopicNames
from eventrules.workflows.engine import Engine

from .helpers import Collect

TOPICS = Path(__file__).resolve().parents[3] / "topics"


def _runner() -> tuple[WorkflowRunner, Collect]:
    engine = Engine()
    engine.upsert(
        parse_workflow(
            {
                "kind": "workflow",
                "id": "confirm",
                "name": "confirm",
                "trigger": "order.created",
                "conditions": "total > 10",
                "created_by": "t",
                "actions": [
                    {
                        "type": "send_email",
                        "to": "{{email}}",
                        "subject": "Order {{orderId}}",
                        "body": "b",
                    },
                    {"type": "add_tag", "user_id": "{{userId}}", "tag": "buyer"},
                ],
            }
        )
    )
    sender = Collect()
    return WorkflowRunner(
        engine, topics=TopicNames("p."), sender=sender, metrics=Metrics.create()
    ), sender


def _record(value: bytes, headers: list[tuple[str, bytes | None]] | None = None) -> Record:
    return Record("p.events.orders", 1, 42, b"k", value, headers or [], 1_767_225_600_000)


def _schema(name: str) -> dict[str, Any]:
    spec = next(s for s in load_topic_specs(TOPICS) if s.name == name)
    assert spec.schema_document is not None
    return spec.schema_document


def test_outputs_match_the_models_and_the_topic_schemas() -> None:
    runner, sender = _runner()
    event = {
        "specversion": "1.0",
        "id": "e1",
        "source": "shop",
        "type": "order.created",
        "data": {"total": 50, "email": "a@example.com", "orderId": "o1", "userId": "u1"},
    }
    records = asyncio.run(runner.handle(_record(orjson.dumps(event))))
    assert [r["status"] for r in records] == ["success"]

    topics = [topic for topic, *_ in sender.sent]
    assert topics == ["p.actions.email", "p.actions.entity-commands", "p.executions"]
    for _topic, key, value, _ in sender.sent[:2]:
        message = orjson.loads(value or b"")
        ActionMessage.model_validate(message)
        jsonschema.validate(message, _schema("actions.email"))
        assert key == message["action_id"].encode()
    email = orjson.loads(sender.sent[0][2] or b"")
    assert email["params"]["to"] == "a@example.com"
    assert email["params"]["subject"] == "Order o1"

    _, key, value, _ = sender.sent[2]
    execution = orjson.loads(value or b"")
    ExecutionRecord.model_validate(execution)
    jsonschema.validate(execution, _schema("executions"))
    assert key == b"confirm"
    assert execution["execution_id"] == records[0]["execution_id"]
    assert [a["topic"] for a in execution["actions"]] == topics[:2]
    assert execution["event"]["data"]["orderId"] == "o1"


def test_a_non_matching_event_writes_nothing_and_poison_is_dead_lettered() -> None:
    runner, sender = _runner()
    small = {
        "specversion": "1.0",
        "id": "e2",
        "source": "shop",
        "type": "order.created",
        "data": {"total": 5},
    }
    assert asyncio.run(runner.handle(_record(orjson.dumps(small)))) == []
    assert sender.sent == []

    asyncio.run(runner.handle(_record(b"[1, 2]", [("trace", b"t1")])))
    [(topic, key, value, headers)] = sender.sent
    assert (topic, key, value) == ("p.dlq", b"k", b"[1, 2]")
    named = dict(headers)
    assert named["dlq.reason"] == b"not_cloudevent"
    assert named["dlq.source.offset"] == b"42"
    assert named["trace"] == b"t1"
    registry = runner.metrics.registry
    assert (
        registry.get_sample_value(
            "eventrules_events_dead_lettered_total", {"reason": "not_cloudevent"}
        )
        == 1
    )


def test_event_types_outside_the_catalog_are_counted_as_other() -> None:
    runner, _ = _runner()
    for index in range(50):
        event = {"specversion": "1.0", "id": f"r{index}", "source": "s", "type": f"random.{index}"}
        asyncio.run(runner.handle(_record(orjson.dumps(event))))
    known = {"specversion": "1.0", "id": "k", "source": "s", "type": "order.created"}
    asyncio.run(runner.handle(_record(orjson.dumps(known))))
    runner.metrics.apply_counts()
    samples = [
        sample
        for metric in runner.metrics.registry.collect()
        if metric.name == "eventrules_events_consumed"
        for sample in metric.samples
        if sample.name.endswith("_total")
    ]
    assert {sample.labels["type"]: sample.value for sample in samples} == {
        "other": 50,
        "order.created": 1,
    }
