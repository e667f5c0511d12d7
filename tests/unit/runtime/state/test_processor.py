"""The state stream's handler over a real partition store, without a broker: decisions, the
changelog writes they make, timers on ticks, hostile requests dead-lettered."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import KafkaError, KafkaException

from eventrules.actions.webhook import WebhookExecutor
from eventrules.errors import KafkaError as RestoreError
from eventrules.errors import OutputRejectedError, StateStoreError
from eventrules.kafka.records import Record
from eventrules.metrics import Metrics
from eventrules.models.workflows import parse_workflow
from eventrules.runtime.deadletters import DeadLetterWriter
from eventrules.runtime.retries import RetryQueue
from eventrules.runtime.runner import WorkflowRunner
from eventrules.runtime.state.processor import StateProcessor
from eventrules.runtime.state.router import StateRouter
from eventrules.runtime.state.store import PartitionStore
from eventrules.settings import TopicNames
from eventrules.workflows.engine import Engine


class Collect:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Any = None,
        *,
        partition: int | None = None,
    ) -> None:
        self.sent.append(
            {"topic": topic, "key": key, "value": value, "headers": headers, "partition": partition}
        )

    def to(self, topic: str) -> list[dict[str, Any]]:
        return [sent for sent in self.sent if sent["topic"] == topic]


class NoProducer:
    def __init__(self, config: dict[str, Any]) -> None:
        self.produced: list[dict[str, Any]] = []

    def produce(self, topic: str, **fields: Any) -> None:
        self.produced.append({"topic": topic, **fields})

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


def _processor(
    sender: Collect, tmp_path: Path, clock: Any = lambda: 1010.0, **runner: Any
) -> StateProcessor:
    """A processor over a real store of partition 2, its outputs collected by ``sender``."""
    metrics = Metrics.create()
    topics = TopicNames("p.")
    router = StateRouter("p.state-repartition", sender)
    processor = StateProcessor(
        client_config={},
        repartition_topic="p.state-repartition",
        changelog_topic="p.state-changelog",
        state_dir=None,
        runner=WorkflowRunner(
            Engine(), topics=topics, sender=sender, metrics=metrics, state=router, **runner
        ),
        router=router,
        sender=sender,  # type: ignore[arg-type]
        dead_letters=DeadLetterWriter(topics.dlq, sender, metrics),
        metrics=metrics,
        grace_seconds=1.0,
        clock=clock,
        make_producer=NoProducer,  # type: ignore[arg-type]
    )
    processor.stores[2] = PartitionStore(tmp_path / "p2.sqlite", 2)
    return processor


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[StateProcessor, Collect, list[float]]]:
    sender = Collect()
    now = [1000.0]
    processor = _processor(sender, tmp_path, lambda: now[0])
    yield processor, sender, now
    for store in processor.stores.values():
        store.close()


def _planned(**extra: Any) -> dict[str, Any]:
    return {
        "workflow_id": "w",
        "name": "w",
        "version": 1,
        "priority": 5,
        "actions": [{"index": 0, "type": "create_task", "params": {"title": "t"}}],
        **extra,
    }


def _event(event_id: str, at: str = "2026-11-02T10:00:00Z") -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "order.created",
        "source": "s",
        "time": at,
        "data": {"orderId": "o1"},
    }


def _handle(processor: StateProcessor, offset: int, request: dict[str, Any] | bytes) -> None:
    value = request if isinstance(request, bytes) else orjson.dumps(request)
    asyncio.run(processor.handle(Record("p.state-repartition", 2, offset, b"k", value, [], None)))


def test_a_gate_runs_the_first_and_throttles_the_next_with_changelog_writes(setup: Any) -> None:
    processor, sender, _ = setup
    gate = {"kind": "throttle", "key": "o1", "limit": 1, "window": 3600.0}
    _handle(processor, 5, {"op": "gate", "planned": _planned(gates=[gate]), "event": _event("a")})
    _handle(processor, 6, {"op": "gate", "planned": _planned(gates=[gate]), "event": _event("b")})
    assert len(sender.to("p.actions.tasks")) == 1
    (change,) = sender.to("p.state-changelog")
    assert change["partition"] == 2
    assert change["key"] == b"throttle\x1fw\x1fo1"
    assert change["headers"] == [("eventrules-input-offset", b"5")]
    assert orjson.loads(change["value"])["value"]["kind"] == "throttle"
    processor.metrics.apply_counts()  # as the stream does after each batch
    registry = processor.metrics.registry
    labels = {"workflow": "w", "decision": "throttled"}
    assert registry.get_sample_value("eventrules_state_decisions_total", labels) == 1


def test_a_second_gate_is_asked_of_the_owner_of_its_key(setup: Any) -> None:
    processor, sender, _ = setup
    gates = [
        {"kind": "dedupe", "key": "o1", "limit": 1, "window": 60.0},
        {"kind": "throttle", "key": "p1", "limit": 1, "window": 60.0},
    ]
    _handle(processor, 1, {"op": "gate", "planned": _planned(gates=gates), "event": _event("a")})
    (forwarded,) = sender.to("p.state-repartition")
    assert forwarded["key"] == b"throttle\x1fw\x1fp1"
    assert [g["kind"] for g in orjson.loads(forwarded["value"])["planned"]["gates"]] == ["throttle"]
    assert sender.to("p.actions.tasks") == []


def test_a_watch_fires_on_the_tick_after_its_deadline_and_an_answer_cancels_another(
    setup: Any,
) -> None:
    processor, sender, now = setup
    processor.runner.engine.upsert(
        parse_workflow(
            {
                "id": "w",
                "name": "w",
                "created_by": "t",
                "absence": {
                    "after": "order.created",
                    "expect": "payment.received",
                    "match_on": "orderId",
                    "within": "1m",
                },
                "actions": [{"type": "create_task", "title": "t"}],
            }
        )
    )
    watch = {"expect": "payment.received", "match_on": "orderId", "within": 60.0}
    start = 1_793_613_600.0  # 2026-11-02T10:00:00Z
    now[0] = start
    for offset, match, workflow_id in ((1, "o1", "w"), (2, "o2", "w"), (3, "o3", "gone")):
        _handle(
            processor,
            offset,
            {
                "op": "watch",
                "planned": _planned(absence=watch | {"match": match}, workflow_id=workflow_id),
                "event": _event(f"order-{match}"),
            },
        )
    _handle(
        processor,
        3,
        {"op": "answer", "workflow_id": "w", "watch": watch | {"match": "o2"}, "at": start + 30},
    )
    processor._send_ticks()
    assert processor._producer.produced == []  # nothing due yet  # type: ignore[attr-defined]
    now[0] = start + 60.5  # past the deadline, not past the grace
    processor._send_ticks()
    assert processor._producer.produced == []  # type: ignore[attr-defined]
    now[0] = start + 61
    processor._send_ticks()
    processor._send_ticks()  # one tick outstanding at a time
    (tick,) = processor._producer.produced  # type: ignore[attr-defined]
    assert (tick["topic"], tick["partition"]) == ("p.state-repartition", 2)
    _handle(processor, 4, tick["value"])
    # o2 was answered in time; o3's workflow is no longer live
    runs = [orjson.loads(s["value"]) for s in sender.to("p.executions")]
    assert [(r["trigger_event_id"], r["triggered_by"]) for r in runs] == [("order-o1", "timer")]


def test_a_delay_fires_once_as_an_execution_named_after_its_action(setup: Any) -> None:
    processor, sender, now = setup
    request = {
        "op": "delay",
        "action_id": "x.1",
        "execution_id": "x",
        "due": 1010.0,
        "planned": _planned(),
        "event": _event("e"),
    }
    _handle(processor, 1, request)
    _handle(processor, 2, request)  # replayed: the same timer
    _handle(processor, 3, {"op": "tick"})
    assert sender.to("p.actions.tasks") == []  # not early
    now[0] = 1010.0
    _handle(processor, 4, {"op": "tick"})
    _handle(processor, 5, request)  # a replay after it fired cannot arm it again
    now[0] = 2000.0
    _handle(processor, 6, {"op": "tick"})
    (task,) = sender.to("p.actions.tasks")
    assert orjson.loads(task["value"])["action_id"] == "x.0"
    (run,) = [orjson.loads(s["value"]) for s in sender.to("p.executions")]
    assert (run["execution_id"], run["triggered_by"]) == ("x.1", "timer")


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        b"[1]",
        b'{"op": "explode"}',
        b'{"op": "gate", "planned": {}}',
        b'{"op": "delay", "action_id": "a", "due": "soon"}',
    ],
)
def test_a_hostile_request_is_dead_lettered_and_the_next_one_handled(
    setup: Any, value: bytes
) -> None:
    processor, sender, _ = setup
    _handle(processor, 1, value)
    (dead,) = sender.to("p.dlq")
    assert dict(dead["headers"])["dlq.reason"] == b"bad_state_request"
    _handle(processor, 2, {"op": "tick"})
    assert len(sender.to("p.dlq")) == 1


class Refusing(Collect):
    """A sender whose producer refuses, at once, what goes to ``topic`` (as librdkafka does
    with a record over message.max.bytes)."""

    def __init__(self, topic: str) -> None:
        super().__init__()
        self.topic = topic

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Any = None,
        *,
        partition: int | None = None,
    ) -> None:
        if topic == self.topic:
            raise OutputRejectedError(f"{topic}: too large", topic=topic, permanent=True)
        await super().send(topic, key, value, headers, partition=partition)


def _delay(action_id: str, planned: dict[str, Any], due: float = 1010.0) -> dict[str, Any]:
    return {
        "op": "delay",
        "action_id": action_id,
        "execution_id": action_id.split(".", maxsplit=1)[0],
        "due": due,
        "planned": planned,
        "event": _event(action_id),
    }


def test_a_timer_that_fails_is_dead_lettered_with_its_request_and_the_others_fire(
    setup: Any,
) -> None:
    processor, sender, now = setup
    broken = _delay("x.1", {"workflow_id": "w"})  # its run cannot be read back
    _handle(processor, 1, broken)
    _handle(processor, 2, _delay("y.1", _planned()))
    now[0] = 1010.0
    _handle(processor, 3, {"op": "tick"})
    (dead,) = sender.to("p.dlq")
    assert dead["key"] == b"delay\x1fx.1"
    assert orjson.loads(dead["value"]) == broken, "the letter holds the timer's request"
    headers = dict(dead["headers"])
    assert headers["dlq.reason"] == b"bad_state_request"
    assert headers["dlq.source.offset"] == b"3"
    (task,) = sender.to("p.actions.tasks")
    assert orjson.loads(task["value"])["execution_id"] == "y"
    now[0] = 2000.0
    _handle(processor, 4, {"op": "tick"})
    assert len(sender.to("p.dlq")) == 1, "the failed timer was consumed, not tried again"


def test_a_timer_whose_run_is_refused_is_dead_lettered_as_its_output_was(
    tmp_path: Path,
) -> None:
    sender = Refusing("p.executions")
    processor = _processor(sender, tmp_path)
    try:
        _handle(processor, 1, _delay("x.1", _planned()))
        _handle(processor, 2, {"op": "tick"})
        (dead,) = sender.to("p.dlq")
        headers = dict(dead["headers"])
        assert headers["dlq.reason"] == b"output_rejected"
        assert headers["dlq.error.class"] == b"OutputRejectedError"
        assert processor.stores[2].next_due() == 1010.0 + 3600, "only the fired marker is left"
    finally:
        processor.stores[2].close()


def test_a_change_the_changelog_refuses_is_not_kept_in_the_store(tmp_path: Path) -> None:
    sender = Refusing("p.state-changelog")
    processor = _processor(sender, tmp_path)
    store = processor.stores[2]
    try:
        with pytest.raises(OutputRejectedError):  # the stream dead-letters the request
            _handle(processor, 7, _delay("x.1", _planned()))
        assert store.get("delay\x1fx.1") is None
        assert store.next_due() is None
    finally:
        store.close()


def test_a_request_for_a_partition_without_a_store_is_refused_not_dropped(setup: Any) -> None:
    processor, _, _ = setup
    record = Record("p.state-repartition", 5, 1, b"k", b'{"op": "tick"}', [], None)
    with pytest.raises(StateStoreError):  # the stream dead-letters it: nothing is lost
        asyncio.run(processor.handle(record))


def test_a_delayed_webhook_that_fails_waits_on_the_retry_tier_like_any_other(
    setup: Any,
) -> None:
    processor, sender, now = setup

    async def unavailable(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    client = httpx.AsyncClient(transport=httpx.MockTransport(unavailable))
    topics = TopicNames("p.")
    processor.runner.webhooks = WebhookExecutor(client, secrets={}, resolver=resolve)
    processor.runner.retries = RetryQueue(topics, sender, clock=lambda: now[0])
    hook = {"url": "https://hooks.example.com/x", "max_attempts": 3}
    planned = _planned(actions=[{"index": 1, "type": "call_webhook", "params": hook}])
    _handle(processor, 1, _delay("x.1", planned))
    now[0] = 1010.0
    _handle(processor, 2, {"op": "tick"})
    (run,) = [orjson.loads(s["value"]) for s in sender.to("p.executions")]
    assert (run["execution_id"], run["triggered_by"], run["status"]) == ("x.1", "timer", "retrying")
    assert run["actions"][0]["status"] == "retrying"
    (envelope,) = [orjson.loads(s["value"]) for s in sender.to("p.retry.5s")]
    assert (envelope["action_id"], envelope["execution_id"]) == ("x.1", "x")
    assert (envelope["attempts"], envelope["due_at"]) == (1, 1015.0)
    asyncio.run(client.aclose())


def _sample(processor: StateProcessor, name: str) -> float:
    value = processor.metrics.registry.get_sample_value(name)
    return 0.0 if value is None else value


def test_a_restore_the_broker_refuses_for_a_while_is_retried_not_fatal(
    setup: tuple[StateProcessor, Collect, list[float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    processor, _, _ = setup
    monkeypatch.setattr("eventrules.runtime.state.processor.time.sleep", lambda _: None)
    answers: list[Exception | str] = [
        KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION, "unknown partition")),
        RestoreError("restoring p.state-changelog[5]: all brokers down"),
        "restored",
    ]

    def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert processor._retrying("restoring", call) == "restored"
    assert _sample(processor, "eventrules_state_restore_retries_total") == 2


def test_a_restore_gives_up_when_the_worker_stops(
    setup: tuple[StateProcessor, Collect, list[float]],
) -> None:
    processor, _, _ = setup
    processor.stop()

    def call() -> str:
        raise RestoreError("restoring p.state-changelog[0]: timed out")

    with pytest.raises(RestoreError):
        processor._retrying("restoring", call)
    assert _sample(processor, "eventrules_state_restore_retries_total") == 0
