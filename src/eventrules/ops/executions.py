"""The executions log: read it, follow it, replay one execution's event."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition

from eventrules.errors import KafkaError, NotFoundError, OperationError, PoisonEventError
from eventrules.kafka.clients import consumer_config, private_group, read_to_end, watermarks
from eventrules.models.cloudevents import decode_event
from eventrules.models.events import Event
from eventrules.models.executions import EventReference, ExecutionRecord
from eventrules.ops.runs import live_engine, recorded_engine, run_workflow_now
from eventrules.settings import Settings
from eventrules.workflows.plan import WorkflowTrace

__all__ = [
    "REPLAY_MARK",
    "ExecutionLog",
    "LoggedExecution",
    "Replay",
    "decode_execution",
    "fetch_referenced_event",
    "follow_executions",
    "read_executions",
    "replay_event_id",
    "replay_execution",
    "wanted",
]

REPLAY_MARK = "#replay-"
_OFFSET_BEGINNING = -2
_OFFSET_END = -1


def wanted(record: dict[str, Any], workflow: str | None, status: str | None) -> bool:
    return (workflow is None or record.get("workflow_id") == workflow) and (
        status is None or record.get("status") == status
    )


def decode_execution(value: bytes | None) -> dict[str, Any] | None:
    try:
        record = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def read_executions(settings: Settings) -> list[dict[str, Any]]:
    """Every execution record the topic holds."""
    return [
        record
        for message in read_to_end(settings.kafka_client_config(), settings.topic("executions"))
        if (record := decode_execution(message.value())) is not None
    ]


@dataclass(frozen=True)
class LoggedExecution:
    """One record of the executions topic and where it is; ``record`` is None when the value
    is not a JSON object (it still advances the position)."""

    partition: int
    offset: int
    timestamp_ms: int
    record: dict[str, Any] | None


class ExecutionLog:
    """A reader of the executions topic kept open: follow it from chosen positions, or fetch
    one record by its position. Not thread-safe: one user at a time."""

    def __init__(self, settings: Settings, *, timeout: float = 10.0) -> None:
        self.topic = settings.topic("executions")
        self._timeout = timeout
        self._consumer = Consumer(
            consumer_config(settings.kafka_client_config(), private_group("executions-log"))
        )

    def close(self) -> None:
        self._consumer.close()

    def watermarks(self) -> dict[int, tuple[int, int]]:
        """``(low, high)`` offsets of every partition."""
        try:
            info = self._consumer.list_topics(self.topic, timeout=self._timeout).topics.get(
                self.topic
            )
            if info is None or info.error is not None:
                raise KafkaError(f"{self.topic} does not exist; run `eventrules topics apply`")
            return {
                partition: watermarks(
                    self._consumer, TopicPartition(self.topic, partition), timeout=self._timeout
                )
                for partition in sorted(info.partitions)
            }
        except KafkaException as exc:
            raise KafkaError(f"reading {self.topic}: {exc.args[0]}") from None

    def follow(self, positions: Mapping[int, int]) -> None:
        """Read every partition from ``positions[partition]`` (the next offset to read), or from
        its start when it has no position."""
        partitions = self.watermarks()
        self._consumer.assign(
            [TopicPartition(self.topic, p, positions.get(p, _OFFSET_BEGINNING)) for p in partitions]
        )

    def poll(self, *, max_records: int = 500, timeout: float = 0.5) -> list[LoggedExecution]:
        """The next records (at most ``max_records``) of the followed partitions."""
        try:
            messages = self._consumer.consume(max_records, timeout)
        except KafkaException as exc:
            raise KafkaError(f"reading {self.topic}: {exc.args[0]}") from None
        found: list[LoggedExecution] = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == error._PARTITION_EOF:
                    continue
                raise KafkaError(f"reading {self.topic}: {error}")
            found.append(
                LoggedExecution(
                    message.partition() or 0,
                    message.offset() or 0,
                    message.timestamp()[1],
                    decode_execution(message.value()),
                )
            )
        return found

    def fetch(self, partition: int, offset: int) -> dict[str, Any]:
        """The record at ``partition``/``offset``; NotFoundError when the topic no longer
        holds it (retention) or it is not an execution record."""
        self._consumer.assign([TopicPartition(self.topic, partition, offset)])
        deadline = time.monotonic() + self._timeout
        try:
            while time.monotonic() < deadline:
                message = self._consumer.poll(0.2)
                if message is None or message.error() is not None:
                    continue
                if message.partition() != partition or message.offset() != offset:
                    # compacted or expired: the next record came instead
                    break
                record = decode_execution(message.value())
                if record is not None:
                    return record
                break
        except KafkaException as exc:
            raise KafkaError(f"reading {self.topic}: {exc.args[0]}") from None
        finally:
            self._consumer.unassign()
        raise NotFoundError(f"{self.topic} no longer holds an execution at {partition}@{offset}")


def follow_executions(
    settings: Settings, *, from_beginning: bool = False, idle_timeout: float = 0.0
) -> Iterator[dict[str, Any]]:
    """Execution records as they are written; ends after ``idle_timeout`` quiet seconds (0:
    never)."""
    topic = settings.topic("executions")
    consumer = Consumer(consumer_config(settings.kafka_client_config(), private_group("tail")))
    try:
        info = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if info is None or info.error is not None:
            raise KafkaError(f"{topic} does not exist; run `eventrules topics apply`")
        start = _OFFSET_BEGINNING if from_beginning else _OFFSET_END
        consumer.assign([TopicPartition(topic, p, start) for p in info.partitions])
        idle = 0
        while True:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                idle += 1
                if idle_timeout and idle * 0.5 >= idle_timeout:
                    return
                continue
            idle = 0
            record = decode_execution(message.value())
            if record is not None:
                yield record
    finally:
        consumer.close()


def replay_event_id(original: str, earlier: Iterable[str]) -> str:
    """``<original id>#replay-<n>``, n one more than the replays already recorded.

    Execution ids derive from (source, event id, workflow, version): a replay needs an event id
    of its own, or re-running the same version would reuse the original's execution id and
    action ids and downstream consumers would drop its outputs as duplicates."""
    base = original.split(REPLAY_MARK, 1)[0]
    numbers = [
        int(suffix)
        for event_id in earlier
        if event_id.startswith(base + REPLAY_MARK)
        and (suffix := event_id.removeprefix(base + REPLAY_MARK)).isdigit()
    ]
    return f"{base}{REPLAY_MARK}{max(numbers, default=0) + 1}"


@dataclass(frozen=True)
class Replay:
    """What replaying asked for: the run's record, or why the workflow would not run now."""

    workflow_id: str
    workflow_version: int
    trace: WorkflowTrace
    record: ExecutionRecord | None


