"""The state stream: keyed state per partition of ``state-repartition``, and its timers.

Each worker's state stream is one consumer group (``<app_id>-state``) over the repartition
topic, run by a :class:`~eventrules.runtime.stream.StreamLoop` like the event stream, so its
delivery guarantees are the same; :class:`StateProcessor` is its handler and partition
listener:

* **assignment**: before any record of a partition is processed, its store is restored from
  the changelog (:func:`~eventrules.runtime.state.changelog.restore_partition`), inside the
  rebalance callback; the worker reports not ready meanwhile;
* **a request** (gate, watch, answer, delay) is decided by :mod:`eventrules.workflows.memory`
  over the partition's store; every write goes to the changelog through the stream's sender,
  tagged with the input offset, so it joins the batch (at-least-once: committed once
  delivered; exactly-once: inside the batch's transaction, with the outputs and offsets);
* **commit**: writes of committed inputs are flushed to the local database; a rewind drops
  the writes of the inputs to be processed again;
* **timers**: the entries' due times are indexed; when one is due, the worker writes a tick
  record to that partition of the repartition topic, and the timer acts when the tick is
  processed, so its outputs and its state change commit with the tick's offset like any
  other input (a timer fires once per committed tick, exactly once in exactly-once mode);
* **revocation**: the store is flushed, its changelog position saved, and closed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from pydantic import ValidationError

from eventrules.errors import KafkaError, StateStoreError
from eventrules.kafka.clients import producer_config, watermarks
from eventrules.kafka.records import Record
from eventrules.kafka.sender import KafkaSender
from eventrules.metrics import Metrics
from eventrules.models.executions import execution_id
from eventrules.runtime.deadletters import DeadLetterWriter
from eventrules.runtime.runner import WorkflowRunner
from eventrules.runtime.state.changelog import Restored, changelog_headers, restore_partition
from eventrules.runtime.state.router import StateRouter, event_from_json
from eventrules.runtime.state.store import PartitionStore, encode_entry
from eventrules.workflows.memory import (
    AbsenceWatch,
    Due,
    admit,
    answer,
    due_action,
    on_due,
    watch,
)
from eventrules.workflows.plan import PlannedWorkflow

__all__ = ["StateProcessor"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")
# how long a restore keeps retrying a broker that does not answer
_RESTORE_PATIENCE = 300.0

Partition = tuple[str, int]
# Timers acted on per tick; more wait for the next tick (the stream stays responsive).
_TIMERS_PER_TICK = 500
# A tick not seen back within this long is sent again (its writer may have been replaced).
_TICK_RESEND_SECONDS = 5.0
# What a request that is not one raises while it is read and decided.
_BAD_REQUEST = (orjson.JSONDecodeError, TypeError, KeyError, ValueError, ValidationError)


def _timer_request(due: Due) -> dict[str, Any]:
    """The request a failed timer's dead letter holds: the delay request that armed it, or the
    watch that an unanswered absence started (replayed, it watches again and fires at once)."""
    run = due.run or {}
    if due.kind == "delay":
        return run
    return {"op": "watch", "planned": run.get("planned"), "event": run.get("event")}


class _View:
    """A partition store as the decisions see it, recording each write for the changelog."""

    __slots__ = ("changes", "offset", "store")

    def __init__(self, store: PartitionStore, offset: int) -> None:
        self.store = store
        self.offset = offset
        self.changes: list[tuple[str, dict[str, Any] | None, float | None]] = []

    def get(self, key: str) -> dict[str, Any] | None:
        return self.store.get(key)

    def put(self, key: str, value: dict[str, Any], due: float | None) -> None:
        self.store.write(self.offset, key, value, due)
        self.changes.append((key, value, due))

    def delete(self, key: str) -> None:
        self.store.write(self.offset, key, None, None)
        self.changes.append((key, None, None))


class StateProcessor:
    """The state stream's handler (:meth:`handle`), partition listener and timer service."""

    def __init__(
        self,
        *,
        client_config: dict[str, Any],
        repartition_topic: str,
        changelog_topic: str,
        state_dir: Path | None,
        runner: WorkflowRunner,
        router: StateRouter,
        sender: KafkaSender,
        dead_letters: DeadLetterWriter,
        metrics: Metrics,
        grace_seconds: float = 2.0,
        tick_interval: float = 0.2,
        clock: Callable[[], float] = time.time,
        make_producer: Callable[[dict[str, Any]], Producer] = Producer,
    ) -> None:
        self.client_config = client_config
        self.repartition_topic = repartition_topic
        self.changelog_topic = changelog_topic
        self.state_dir = state_dir
        self.runner = runner
        self.router = router
        self.sender = sender
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.grace_seconds = grace_seconds
        self.tick_interval = tick_interval
        self.clock = clock
        self.stores: dict[int, PartitionStore] = {}
        self.restoring: set[int] = set()
        self.restored: list[Restored] = []
        self._ticks: dict[int, float] = {}
        self._consumer: Consumer | None = None
        self._stopping = False
        # ticks and restore corrections are not outputs of a batch: a plain producer
        self._producer = make_producer(producer_config(client_config, extra={"linger.ms": 0}))

    @property
    def ready(self) -> bool:
        return not self.restoring

    def _path(self, partition: int) -> Path | None:
        if self.state_dir is None:
            return None
        return self.state_dir / f"{self.changelog_topic}-{partition}.sqlite"

    # the stream's partition listener ------------------------------------------------------

    def assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._consumer = consumer
        mine = [tp.partition for tp in partitions if tp.topic == self.repartition_topic]
        self.restoring.update(mine)
        self.metrics.state_restoring.set(len(self.restoring))
        committed = self._retrying(
            "reading committed offsets",
            lambda: {
                tp.partition: tp.offset
                for tp in consumer.committed(
                    [TopicPartition(self.repartition_topic, p) for p in mine], timeout=60
                )
            },
        )
        for partition in mine:
            store = PartitionStore(self._path(partition), partition)
            try:
                restored = self._retrying(
                    f"restoring state partition {partition}",
                    functools.partial(
                        restore_partition,
                        store,
                        self.client_config,
                        self.changelog_topic,
                        committed_input=max(0, committed.get(partition, 0)),
                        repair=self._producer,
                    ),
                )
            except BaseException:
                store.close()
                raise
            self.restored.append(restored)
            self.metrics.state_restores.inc(restored.records)
            self.metrics.state_restore_seconds.observe(restored.seconds)
            self.stores[partition] = store
            self.restoring.discard(partition)
            self.metrics.state_restoring.set(len(self.restoring))

    def _retrying(self, doing: str, call: Callable[[], _T]) -> _T:
        """``call()`` until it gets through the broker. A broker that has just come back answers
        "unknown partition" or times out for a while; a partition is never processed without its
        state, and the state stream must not die of a blip. Past ``_RESTORE_PATIENCE`` seconds
        the error is raised: the worker exits and its supervisor restarts it."""
        pause = 0.5
        deadline = time.monotonic() + _RESTORE_PATIENCE
        while True:
            try:
                return call()
            except (KafkaException, KafkaError) as exc:
                if self._stopping or time.monotonic() > deadline:
                    raise
                log.warning("state: %s failed (%s); retrying in %.1fs", doing, exc, pause)
                self.metrics.state_restore_retries.inc()
                time.sleep(pause)
                pause = min(pause * 2, 10.0)

    def revoked(self, partitions: list[TopicPartition]) -> None:
        # The stream has settled: what was delivered is committed and flushed; the rest will
        # be processed again by the partition's next owner.
        for tp in partitions:
            if tp.topic != self.repartition_topic:
                continue
            store = self.stores.pop(tp.partition, None)
            self._ticks.pop(tp.partition, None)
            if store is None:
                continue
            store.discard_pending()
            try:
                if self._consumer is not None:
                    _, high = watermarks(
                        self._consumer,
                        TopicPartition(self.changelog_topic, tp.partition),
                        timeout=10.0,
                    )
                    store.save_position(high)
            except Exception as exc:  # a stale position only costs a longer restore
                log.warning("state %d: changelog position not saved (%s)", tp.partition, exc)
            finally:
                store.close()

    def committed(self, offsets: dict[Partition, int]) -> None:
        for (topic, partition), offset in offsets.items():
            store = self.stores.get(partition) if topic == self.repartition_topic else None
            if store is not None:
                store.flush(offset)

    def rewound(self, offsets: dict[Partition, int]) -> None:
        for (topic, partition), offset in offsets.items():
            store = self.stores.get(partition) if topic == self.repartition_topic else None
            if store is not None:
                store.rewind(offset)

    # the stream's handler -----------------------------------------------------------------

    async def handle(self, record: Record) -> None:
        """Decide one request over its partition's store. A request that is not one is
        dead-lettered (``bad_state_request``); anything else it raises goes to the stream, which
        dead-letters it like any record (its writes so far are kept: its actions went out)."""
        store = self.stores.get(record.partition)
        if store is None:  # the stream assigns (and so restores) before it hands a record over
            raise StateStoreError(f"state {record.partition}: no store for {record.offset}")
        view = _View(store, record.offset)
        try:
            request = orjson.loads(record.value or b"null")
            if not isinstance(request, dict):
                raise TypeError("a state request must be a JSON object")
            await self._decide(request, view, record)
        except _BAD_REQUEST as exc:
            await self.dead_letters(record, "bad_state_request", f"{type(exc).__name__}: {exc}")
        finally:
            await self._log_changes(view, record)

    async def _log_changes(self, view: _View, record: Record) -> None:
        """Send the writes of ``record`` to the changelog (they join its batch)."""
        try:
            for key, value, due in view.changes:
                await self.sender.send(
                    self.changelog_topic,
                    key.encode(),
                    encode_entry(value, due),
                    changelog_headers(record.offset),
                    partition=record.partition,
                )
        except Exception:
            # a write the changelog refused is not kept either: the store follows its changelog
            view.store.rewind(record.offset)
            raise

    async def _decide(self, request: dict[str, Any], view: _View, record: Record) -> None:
        op = request.get("op")
        now = self.clock()
        if op == "tick":
            self._ticks.pop(record.partition, None)
            await self._fire_due(view, now, record)
        elif op == "gate":
            await self._gate(request, view, now)
        elif op == "watch":
            planned = PlannedWorkflow.from_dict(request["planned"])
            event = event_from_json(request["event"])
            if planned.absence is None:
                raise ValueError("a watch request without an absence")
            watch(
                view,
                planned.workflow_id,
                planned.absence,
                at=event.time.timestamp(),
                run={"planned": request["planned"], "event": request["event"]},
                grace=self.grace_seconds,
            )
        elif op == "answer":
            answer(
                view,
                str(request["workflow_id"]),
                AbsenceWatch.from_dict(request["watch"]),
                at=float(request["at"]),
                now=now,
            )
        elif op == "delay":
            due_action(
                view, str(request["action_id"]), due=float(request["due"]), now=now, run=request
            )
        else:
            raise ValueError(f"unknown state request {op!r}")

    async def _gate(self, request: dict[str, Any], view: _View, now: float) -> None:
        planned = PlannedWorkflow.from_dict(request["planned"])
        event = event_from_json(request["event"])
        if not planned.gates:
            raise ValueError("a gate request without gates")
        run_id = execution_id(event.source, event.id, planned.workflow_id, planned.version)
        first, rest = planned.gates[0], planned.gates[1:]
        admission = admit(
            view,
            planned.workflow_id,
            (first,),
            at=event.time.timestamp(),
            now=now,
            execution_id=run_id,
        )
        self.metrics.count(self.metrics.state_decisions, planned.workflow_id, admission.decision)
        if not admission.runs:
            log.info("%s for %s: %s", planned.workflow_id, event.id, admission.reason)
            return
        if rest:
            # the next gate's key lives on its own partition: ask its owner
            await self.router.gate(dataclasses.replace(planned, gates=rest), event)
        else:
            await self.runner.execute(dataclasses.replace(planned, gates=()), event, "event")

    async def _fire_due(self, view: _View, now: float, tick: Record) -> None:
        for key, value in view.store.due(now, _TIMERS_PER_TICK):
            due = on_due(view, key, value, now=now)
            self.metrics.count(self.metrics.state_timers_fired, due.kind)
            if due.run is None:
                continue
            try:
                await self._run_timer(due)
            except Exception as exc:  # one timer that fails must not stop the others of the tick
                log.exception("state %d: timer %r failed; dead-lettered", tick.partition, key)
                letter = tick._replace(key=key.encode(), value=orjson.dumps(_timer_request(due)))
                if isinstance(exc, _BAD_REQUEST):
                    await self.dead_letters(
                        letter, "bad_state_request", f"{type(exc).__name__}: {exc}"
                    )
                else:
                    await self.dead_letters.failed(letter, exc)

    async def _run_timer(self, due: Due) -> None:
        run = due.run or {}
        planned = PlannedWorkflow.from_dict(run["planned"])
        event = event_from_json(run["event"])
        current = self.runner.engine.get(planned.workflow_id)
        if due.kind == "absence" and (current is None or not current.enabled):
            # a watch of a workflow deleted or disabled since: it starts no run
            log.info("absence of %s for %s dropped: not live", planned.workflow_id, event.id)
            return
        if due.kind == "delay":
            await self.runner.execute(
                planned,
                event,
                "timer",
                run_id=str(run["execution_id"]),
                record_id=str(run["action_id"]),
            )
        else:
            await self.runner.execute(planned, event, "timer")

    # the timer service --------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> None:
        """Send a tick to each owned partition that has a timer due (one at a time)."""
        try:
            while not self._stopping:
                await asyncio.sleep(self.tick_interval)
                try:
                    self._send_ticks()
                except Exception:  # a store closed under us by a rebalance; next round
                    log.exception("state timers: sending ticks failed")
        finally:
            await asyncio.to_thread(self._producer.flush, 10)

    def _send_ticks(self) -> None:
        now = self.clock()
        for partition, store in list(self.stores.items()):
            due = store.next_due()
            if due is None or due > now:
                continue
            sent = self._ticks.get(partition)
            if sent is not None and now - sent < _TICK_RESEND_SECONDS:
                continue
            self._producer.produce(
                self.repartition_topic, value=b'{"op":"tick"}', partition=partition
            )
            self._ticks[partition] = now
        self._producer.poll(0)
