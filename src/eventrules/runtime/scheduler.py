"""Schedule ticks: ``scheduled.daily`` / ``weekly`` / ``monthly`` and workflows' own cron.

A tick is an ordinary CloudEvent on ``events.scheduled``, so it flows through the normal event
path and shows up in the executions history. Exactly one tick per period across all workers:

* **leadership**: every worker's scheduler joins the consumer group ``<app_id>-scheduler`` on
  the one-partition ``scheduler-state`` topic; the member assigned partition 0 is the leader;
* **no double emission**: the tick, the new state (the period it covers) and an offset commit
  for that group go in **one Kafka transaction**. The commit carries the group generation
  (KIP-447), so a deposed leader's transaction is fenced and aborted: neither its tick nor its
  state becomes visible. The tick id ``tick:<schedule>:<period start>`` is deterministic too;
* **catch-up once**: a new leader reads the state (read_committed) and, for each schedule whose
  last emitted period is older than the current one, emits only the most recent period's tick;
  periods missed in between are not replayed. A schedule never seen before (a new deployment,
  a newly scheduled workflow) records the current period without a tick: it first fires at its
  next boundary.

The period logic is pure (:func:`due_ticks`), the clock injectable.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from croniter import croniter

from eventrules.kafka.clients import consumer_config, producer_config, read_to_end, watermarks
from eventrules.models.cloudevents import encode_structured
from eventrules.models.events import Event
from eventrules.models.workflows import Workflow
from eventrules.runtime.admission import TickAuthenticator

__all__ = [
    "BUILTIN_SCHEDULES",
    "Schedule",
    "Scheduler",
    "Tick",
    "due_ticks",
    "period_start",
    "schedules_for",
    "tick_id",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    key: str  # daily, weekly, monthly or workflow:<id>
    cron: str
    event_type: str
    workflow_id: str | None = None


# The seed's scheduled triggers, at midnight in the configured timezone.
BUILTIN_SCHEDULES = (
    Schedule("daily", "0 0 * * *", "scheduled.daily"),
    Schedule("weekly", "0 0 * * MON", "scheduled.weekly"),
    Schedule("monthly", "0 0 1 * *", "scheduled.monthly"),
)


def schedules_for(workflows: Iterable[Workflow]) -> list[Schedule]:
    """The built-in schedules plus one per enabled workflow that has a ``schedule``."""
    own = [
        Schedule(f"workflow:{w.id}", w.schedule, w.trigger, w.id)
        for w in sorted(workflows, key=lambda w: w.id)
        if w.schedule is not None and w.enabled
    ]
    return [*BUILTIN_SCHEDULES, *own]


def period_start(cron: str, now: datetime, timezone: tzinfo) -> datetime:
    """The start of the period ``now`` is in: the latest fire time at or before ``now``."""
    local = now.astimezone(timezone)
    # croniter's get_prev is strictly before its start; nudge so a fire time equal to now counts.
    previous: datetime = croniter(cron, local + timedelta(microseconds=1)).get_prev(datetime)
    return previous


def tick_id(schedule_key: str, start: datetime) -> str:
    return f"tick:{schedule_key}:{start.isoformat()}"


@dataclass(frozen=True)
class Tick:
    """What the leader writes for one schedule: the state, and (``emit``) the tick event."""

    schedule: Schedule
    period_start: datetime
    emit: bool

    @property
    def id(self) -> str:
        return tick_id(self.schedule.key, self.period_start)

    def event(self, source: str) -> Event:
        data: dict[str, Any] = {
            "schedule": self.schedule.key,
            "cron": self.schedule.cron,
            "period_start": self.period_start.isoformat(),
        }
        if self.schedule.workflow_id is not None:
            data["workflow_id"] = self.schedule.workflow_id
        return Event(
            id=self.id,
            type=self.schedule.event_type,
            source=source,
            time=self.period_start,
            subject=self.schedule.key,
            data=data,
        )

    def state(self, now: datetime) -> dict[str, Any]:
        return {
            "schedule": self.schedule.key,
            "cron": self.schedule.cron,
            "period_start": self.period_start.isoformat(),
            "tick_id": self.id if self.emit else None,
            "emitted": self.emit,
            "written_at": now.isoformat(),
        }


def due_ticks(
    schedules: Iterable[Schedule],
    state: dict[str, datetime],
    now: datetime,
    timezone: tzinfo,
) -> list[Tick]:
    """What the leader must write now: a tick for each schedule whose current period has no
    tick yet (only the current period, however many were missed), a baseline (no tick) for a
    schedule without state, nothing for the rest."""
    ticks: list[Tick] = []
    for schedule in schedules:
        start = period_start(schedule.cron, now, timezone)
        last = state.get(schedule.key)
        if last is None:
            ticks.append(Tick(schedule, start, emit=False))
        elif last < start:
            ticks.append(Tick(schedule, start, emit=True))
    return ticks


class Scheduler:
    """The worker's scheduler task; does anything only while it leads."""

    def __init__(
        self,
        client_config: dict[str, Any],
        *,
        group_id: str,
        state_topic: str,
        ticks_topic: str,
        schedules: Callable[[], list[Schedule]],
        ready: asyncio.Event,
        timezone: tzinfo,
        interval_seconds: float = 1.0,
        session_timeout_ms: int = 10_000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        ticks: TickAuthenticator | None = None,
    ) -> None:
        self.client_config = client_config
        self.ticks = ticks  # signs what we emit, so workers can tell ticks from forgeries
        self.group_id = group_id
        self.state_topic = state_topic
        self.ticks_topic = ticks_topic
        self.schedules = schedules
        self.ready = ready
        self.timezone = timezone
        self.interval_seconds = interval_seconds
        self.clock = clock
        self.source = f"eventrules/scheduler/{group_id}"
        self.leader = False
        self.emitted = 0
        # schedules whose cron could not be evaluated (logged once, skipped until they can)
        self.failing: set[str] = set()
        self._state: dict[str, datetime] | None = None  # None: not loaded since leadership began
        self._stopping = False
        self._producer: Producer | None = None
        self.consumer = Consumer(
            consumer_config(
                client_config,
                group_id,
                offset_reset="latest",
                session_timeout_ms=session_timeout_ms,
            )
        )

    def stop(self) -> None:
        self._stopping = True

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.leader = any(tp.partition == 0 for tp in partitions)
        self._state = None
        log.info("scheduler %s", "leads" if self.leader else "follows")

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.leader = False
        self._state = None

    def _new_producer(self) -> Producer:
        producer = Producer(
            producer_config(
                self.client_config,
                # one id per process: fencing comes from the group generation (KIP-447)
                transactional_id=f"{self.group_id}-{uuid.uuid4().hex}",
            )
        )
        producer.init_transactions(60)
        return producer

    async def run(self) -> None:
        self.consumer.subscribe(
            [self.state_topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        try:
            while not self._stopping:
                # poll drives the group protocol (and so leadership); records are our own state
                await asyncio.to_thread(self.consumer.poll, self.interval_seconds)
                if not self.leader or not self.ready.is_set():
                    continue
                try:
                    await asyncio.to_thread(self._lead)
                except KafkaException as exc:
                    # Never let the task die: a fenced or failed leader reloads and tries again.
                    log.warning("scheduler: %s; state will be reloaded", exc.args[0])
                    self._state = None
                    if exc.args[0].fatal() or exc.args[0].code() == KafkaError._STATE:
                        self._producer = None
                except Exception as exc:  # a broker away while loading state, or a bug
                    log.warning("scheduler: %s; state will be reloaded", exc)
                    self._state = None
        finally:
            await asyncio.to_thread(self._close)

    def _close(self) -> None:
        if self._producer is not None:
            self._producer.flush(10)
        self.consumer.close()

    def _load_state(self) -> dict[str, datetime]:
        state: dict[str, datetime] = {}
        for message in read_to_end(self.client_config, self.state_topic):
            key = (message.key() or b"").decode(errors="replace")
            try:
                value = orjson.loads(message.value() or b"null")
                state[key] = datetime.fromisoformat(value["period_start"])
            except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
                state.pop(key, None)
        return state

    def _lead(self) -> None:
        if self._producer is None:
            self._producer = self._new_producer()
        if self._state is None:
            self._state = self._load_state()
        now = self.clock()
        for schedule in self.schedules():
            try:
                ticks = due_ticks([schedule], self._state, now, self.timezone)
            except Exception as exc:  # one schedule's cron must not stop the others
                if schedule.key not in self.failing:
                    log.error(
                        "scheduler: schedule %s (%r) fails: %s", schedule.key, schedule.cron, exc
                    )
                self.failing.add(schedule.key)
                continue
            self.failing.discard(schedule.key)
            for tick in ticks:
                if not self.leader:  # revoked by the poll of a previous iteration
                    return
                self._write(self._producer, tick, now)
                self._state[tick.schedule.key] = tick.period_start

    def _write(self, producer: Producer, tick: Tick, now: datetime) -> None:
        producer.begin_transaction()
        try:
            if tick.emit:
                key, value = tick.schedule.key.encode(), encode_structured(tick.event(self.source))
                headers: list[tuple[str, str | bytes | None]] = []
                if self.ticks is not None:
                    headers.extend(self.ticks.headers(self.ticks_topic, key, value))
                producer.produce(self.ticks_topic, key=key, value=value, headers=headers)
            producer.produce(
                self.state_topic,
                key=tick.schedule.key.encode(),
                value=orjson.dumps(tick.state(now)),
            )
            _, high = watermarks(self.consumer, TopicPartition(self.state_topic, 0), timeout=10.0)
            # The commit is what fences: it is refused for a stale group generation.
            producer.send_offsets_to_transaction(
                [TopicPartition(self.state_topic, 0, high)],
                self.consumer.consumer_group_metadata(),
                30,
            )
            producer.commit_transaction(30)
        except Exception:
            # Whatever failed, the transaction must not stay open: the next begin would be
            # refused for good. A producer that cannot abort is replaced.
            try:
                producer.abort_transaction(10)
            except KafkaException:
                self._producer = None
            raise
        if tick.emit:
            self.emitted += 1
            log.info("tick %s emitted", tick.id)
