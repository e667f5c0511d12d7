"""The event stream: one consumer group over the event topics, batch by batch.

Delivery per batch:

* ``at_least_once``: run every event of the batch, then go on with the next batch while the
  broker acknowledges this one's outputs; a batch's offsets are committed once every output of
  it and of every batch before it is acknowledged (action messages, execution records, dead
  letters). A crash before the commit replays the batch; deterministic ids make the replay
  recognisable. Before a rebalance takes partitions away, and at shutdown, every output is
  flushed and every acknowledged batch committed, so the new owner starts where we stopped.
* ``exactly_once``: the batch's outputs and its offsets go into one Kafka transaction
  (KIP-447: the transaction is fenced by the consumer group's generation), so read_committed
  consumers see each output once even across crashes and rebalances. A transaction that
  failed is aborted, a producer that was fenced or failed fatally is replaced, and the batch
  is retried, so the stream resumes by itself once the broker is back.

No record stops the stream:

* whatever handling one record raises sends that record to the dead-letter topic
  (:meth:`DeadLetterWriter.failed`) and the stream goes on with the next;
* an output the broker refuses for good (too large, an illegal or unknown topic, no
  authorisation) is retried ``output_attempts`` times in all (after the first refusal with
  its outputs sent on their own, as the broker refuses a whole produce request), then its
  input record is dead-lettered (reason ``output_rejected``) when the batch runs again;
  outputs that could not be delivered for a passing reason (a broker gone for longer than the
  producer's retries) rewind that batch and every later one and retry them: nothing is
  committed that was not delivered;
* a record that was in flight when two workers died (what no handler can catch: an OOM kill,
  a segfault, a hang) is dead-lettered with reason ``crash_loop`` (:mod:`.crash_guard`).

Delay topics (the retry tiers) give a ``due_at`` gate: a record not due yet pauses its
partition until it is, without holding up the poll loop.

A :class:`PartitionListener` (the state stream's stores, :mod:`eventrules.runtime.state`) is
told of every assignment, revocation, commit and rewind, so keyed state follows the committed
offsets: a write is kept once its input is committed and dropped when its input comes round
again, whichever of the paths above brought it round.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from eventrules.kafka.clients import consumer_config, producer_config
from eventrules.kafka.records import Record, record_of
from eventrules.kafka.sender import DeliveryFailure, DeliveryReports, KafkaSender
from eventrules.runtime.batch_path import CAREFUL, DONE, RAISED, handle_until_waiting
from eventrules.runtime.crash_guard import MARK_CLEAN, Careful, assess, run_mark, try_mark
from eventrules.runtime.deadletters import DeadLetterWriter

__all__ = ["PartitionListener", "StreamLoop", "stream_producer_config", "stream_sender"]

log = logging.getLogger(__name__)

Handler = Callable[[Record], Awaitable[Any]]
Partition = tuple[str, int]
Source = tuple[str, int, int]

# Records of careful partitions handled one at a time between two polls.
_CAREFUL_PER_POLL = 50
# How long a batch may hold the event loop before it lets the web server answer.
_YIELD_EVERY_SECONDS = 0.05
# Outputs queued (librdkafka's default room is 100,000) above which the loop lets the producer
# send before handling more records synchronously (KafkaSender.send_now waits in place).
_ROOM_BEFORE_HANDLING = 50_000
# Bounded bookkeeping of condemned records and output attempts.
_MAX_TRACKED = 10_000
_OFFSET_BEGINNING = -2
_OFFSET_END = -1


def stream_producer_config(
    client_config: dict[str, Any], group_id: str, exactly_once: bool
) -> dict[str, Any]:
    """The settings of a stream's producer: transactional in exactly-once mode."""
    return producer_config(
        client_config,
        # One transactional id per producer; KIP-447 fencing uses the group generation, so ids
        # need not be tied to partitions.
        transactional_id=f"{group_id}-{uuid.uuid4().hex}" if exactly_once else None,
        extra={"linger.ms": 5},
    )


def stream_sender(client_config: dict[str, Any], group_id: str, exactly_once: bool) -> KafkaSender:
    """The sender of the stream ``group_id``: build it first, hand it to what the stream's
    handler sends through, then to :class:`StreamLoop`."""
    return KafkaSender(Producer(stream_producer_config(client_config, group_id, exactly_once)))


def _bounds(messages: list[Message]) -> tuple[dict[Partition, int], dict[Partition, int]]:
    """Per partition: the first offset of ``messages``, and one past the last."""
    first: dict[Partition, int] = {}
    after: dict[Partition, int] = {}
    for message in messages:
        key = (message.topic() or "", message.partition() or 0)
        offset = message.offset() or 0
        if key not in first or offset < first[key]:
            first[key] = offset
        if offset + 1 > after.get(key, -1):
            after[key] = offset + 1
    return first, after


def _settle_future(future: asyncio.Future[bool], outcome: Any) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(bool(outcome))


def _partition(message: Message) -> Partition:
    return (message.topic() or "", message.partition() or 0)


