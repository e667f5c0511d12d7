"""The runner's outputs keep the documented shapes (they are built without re-validation)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import jsonschema
import orjson
import pytest

from eventrules.kafka.records import Record
from eventrules.kafka.topics import load_topic_specs
from eventrules.metrics import Metrics
from eventrules.models.events import Event
from eventrules.models.executions import ActionMessage, ExecutionRecord
from eventrules.models.workflows import parse_workflow
from eventrules.runtime.runner import WorkflowRunner
from eventrules.runtime.state.router import StateRouter
from eventrules.settings import TopicNames
from eventrules.workflows.engine import Engine

from .helpers import Collect, CollectNow

TOPICS = Path(__file__).resolve().parents[3] / "topics"
NOW = datetime(2026, 11, 2, 10, tzinfo=UTC)
# the runner awaits its sender, or sends at once when it can (a stream's KafkaSender)
SENDERS = pytest.mark.parametrize("make_sender", [Collect, CollectNow], ids=["awaited", "now"])


def _runner(sender: Collect | None = None) -> tuple[WorkflowRunner, Collect]:
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
    sender = sender or Collect()
    runner = WorkflowRunner(
        engine, topics=TopicNames("p."), sender=sender, metrics=Metrics.create()
    )
    runner.clock = lambda: NOW
    return runner, sender


def _record(value: bytes, headers: list[tuple[str, bytes | None]] | None = None) -> Record:
    return Record("p.events.orders", 1, 42, b"k", value, headers or [], 1_767_225_600_000)


ORDER = {
    "specversion": "1.0",
    "id": "e1",
    "source": "shop",
    "type": "order.created",
    "data": {"total": 50, "email": "a@example.com", "orderId": "o1", "userId": "u1"},
}


def _schema(name: str) -> dict[str, Any]:
    spec = next(s for s in load_topic_specs(TOPICS) if s.name == name)
    assert spec.schema_document is not None
    return spec.schema_document


@SENDERS
def test_outputs_match_the_models_and_the_topic_schemas(make_sender: type[Collect]) -> None:
    runner, sender = _runner(make_sender())
    event = ORDER
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
    # by default the record references its event instead of copying it
    assert "event" not in execution
    assert execution["event_ref"] == {
        "topic": "p.events.orders",
        "partition": 1,
        "offset": 42,
        "fields": {"total": 50},
    }


@SENDERS
def test_a_record_copies_its_event_when_asked(make_sender: type[Collect]) -> None:
    runner, sender = _runner(make_sender())
    runner.copy_event = True
    event = ORDER
    asyncio.run(runner.handle(_record(orjson.dumps(event))))
    execution = orjson.loads(sender.sent[-1][2] or b"")
    jsonschema.validate(execution, _schema("executions"))
    assert execution["event"]["data"]["orderId"] == "o1"
    assert execution["event"]["id"] == "e1"
    assert execution["event_ref"]["offset"] == 42


def test_a_run_without_a_source_record_copies_its_event() -> None:
    # timers and manual runs have no position to point at: the copy is all replay can use
    runner, _sender = _runner()
    engine = runner.engine
    event = Event.model_validate(
        {
            "id": "e9",
            "source": "shop",
            "type": "order.created",
            "time": datetime(2026, 1, 1, tzinfo=UTC),
            "data": {"total": 70},
        }
    )
    planned = engine.plan(event).workflows[0]
    record = asyncio.run(runner.execute(planned, event, "manual"))
    assert record["event"]["data"] == {"total": 70}
    assert "event_ref" not in record


@SENDERS
def test_a_non_matching_event_writes_nothing_and_poison_is_dead_lettered(
    make_sender: type[Collect],
) -> None:
    runner, sender = _runner(make_sender())
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


def _stateful_runner(sender: Collect | None = None) -> tuple[WorkflowRunner, Collect]:
    engine = Engine()
    for definition in (
        {
            "id": "throttled",
            "trigger": "order.created",
            "throttle": {"key": "{{ orderId }}", "per": "1h"},
            "actions": [{"type": "create_task", "title": "t"}],
        },
        {
            "id": "later",
            "trigger": "order.created",
            "actions": [
                {"type": "create_task", "title": "now"},
                {"type": "create_task", "title": "later {{ orderId }}", "delay": "1d"},
            ],
        },
        {
            "id": "unpaid",
            "absence": {
                "after": "order.created",
                "expect": "payment.received",
                "match_on": "orderId",
                "within": "1h",
            },
            "actions": [{"type": "create_task", "title": "t"}],
        },
    ):
        engine.upsert(parse_workflow({"name": "n", "created_by": "t", **definition}))
    sender = sender or Collect()
    runner = WorkflowRunner(
        engine,
        topics=TopicNames("p."),
        sender=sender,
        metrics=Metrics.create(),
        state=StateRouter("p.state-repartition", sender),
    )
    return runner, sender


def _cloudevent(type_: str, data: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": "e1",
            "source": "shop",
            "type": type_,
            "time": "2026-11-02T10:00:00Z",
            "data": data,
        }
    )


def test_stateful_workflows_and_delayed_actions_go_to_the_state_stream_by_state_key() -> None:
    runner, sender = _stateful_runner()
    records = asyncio.run(runner.handle(_record(_cloudevent("order.created", {"orderId": "o1"}))))
    assert [record["workflow_id"] for record in records] == ["later"]
    (later,) = records
    assert [a["status"] for a in later["actions"]] == ["success", "delayed"]
    assert later["status"] == "success"
    ExecutionRecord.model_validate(later)
    jsonschema.validate(
        orjson.loads(orjson.dumps(later, option=orjson.OPT_UTC_Z)), _schema("executions")
    )
    requests = {
        orjson.loads(value or b"")["op"]: (key, orjson.loads(value or b""))
        for topic, key, value, _ in sender.sent
        if topic == "p.state-repartition"
    }
    assert set(requests) == {"gate", "watch", "delay"}
    assert requests["gate"][0] == b"throttle\x1fthrottled\x1fo1"
    assert requests["watch"][0] == b"unpaid\x1fo1"
    key, delay = requests["delay"]
    assert key == delay["action_id"].encode() == f"{later['execution_id']}.1".encode()
    assert delay["due"] == datetime(2026, 11, 3, 10, tzinfo=UTC).timestamp()
    assert delay["planned"]["actions"] == [
        {
            "index": 1,
            "type": "create_task",
            "status": "ok",
            "missing": [],
            "error": None,
            "params": {
                "title": "later o1",
                "description": "",
                "assignee": None,
                "due_in_hours": None,
            },
        }
    ]
    for _, request in requests.values():
        jsonschema.validate(request, _schema("state-repartition"))


def test_an_expected_event_answers_the_watch_on_the_same_key() -> None:
    runner, sender = _stateful_runner()
    asyncio.run(runner.handle(_record(_cloudevent("payment.received", {"orderId": "o1"}))))
    [(topic, key, value, _)] = sender.sent
    assert (topic, key) == ("p.state-repartition", b"unpaid\x1fo1")
    assert orjson.loads(value or b"")["at"] == datetime(2026, 11, 2, 10, tzinfo=UTC).timestamp()


def test_a_delayed_action_without_a_state_stream_fails_alone() -> None:
    runner, _sender = _stateful_runner()
    runner.state = None
    records = asyncio.run(runner.handle(_record(_cloudevent("order.created", {"orderId": "o1"}))))
    later = next(r for r in records if r["workflow_id"] == "later")
    assert [a["status"] for a in later["actions"]] == ["success", "failed"]
    assert later["status"] == "partial"


def _settled(value: Any) -> Any:
    """``value`` without the run's timings, which differ between any two runs."""
    if isinstance(value, dict):
        return {k: _settled(v) for k, v in value.items() if k != "duration_ms"}
    if isinstance(value, list):
        return [_settled(v) for v in value]
    return value