def replay_execution(
    settings: Settings,
    execution_id: str,
    *,
    recorded_version: bool = False,
    ignore_conditions: bool = False,
) -> Replay:
    """Re-run the event of ``execution_id`` against the live version of its workflow (or the
    version it ran, ``recorded_version``), with the event id ``<original>#replay-<n>``. Does
    not run, returning the trace, when the conditions no longer match (unless
    ``ignore_conditions``)."""
    records = read_executions(settings)
    original = next((r for r in records if r.get("execution_id") == execution_id), None)
    if original is None:
        raise NotFoundError(f"no execution {execution_id!r} in the executions topic")
    recorded = recorded_event(settings, original)
    workflow_id = str(original["workflow_id"])
    engine = (
        recorded_engine(settings, workflow_id, int(original["workflow_version"]))
        if recorded_version
        else live_engine(settings, workflow_id)
    )
    workflow = engine.get(workflow_id)
    if workflow is None:  # both loaders installed it; this guards the type, not a case
        raise NotFoundError(f"no workflow {workflow_id!r}")
    earlier = [
        str(r.get("trigger_event_id")) for r in records if r.get("workflow_id") == workflow_id
    ]
    event = recorded.model_copy(update={"id": replay_event_id(recorded.id, earlier)})
    trace = engine.trace(workflow_id, event)
    if not trace.fired and not ignore_conditions:
        # a disabled workflow or changed conditions: the operator decides, we do not guess
        return Replay(workflow_id, workflow.version, trace, None)
    record = run_workflow_now(settings, engine, workflow, event, "replay")
    return Replay(workflow_id, workflow.version, trace, record)


def recorded_event(settings: Settings, record: Mapping[str, Any]) -> Event:
    """The event an execution record ran on: its copy, or read back from where it was read."""
    execution = record.get("execution_id")
    copied = record.get("event")
    if isinstance(copied, dict):
        try:
            return Event.model_validate(
                {k: v for k, v in copied.items() if k in Event.model_fields}
            )
        except ValueError as exc:
            raise OperationError(f"the recorded event is unusable: {exc}") from None
    raw_ref = record.get("event_ref")
    if not isinstance(raw_ref, dict):
        raise OperationError(f"execution {execution} carries no event to replay")
    try:
        ref = EventReference.model_validate(raw_ref)
    except ValueError as exc:
        raise OperationError(f"execution {execution} has an unusable event_ref: {exc}") from None
    event = fetch_referenced_event(settings, ref)
    if event.id != record.get("trigger_event_id"):
        raise OperationError(
            f"{ref.topic}[{ref.partition}]@{ref.offset} now holds event {event.id!r}, not"
            f" {record.get('trigger_event_id')!r}: the topic was recreated since the run"
        )
    return event


def fetch_referenced_event(settings: Settings, ref: EventReference, timeout: float = 10.0) -> Event:
    """The event at ``ref``, decoded as the worker decoded it. OperationError when the topic
    no longer holds it (retention, compaction) or it is not this deployment's event topic: a
    forged record must not make the CLI read other topics with the operator's credentials."""
    if not ref.topic.startswith(settings.topic("events.")):
        raise OperationError(f"{ref.topic!r} is not an event topic of this deployment")
    where = f"{ref.topic}[{ref.partition}]@{ref.offset}"
    consumer = Consumer(consumer_config(settings.kafka_client_config(), private_group("replay")))
    try:
        tp = TopicPartition(ref.topic, ref.partition, ref.offset)
        low, high = watermarks(consumer, tp, timeout=timeout)
        if ref.offset < low:
            raise OperationError(
                f"the event at {where} is gone: retention removed it (the partition now starts"
                f" at offset {low}); keep copies with EVENTRULES_EXECUTION_EVENT=full"
            )
        if ref.offset >= high:
            raise OperationError(f"{where} is past the end of the partition (offset {high})")
        consumer.assign([tp])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            if message.offset() != ref.offset:
                raise OperationError(f"the event at {where} is gone (compacted or aborted)")
            raw = message.headers() or []
            pairs = raw.items() if isinstance(raw, dict) else raw
            headers = [(str(k), v if isinstance(v, bytes) else None) for k, v in pairs]
            try:
                return decode_event(message.value(), headers, timestamp_ms=message.timestamp()[1])
            except PoisonEventError as exc:
                raise OperationError(f"the record at {where} is not an event: {exc}") from None
        raise OperationError(f"reading {where} timed out after {timeout:.0f}s")
    except KafkaException as exc:
        raise KafkaError(f"reading {where}: {exc.args[0]}") from None
    finally:
        consumer.close()