@dataclass(slots=True)
class _Attempt:
    """One commit of a transaction, which the stream may abandon if librdkafka hangs in it."""

    producer: Producer
    abandoned: bool = False


class PartitionListener(Protocol):
    """Told what happens to the stream's partitions (the state stores follow them): assigned
    (before any of their records is handled), revoked (after everything delivered was
    committed), offsets committed (what was handled before them is kept), and offsets rewound
    (what was handled from them on will be handled again: a failed delivery, a failed or
    unknown transaction once the position is reset to the committed offsets, a careful record
    that could not be committed). Called from the event loop and from worker threads: it must
    be thread-safe."""

    def assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None: ...

    def revoked(self, partitions: list[TopicPartition]) -> None: ...

    def committed(self, offsets: dict[Partition, int]) -> None: ...

    def rewound(self, offsets: dict[Partition, int]) -> None: ...


@dataclass(slots=True)
class _InFlight:
    """A processed batch whose outputs the broker has not all acknowledged yet."""

    reports: DeliveryReports
    first: dict[Partition, int]
    after: dict[Partition, int]


@dataclass
class StreamLoop:
    """Consumes ``topics`` as the group ``group_id`` and hands each record to ``handle``."""

    client_config: dict[str, Any]
    group_id: str
    topics: list[str]
    handle: Handler
    ready: asyncio.Event
    # the handler without the event loop: None once a record is handled, else the awaitable
    # that finishes it (WorkflowRunner.handle_now); records are then handled in compiled code
    # back to back, one at a time (concurrency 1)
    handle_now: Callable[[Record], Awaitable[Any] | None] | None = None
    exactly_once: bool = False
    auto_offset_reset: str = "earliest"
    session_timeout_ms: int = 10_000
    batch_size: int = 500
    flush_timeout: float = 60.0
    # exactly-once: the timeout of each transactional call (a commit or a recovery that takes
    # longer than two is given up, see _bounded)
    transaction_timeout: float = 10.0
    # at-least-once: processed batches awaiting acknowledgement before the loop waits for them
    max_in_flight: int = 8
    commit_interval_ms: int = 1000
    fetch_wait_ms: int = 10
    # the client classes; tests pass fakes to drive the bookkeeping without a broker
    make_producer: Callable[[dict[str, Any]], Producer] = Producer
    make_consumer: Callable[[dict[str, Any]], Consumer] = Consumer
    # the producer (wrapped) outputs go through: given when what the handler sends through was
    # built first (see stream_sender), else made here
    output: KafkaSender | None = None
    # called before and after each batch is handled (the worker applies its metric counts)
    on_batch_start: Callable[[], None] | None = None
    on_batch_end: Callable[[], None] | None = None
    # where a record whose handling failed goes; without one, a failure stops the stream
    dead_letters: DeadLetterWriter | None = None
    # attempts an output refused for good gets before its input is dead-lettered
    output_attempts: int = 2
    # crash-loop guard: records handled one at a time after an owner died, and the deaths
    # a record may be in flight at before it is dead-lettered
    crash_window: int = 1000
    crash_limit: int = 2
    # delay topics: when a record becomes due (epoch seconds; None: now)
    due_at: Callable[[Record], float | None] | None = None
    # records of one batch handled at once (1: in order)
    concurrency: int = 1
    # told what the loop had to do (isolated, condemned, rewound, ...): the worker counts it
    on_event: Callable[[str], None] | None = None
    # told what happens to the partitions (the state stream's stores follow them)
    listener: PartitionListener | None = None
    assigned: set[Partition] = field(default_factory=set)
    last_offsets: dict[Partition, int] = field(default_factory=dict)
    batches: int = 0

    def __post_init__(self) -> None:
        self._stopping = False
        self._in_flight: deque[_InFlight] = deque()
        # records to dead-letter instead of handling when they come round again
        self.condemned: dict[Source, tuple[str, str]] = {}
        self._output_failures: dict[Source, int] = {}
        # inputs whose outputs were refused: handled with their outputs sent on their own
        self._suspects: set[Source] = set()
        self._careful: dict[Partition, Careful] = {}
        # partitions whose commit does not say yet that an owner is running them
        self._unmarked: set[Partition] = set()
        # the committed offset of each partition when we got it (until we commit our own)
        self._done_at: dict[Partition, int] = {}
        # consecutive rewinds: each waits a little longer before the batch is retried
        self._rewinds = 0
        self._paused: dict[Partition, float] = {}
        # exactly-once: what the producer needs before the next transaction, and whether the
        # position must be reset to the committed offsets first
        self._producer_state: str = "ok"  # ok | finish | abort | replace
        self._resync = False
        self.progress_at = time.monotonic()
        self._assigning = False
        # who writes our commit marks (see crash_guard): one id per stream per process
        self.owner = uuid.uuid4().hex[:12]
        self._run_mark = run_mark(self.owner)
        self.sender = self.output or KafkaSender(
            self.make_producer(
                stream_producer_config(self.client_config, self.group_id, self.exactly_once)
            )
        )
        self.producer = self.sender.producer
        self.consumer = self.make_consumer(
            consumer_config(
                self.client_config,
                self.group_id,
                offset_reset=cast(Any, self.auto_offset_reset),
                session_timeout_ms=self.session_timeout_ms,
                extra={
                    # at-least-once commits the offsets it stores once their batch is
                    # delivered; exactly-once commits them in the transaction
                    "enable.auto.commit": not self.exactly_once,
                    "enable.auto.offset.store": False,
                    "auto.commit.interval.ms": self.commit_interval_ms,
                    # A fetch answered for every trickle of events cost the broker more CPU
                    # than the work; waiting up to fetch_wait_ms for fuller fetches bounds it.
                    "fetch.min.bytes": 64 * 1024,
                    "fetch.wait.max.ms": self.fetch_wait_ms,
                },
            )
        )

    def _count(self, what: str) -> None:
        if self.on_event is not None:
            self.on_event(what)

    # group membership ---------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned = {(tp.topic, tp.partition) for tp in partitions}
        self._paused = {}
        self._unmarked = set()
        self.progress_at = time.monotonic()
        log.info("assigned %s", sorted(self.assigned))
        self._read_marks(partitions)
        if self.listener is not None:
            self._assigning = True  # a restore is work, not a stall
            try:
                self.listener.assigned(consumer, partitions)
            finally:
                self._assigning = False
                self.progress_at = time.monotonic()

    def _read_marks(self, partitions: list[TopicPartition]) -> None:
        """The crash-loop guard: a partition whose last owner died is handled carefully."""
        if not partitions:
            return
        try:
            committed = self.consumer.committed(partitions, timeout=10)
        except KafkaException as exc:
            log.warning("could not read committed offsets (%s); crash guard skipped", exc)
            return
        for tp in committed:
            if tp.offset >= 0:
                self._done_at[(tp.topic, tp.partition)] = tp.offset
            careful = assess(tp.offset, tp.metadata, window=self.crash_window, owner=self.owner)
            key = (tp.topic, tp.partition)
            if careful is None:
                self._careful.pop(key, None)
                # marked as running before its first batch, so a death in it is noticed
                self._unmarked.add(key)
                continue
            self._careful[key] = careful
            self._count("careful_partition")
            log.warning(
                "%s[%d]: its last owner died at offset %d or later (mark %r); the next %d "
                "records are handled one at a time",
                tp.topic,
                tp.partition,
                tp.offset,
                tp.metadata,
                careful.remaining,
            )

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Runs inside consumer.poll, between batches: settle what is in flight and commit it
        # before the partitions go, so their new owner starts after everything we delivered.
        log.info("revoked %s", sorted((tp.topic, tp.partition) for tp in partitions))
        self._settle()
        if not self._stopping:  # at shutdown _close has handed them over already
            self._hand_over(partitions)
        self.assigned = set()
        self._paused = {}
        if self.listener is not None:
            self.listener.revoked(partitions)

    def _hand_over(self, partitions: list[TopicPartition]) -> None:
        """Mark the commits of partitions we give up as a clean hand-over (see crash_guard);
        a partition still careful keeps saying its last owner died."""
        try:
            committed = self.consumer.committed(partitions, timeout=10)
            clean = []
            for tp in committed:
                key = (tp.topic, tp.partition)
                # Offsets stored since librdkafka's last auto-commit are newer than what the
                # group holds: marking the older one would hand the next owner work already done.
                done = self.last_offsets.get(key)
                offset = max(tp.offset, done + 1) if done is not None else tp.offset
                if offset < 0 or key in self._careful:
                    continue
                if tp.metadata != MARK_CLEAN or offset > tp.offset:
                    clean.append(
                        TopicPartition(tp.topic, tp.partition, offset, metadata=MARK_CLEAN)
                    )
            if clean:
                if not self.exactly_once:
                    # stored too: librdkafka's own final commit of stored offsets must agree
                    self.consumer.store_offsets(offsets=clean)
                self.consumer.commit(offsets=clean, asynchronous=False)
        except KafkaException as exc:
            log.warning("could not mark the hand-over as clean (%s)", exc)

    def stop(self) -> None:
        self._stopping = True

    # health -------------------------------------------------------------------------------

    def lag(self) -> int:
        """Records waiting on the partitions we hold and have not paused: past the last one
        done (committed, by us or before us), against cached watermarks (no round trip)."""
        waiting = 0
        for topic, partition in list(self.assigned):
            key = (topic, partition)
            if key in self._paused:
                continue
            done = (
                self.last_offsets[key] + 1 if key in self.last_offsets else self._done_at.get(key)
            )
            if done is None:
                continue
            marks = self.consumer.get_watermark_offsets(
                TopicPartition(topic, partition), cached=True
            )
            if marks is not None and marks[1] >= 0:
                waiting += max(0, marks[1] - done)
        return waiting

    def stalled(self, seconds: float) -> bool:
        """True when records are waiting and no batch went through for ``seconds`` (the
        listener's work on an assignment, a state restore, is progress)."""
        if self._assigning:
            return False
        return time.monotonic() - self.progress_at > seconds and self.lag() > 0

    # the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until :meth:`stop`; then settle, commit and leave the group cleanly."""
        if self.exactly_once:
            await asyncio.to_thread(self._init_transactions)
        self.consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while not self._stopping:
                messages = await asyncio.to_thread(self._next_batch)
                batch = [m for m in messages if not self._is_noise(m)]
                if batch:
                    if not self.ready.is_set():
                        # The ready gate: no event is evaluated against a half-loaded config.
                        await self.ready.wait()
                    await self._process(batch)
                elif self._in_flight:
                    await self._after_batch()
                elif self._recovery_pending():
                    # A failed transaction's batch may have been the last input there was: the
                    # position is reset now, not when a next record happens to arrive.
                    if not await self._bounded(self._transactions_ready):
                        await asyncio.to_thread(self._back_off)
                elif self.lag() == 0:
                    self.progress_at = time.monotonic()
        finally:
            await asyncio.to_thread(self._close)

    def _init_transactions(self) -> None:
        while not self._stopping:
            try:
                self.producer.init_transactions(self.transaction_timeout)
                return
            except KafkaException as exc:
                log.warning("initialising transactions failed (%s); retrying", exc.args[0])
                if exc.args[0].fatal():
                    self._replace_producer(init=False)

    def _next_batch(self) -> list[Message]:
        """Wait a little for the first record, then take what is already fetched.

        ``consume(n, timeout)`` alone waits the whole timeout unless n records arrive, which
        would add up to the timeout to every event's latency at moderate rates. The producer is
        polled on both sides so acknowledgements (and with them commits) are not held back.
        """
        self._resume_due()
        self._poll_producer()
        first = self.consumer.poll(0.02 if self._in_flight else 0.2)
        self._poll_producer()
        if first is None:
            return []
        return [first, *self.consumer.consume(self.batch_size - 1, 0)]

    def _poll_producer(self) -> None:
        try:
            self.producer.poll(0)
        except KafkaException as exc:
            # A fatal error of a transactional producer (fenced while the broker was away)
            # surfaces from its next poll: it is replaced before the next transaction.
            if not self.exactly_once:
                raise
            log.error("the transactional producer failed (%s); it is replaced", exc.args[0])
            self._producer_state = "replace"
            self._resync = True

    def _close(self) -> None:
        self._settle()
        self._hand_over([TopicPartition(t, p) for t, p in self.assigned])
        self.producer.flush(10)
        if self.listener is not None:
            self.listener.revoked([TopicPartition(t, p) for t, p in self.assigned])
        self.consumer.close()

    @staticmethod
    def _is_noise(message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        if error.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer: %s", error)
        return True

    async def _process(self, batch: list[Message]) -> None:
        if self.due_at is not None:
            batch = self._hold_back_not_due(batch, self.due_at)
        if self._unmarked and self.crash_window > 0:
            await asyncio.to_thread(self._mark_running, batch)
        careful = [m for m in batch if _partition(m) in self._careful] if self._careful else []
        if not careful:
            if batch:
                await self._process_batch(batch)
            return
        normal = [m for m in batch if _partition(m) not in self._careful]
        if normal:
            await self._process_batch(normal)
        tail: list[Message] = []
        held_back: dict[Partition, int] = {}
        handled = 0
        for message in careful:
            key = _partition(message)
            if key in held_back:
                continue
            if key not in self._careful:
                # a window that ends mid-batch: the rest of its partition goes normally, after it
                tail.append(message)
            elif handled >= _CAREFUL_PER_POLL or not await self._process_carefully(message):
                # one at a time is slow: poll between rounds, and never out of order
                held_back[key] = message.offset() or 0
            else:
                handled += 1
        if held_back:
            await asyncio.to_thread(self._seek_assigned, held_back)
            if self.listener is not None:
                # a record handled but not committed comes round again: its writes go too
                self.listener.rewound(held_back)
        if tail:
            await self._process_batch(tail)

    async def _process_batch(self, batch: list[Message]) -> None:
        if self.exactly_once:
            await self._process_transaction(batch)
            return
        reports = self.sender.next_batch()
        await self._handle_all(batch)
        first, after = _bounds(batch)
        self._in_flight.append(_InFlight(reports, first, after))
        self.batches += 1
        if len(self._in_flight) > self.max_in_flight:
            # Back-pressure: the broker is slower than we are; wait for the oldest batch.
            await asyncio.to_thread(self._await_oldest)
        await self._after_batch()

    async def _process_carefully(self, message: Message) -> bool:
        """Handle one record of a careful partition behind its own ``try`` mark; False when
        it could not be marked or committed (it comes round again, and nothing after it in its
        partition goes before it)."""
        key = _partition(message)
        offset = message.offset() or 0
        guard = self._careful[key]
        await asyncio.to_thread(self._drain)
        deaths = guard.deaths(offset)
        if deaths >= self.crash_limit:
            self.condemned[(key[0], key[1], offset)] = (
                "crash_loop",
                f"in flight when a worker died, {deaths} times",
            )
        elif not await asyncio.to_thread(self._commit_mark, key, offset, deaths):
            return False
        await self._process_batch([message])
        await asyncio.to_thread(self._drain)
        if self.last_offsets.get(key, -1) < offset:
            return False  # not committed (a failed delivery or transaction): it comes again
        guard.remaining -= 1
        if guard.remaining <= 0 and self._careful.get(key) is guard:
            del self._careful[key]
            log.info("%s[%d]: careful window over", *key)
        return True

    def _mark_running(self, batch: list[Message]) -> None:
        """Before the first batch of a partition whose commit says nobody runs it (a new group,
        a clean hand-over), commit its position marked ``run``: a death from now on shows."""
        first, _ = _bounds([m for m in batch if _partition(m) in self._unmarked])
        if not first:
            return
        marks = [TopicPartition(t, p, o, metadata=self._run_mark) for (t, p), o in first.items()]
        try:
            self.consumer.commit(offsets=marks, asynchronous=False)
        except KafkaException as exc:
            log.warning("could not mark partitions as running (%s); will retry", exc)
            return
        self._unmarked -= set(first)
        self._done_at.update(first)

    def _commit_mark(self, key: Partition, offset: int, deaths: int) -> bool:
        mark = TopicPartition(key[0], key[1], offset, metadata=try_mark(offset, deaths, self.owner))
        try:
            self.consumer.commit(offsets=[mark], asynchronous=False)
            return True
        except KafkaException as exc:
            log.warning("could not commit the crash-guard mark (%s); will retry", exc)
            return False

    def _drain(self) -> None:
        """Deliver and commit everything in flight (at-least-once), rewinding what failed."""
        if not self._in_flight:
            return
        self.producer.flush(self.flush_timeout)
        if not self._commit_acknowledged(wait=True):
            self._rewind()

    def _await_oldest(self) -> None:
        oldest = self._in_flight[0].reports
        while not oldest.settled and not self._stopping:
            self.producer.poll(0.05)

    # handling records ---------------------------------------------------------------------

    async def _handle_all(self, batch: list[Message]) -> None:
        if self.on_batch_start is not None:
            self.on_batch_start()
        if self.concurrency > 1:
            gate = asyncio.Semaphore(self.concurrency)

            async def one(message: Message) -> None:
                async with gate:
                    await self._handle_one(message)

            await asyncio.gather(*(one(message) for message in batch))
        elif self.handle_now is not None:
            await self._handle_in_order_now(batch, self.handle_now)
        else:
            clock = time.perf_counter
            held_since = clock()
            for message in batch:
                await self._handle_one(message)
                if clock() - held_since > _YIELD_EVERY_SECONDS:
                    # Let the web server answer (/healthz) between records of a long batch.
                    await asyncio.sleep(0)
                    held_since = clock()
        if self.on_batch_end is not None:
            self.on_batch_end()

    async def _handle_in_order_now(
        self, batch: list[Message], handle_now: Callable[[Record], Awaitable[Any] | None]
    ) -> None:
        """The records in order, back to back in compiled code (runtime/batch_path.py) while
        they finish at once; what waits is awaited here, in its place."""
        careful = (self.condemned, self._suspects)
        index, count = 0, len(batch)
        while index < count:
            if len(self.producer) >= _ROOM_BEFORE_HANDLING:
                # outputs are produced without the loop: keep the queue from filling up first
                await asyncio.to_thread(self.producer.poll, 0.1)
                continue
            until = time.perf_counter() + _YIELD_EVERY_SECONDS
            stop = handle_until_waiting(batch, index, handle_now, self.sender, careful, until=until)
            index = stop.index
            if stop.why == DONE:
                self.sender.attribute_to(None)
                if index < count:
                    # Let the web server answer (/healthz) between records of a long batch.
                    await asyncio.sleep(0)
                continue
            record = cast(Record, stop.record)
            if stop.why == CAREFUL:
                await self._handle_one(batch[index])
            elif stop.why == RAISED:
                try:
                    await self._isolate(record, cast(Exception, stop.exception))
                finally:
                    self.sender.attribute_to(None)
            else:
                await self._finish_one(record, cast(Awaitable[Any], stop.rest))
            index += 1

    async def _handle_one(self, message: Message) -> None:
        record = record_of(message)
        source = (record.topic, record.partition, record.offset)
        self.sender.attribute_to(source)
        condemned = self.condemned.get(source)
        # The broker judges a whole produce request: a suspect's outputs travel alone, so a
        # refusal is pinned on the record that caused it, not on its neighbours.
        suspect = source in self._suspects
        if suspect:
            await asyncio.to_thread(self.producer.flush, self.flush_timeout)
        try:
            if condemned is not None and self.dead_letters is not None:
                await self.dead_letters(record, *condemned)
                self._count("condemned")
            else:
                await self.handle(record)
        except Exception as exc:  # no record may stop the stream: it is dead-lettered
            await self._isolate(record, exc)
        finally:
            self.sender.attribute_to(None)
            if suspect:
                self._suspects.discard(source)
                await asyncio.to_thread(self.producer.flush, self.flush_timeout)

    async def _finish_one(self, record: Record, rest: Awaitable[Any]) -> None:
        """Await what :attr:`handle_now` left of ``record``, isolating a failure."""
        try:
            await rest
        except Exception as exc:  # no record may stop the stream: it is dead-lettered
            await self._isolate(record, exc)
        finally:
            self.sender.attribute_to(None)

    async def _isolate(self, record: Record, exc: Exception) -> None:
        """Dead-letter a record whose handling raised (re-raised without a dead-letter topic)."""
        if self.dead_letters is None:
            raise exc
        source = (record.topic, record.partition, record.offset)
        log.error("%s[%d]@%d failed; dead-lettered", *source, exc_info=exc)
        self._count("isolated")
        try:
            await self.dead_letters.failed(record, exc)
        except Exception as dead:  # the dlq refuses it too: retry the batch, lose nothing
            log.error("dead-lettering %s[%d]@%d failed: %s", *source, dead)
            self.sender.reports.failures.append(
                DeliveryFailure(self.dead_letters.topic, str(dead), False, source)
            )

    def _condemn_refused(self, failures: list[DeliveryFailure]) -> None:
        """Inputs whose outputs the broker refused for good: dead-lettered once attempts run
        out (the dead-letter topic's own failures are always retried)."""
        dlq = self.dead_letters.topic if self.dead_letters is not None else None
        seen: set[Source] = set()
        for failure in failures:
            if not failure.permanent or failure.source is None or failure.topic == dlq:
                continue
            if failure.source in seen:
                continue  # one attempt, however many of its outputs were refused
            seen.add(failure.source)
            attempts = self._output_failures.get(failure.source, 0) + 1
            self._output_failures[failure.source] = attempts
            self._suspects.add(failure.source)
            if attempts >= self.output_attempts:
                self.condemned[failure.source] = (
                    "output_rejected",
                    f"output refused {attempts} times: {failure}",
                )
        for tracked in (self._output_failures, self.condemned):
            while len(tracked) > _MAX_TRACKED:
                del tracked[next(iter(tracked))]
        if len(self._suspects) > _MAX_TRACKED:
            self._suspects.clear()

    # delay topics -------------------------------------------------------------------------

    def _hold_back_not_due(
        self, batch: list[Message], due_at: Callable[[Record], float | None]
    ) -> list[Message]:
        """The records that are due; a partition whose next record is not is paused until it
        is and rewound to that record."""
        now = time.time()
        due: list[Message] = []
        held: set[Partition] = set()
        for message in batch:
            key = _partition(message)
            if key in held:
                continue
            try:
                when = due_at(record_of(message))
            except Exception:  # an unreadable due time is due: handling dead-letters it
                when = None
            if when is None or when <= now:
                due.append(message)
                continue
            held.add(key)
            tp = TopicPartition(key[0], key[1], message.offset() or 0)
            try:
                self.consumer.pause([tp])
                self.consumer.seek(tp)
            except KafkaException as exc:
                log.warning("could not hold back %s[%d]: %s", *key, exc)
                continue
            self._paused[key] = when
        return due

    def _resume_due(self) -> None:
        if not self._paused:
            return
        now = time.time()
        due = [key for key, when in self._paused.items() if when <= now]
        if due:
            for key in due:
                del self._paused[key]
            self.consumer.resume([TopicPartition(t, p) for t, p in due])

    # at-least-once commits ----------------------------------------------------------------

    def _commit_acknowledged(self, *, wait: bool = False) -> bool:
        """Commit the batches acknowledged so far, oldest first (asynchronously unless ``wait``).

        Returns False when the oldest unacknowledged batch failed: it and every later batch
        must be processed again (see :meth:`_rewind`).
        """
        offsets: dict[Partition, int] = {}
        delivered = True
        while self._in_flight and self._in_flight[0].reports.settled:
            done = self._in_flight[0]
            if done.reports.failures:
                log.error(
                    "outputs not delivered, the batch will be retried: %s",
                    [str(failure) for failure in done.reports.failures[:5]],
                )
                delivered = False
                break
            self._in_flight.popleft()
            offsets.update(done.after)
        if offsets:
            commit = [
                TopicPartition(t, p, o, metadata=self._run_mark) for (t, p), o in offsets.items()
            ]
            try:
                # Stored offsets are committed by librdkafka's own thread every
                # auto.commit.interval.ms (and on revoke and close): an asynchronous commit() from
                # here holds the GIL and was measured blocking for up to a second.
                self.consumer.store_offsets(offsets=commit)
                if wait:
                    self.consumer.commit(offsets=commit, asynchronous=False)
            except KafkaException as exc:
                # Not committed means replayed by the partition's next owner: at-least-once.
                log.warning("commit failed (%s); those events may be processed again", exc)
            else:
                for key, offset in offsets.items():
                    self.last_offsets[key] = offset - 1
                self.progress_at = time.monotonic()
                self._rewinds = 0
                if self.listener is not None:
                    self.listener.committed(offsets)
        return delivered

    async def _after_batch(self) -> None:
        if not self._commit_acknowledged():
            await asyncio.to_thread(self._rewind)

    def _rewind(self) -> None:
        """Wait for everything in flight, then seek back to the oldest undelivered batch."""
        self.producer.flush(self.flush_timeout)
        start: dict[Partition, int] = {}
        for batch in self._in_flight:
            for key, offset in batch.first.items():
                start[key] = min(offset, start.get(key, offset))
            self._condemn_refused(batch.reports.failures)
        self._in_flight.clear()
        self._count("rewound")
        self._seek_assigned(start)
        if self.listener is not None:
            self.listener.rewound(start)
        self._back_off()

    def _back_off(self) -> None:
        # A failure that persists (a broker away, a dlq refusing) must not spin the loop.
        self._rewinds += 1
        time.sleep(min(5.0, 0.05 * 2**self._rewinds))

    def _settle(self) -> None:
        """Wait for every output in flight and commit every batch that was delivered."""
        if not self._in_flight:
            return
        remaining = self.producer.flush(self.flush_timeout)
        if remaining:
            log.error("%d output(s) still undelivered after %ss", remaining, self.flush_timeout)
        self._commit_acknowledged(wait=True)
        # Whatever is left (undelivered) is replayed from the committed offsets by the next
        # owner of its partitions, or by us after a restart.
        self._in_flight.clear()

    # exactly-once -------------------------------------------------------------------------

    async def _process_transaction(self, batch: list[Message]) -> None:
        _, after = _bounds(batch)
        if not await self._bounded(self._transactions_ready):
            # the records in hand were read from a position now reset: they come round again
            await asyncio.to_thread(self._back_off)
            return
        # Delivery is the transaction's business here; a fresh count keeps reports from piling up.
        reports = self.sender.next_batch()
        try:
            self.producer.begin_transaction()
        except KafkaException as exc:
            self._transaction_failed(exc, "beginning")
            return
        await self._handle_all(batch)
        offsets = [TopicPartition(t, p, o, metadata=self._run_mark) for (t, p), o in after.items()]
        if not await self._commit_within_deadline(offsets, reports):
            await asyncio.to_thread(self._back_off)
            return
        self.batches += 1
        self.progress_at = time.monotonic()
        self._rewinds = 0
        for key, offset in after.items():
            self.last_offsets[key] = offset - 1
        if self.listener is not None:
            self.listener.committed(after)

    def _recovery_pending(self) -> bool:
        return self.exactly_once and (self._resync or self._producer_state != "ok")

    def _transactions_ready(self) -> bool:
        """After a failed transaction: the producer usable again, and the position reset to
        the committed offsets. Those are read stable (read_committed: a transaction still
        pending is waited for), so a commit whose outcome was unknown is neither lost nor
        repeated. False while that cannot be done yet, or when the position was just reset."""
        if not self._producer_ready():
            return False
        if not self._resync:
            return True
        if self._seek_committed():
            self._resync = False
        return False

    def _seek_committed(self) -> bool:
        held = [TopicPartition(t, p) for t, p in self.assigned]
        if not held:
            return True
        try:
            committed = self.consumer.committed(held, timeout=self.transaction_timeout)
        except KafkaException as exc:
            log.warning("committed offsets not readable yet (%s)", exc)
            return False
        unknown = [tp for tp in committed if tp.error is not None]
        if unknown:
            # One partition's offset not known yet (its coordinator loading after a restart, or
            # offsets of a transaction still pending): taken for "no commit", it would send the
            # partition back to the reset position and run everything committed before again.
            first = unknown[0]
            log.warning(
                "committed offset of %s[%d] not readable yet (%s)",
                first.topic,
                first.partition,
                first.error,
            )
            return False
        start = _OFFSET_BEGINNING if self.auto_offset_reset == "earliest" else _OFFSET_END
        resume = {
            (tp.topic, tp.partition): tp.offset if tp.offset >= 0 else start for tp in committed
        }
        self._seek_assigned(resume)
        if self.listener is not None:
            # Only now is it known which of the failed transactions committed (one whose commit
            # was left running or abandoned may have): what came before the committed offsets
            # is kept, the rest is to be processed again.
            self.listener.committed({key: offset for key, offset in resume.items() if offset >= 0})
            self.listener.rewound(resume)
        return True

    async def _bounded(self, call: Callable[[], bool]) -> bool:
        """Run a transactional step, giving up on one that outlives its own timeouts.

        librdkafka's send_offsets_to_transaction can block past its timeout, for good, once the
        group coordinator it cached went away (librdkafka issues #5456, #5511: a broker
        restart does it): the hung call is abandoned (a commit aborts if it ever returns), the
        producer replaced and the position reset from the committed offsets, so the stream
        never waits on it.
        """
        loop = asyncio.get_running_loop()
        work: asyncio.Future[bool] = loop.create_future()

        def run() -> None:
            try:
                outcome: Any = call()
            except BaseException as exc:  # handed to the awaiting task
                outcome = exc
            with contextlib.suppress(RuntimeError):  # the loop may be closed by now
                loop.call_soon_threadsafe(_settle_future, work, outcome)

        # A daemon thread of its own, not the loop's executor: a call that never returns must
        # not hold up the worker's exit (the executor's threads are joined at shutdown).
        threading.Thread(target=run, name=f"{self.group_id}-txn", daemon=True).start()
        try:
            return await asyncio.wait_for(asyncio.shield(work), 2 * self.transaction_timeout + 5)
        except TimeoutError:
            log.error("a transactional call hung; the producer is replaced")
            self._producer_state = "replace"
            self._resync = True
            self._count("transaction_hung")
            return False

    async def _commit_within_deadline(
        self, offsets: list[TopicPartition], reports: DeliveryReports
    ) -> bool:
        attempt = _Attempt(self.producer)
        committed = await self._bounded(
            functools.partial(self._commit_transaction, offsets, reports, attempt)
        )
        if not committed and self._producer_state == "replace":
            attempt.abandoned = True
        return committed

    def _commit_transaction(
        self, offsets: list[TopicPartition], reports: DeliveryReports, attempt: _Attempt
    ) -> bool:
        """Commit the batch's transaction; False when it must be processed again."""
        producer = attempt.producer
        doing = "sending the offsets of"
        try:
            if reports.failures:
                # a dead letter that could not be queued: nothing of this batch may count
                raise KafkaException(KafkaError(KafkaError._FAIL, "an output was not queued"))
            metadata = self.consumer.consumer_group_metadata()
            producer.send_offsets_to_transaction(offsets, metadata, self.transaction_timeout)
            if attempt.abandoned:  # the stream went on without this call: it must not commit
                producer.abort_transaction(self.transaction_timeout)
                return False
            doing = "committing"
            producer.commit_transaction(self.transaction_timeout)
            return True
        except KafkaException as exc:
            if attempt.abandoned:
                return False
            with contextlib.suppress(KafkaException):  # a fatal error is seen in its own time
                producer.poll(0)  # run the delivery callbacks that say which outputs failed
            self._condemn_refused(reports.failures)
            self._transaction_failed(exc, doing)
            return False

    def _transaction_failed(self, exc: KafkaException, doing: str) -> None:
        error = exc.args[0]
        log.error("%s a transaction failed (%s); the batch will be retried", doing, error)
        self._resync = True
        self._producer_state = self._next_step(error, committing=doing == "committing")

    @staticmethod
    def _next_step(error: KafkaError, *, committing: bool) -> str:
        """What a failed transactional call leaves to do: ``replace`` a fenced or fatally
        failed producer, ``finish`` a commit left running (a timeout of commit_transaction:
        librdkafka wants it called again), else ``abort``.

        Only a failed commit may be finished. A retriable failure of send_offsets_to_transaction
        (the broker gone: "Failed to add offsets to transaction") leaves the transaction open
        without the batch's offsets; committing it would publish the outputs and leave the
        offsets behind, so the batch would run again and its outputs be written twice.
        """
        if error.fatal() or error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED):
            return "replace"
        if committing and (
            error.code() == KafkaError._CONFLICT
            or (error.retriable() and not error.txn_requires_abort())
        ):
            return "finish"
        return "abort"

    def _producer_ready(self) -> bool:
        """Finish or abort a failed transaction, or replace a fenced producer; False while the
        broker cannot be reached (the loop polls and tries again)."""
        try:
            # A producer that lived through a failure is replaced once its transaction is
            # settled: its cached coordinators may be stale (see _bounded).
            if self._producer_state == "finish":
                self.producer.commit_transaction(self.transaction_timeout)
                self._producer_state = "replace"
            elif self._producer_state == "abort":
                self.producer.abort_transaction(self.transaction_timeout)
                self._producer_state = "replace"
            if self._producer_state == "replace":
                self._replace_producer(init=True)
        except KafkaException as exc:
            error = exc.args[0]
            log.warning("transactional producer not usable yet (%s)", error)
            if self._producer_state == "replace":
                pass
            elif error.code() == KafkaError._STATE:
                # nothing to finish or abort in that state: a new producer starts afresh
                self._producer_state = "replace"
            else:
                # an abort that failed is tried again, never turned into a commit
                self._producer_state = self._next_step(
                    error, committing=self._producer_state == "finish"
                )
            time.sleep(0.5)
            return False
        self._producer_state = "ok"
        return True

    def _replace_producer(self, *, init: bool) -> None:
        # The old producer is dropped as it is: a call may still hang in it (see
        # _commit_within_deadline), and its transaction is aborted by the broker on timeout.
        producer = self.make_producer(
            stream_producer_config(self.client_config, self.group_id, self.exactly_once)
        )
        if init:
            producer.init_transactions(self.transaction_timeout)
        self.producer = self.sender.producer = producer
        self._count("producer_replaced")
        log.warning("the transactional producer was replaced")

    def _seek_assigned(self, first: dict[Partition, int]) -> None:
        # Only partitions still ours: a revoked one is replayed by its new owner.
        for (topic, partition), offset in first.items():
            if (topic, partition) in self.assigned:
                try:
                    self.consumer.seek(TopicPartition(topic, partition, offset))
                except KafkaException as exc:
                    log.warning("seek %s[%d] to %d failed: %s", topic, partition, offset, exc)