def _outputs(sender: Collect) -> list[tuple[str, bytes | None, Any]]:
    return [
        (topic, key, _settled(orjson.loads(value or b""))) for topic, key, value, _ in sender.sent
    ]


def _finish(rest: Awaitable[Any] | None) -> Any:
    assert rest is not None, "the record was to be left to the event loop"
    return asyncio.run(cast(Coroutine[Any, Any, Any], rest))


def test_a_plan_of_topic_actions_is_run_before_handle_now_returns() -> None:
    awaited, slow = _runner()
    now, fast = _runner(CollectNow())
    records = asyncio.run(awaited.handle(_record(orjson.dumps(ORDER))))
    assert now.handle_now(_record(orjson.dumps(ORDER))) is None
    assert _outputs(fast) == _outputs(slow), "both paths write the same records"
    assert len(fast.sent) == 3
    execution = orjson.loads(fast.sent[-1][2] or b"")
    for duration in [execution["duration_ms"], *(a["duration_ms"] for a in execution["actions"])]:
        assert duration >= 0
        assert round(duration, 3) == duration, "milliseconds to the microsecond"
    assert _settled(orjson.loads(fast.sent[-1][2] or b"")) == _settled(
        orjson.loads(orjson.dumps(records[0], option=orjson.OPT_UTC_Z))
    )
    for runner in (awaited, now):
        runner.metrics.apply_counts()
    for name, labels in [
        ("eventrules_events_consumed_total", {"topic": "p.events.orders", "type": "order.created"}),
        ("eventrules_executions_total", {"workflow": "confirm", "status": "success"}),
        ("eventrules_actions_total", {"type": "send_email", "status": "success"}),
    ]:
        counts = [r.metrics.registry.get_sample_value(name, labels) for r in (awaited, now)]
        assert counts == [1, 1], name


def test_what_waits_is_left_to_the_awaitable_handle_now_returns() -> None:
    # poison: its dead letter is awaited (it joins the batch like any output)
    runner, sender = _runner(CollectNow())
    rest = runner.handle_now(_record(b"[1, 2]"))
    assert sender.sent == []
    assert _finish(rest) == []
    assert [topic for topic, *_ in sender.sent] == ["p.dlq"]

    # run state and a delayed action: the whole plan is awaited, in its order
    awaited, slow = _stateful_runner()
    now, fast = _stateful_runner(CollectNow())
    for runner in (awaited, now):
        runner.clock = lambda: NOW
    event = _record(_cloudevent("order.created", {"orderId": "o1"}))
    expected = asyncio.run(awaited.handle(event))
    rest = now.handle_now(event)
    assert fast.sent == []
    records = _finish(rest)
    assert [r["workflow_id"] for r in records] == [r["workflow_id"] for r in expected] == ["later"]
    assert _outputs(fast) == _outputs(slow)

    # a webhook is awaited too (here it fails: no webhook client on this runner)
    engine = Engine()
    engine.upsert(
        parse_workflow(
            {
                "id": "hook",
                "name": "n",
                "created_by": "t",
                "trigger": "order.created",
                "actions": [{"type": "call_webhook", "url": "https://hooks.example.com/x"}],
            }
        )
    )
    sender = CollectNow()
    runner = WorkflowRunner(
        engine, topics=TopicNames("p."), sender=sender, metrics=Metrics.create()
    )
    rest = runner.handle_now(_record(orjson.dumps(ORDER)))
    assert sender.sent == []
    (record,) = _finish(rest)
    assert record["actions"][0]["error"] == "webhooks are not configured on this worker"
