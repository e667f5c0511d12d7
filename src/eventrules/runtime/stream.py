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
  consumers see each output once even across crashes and rebalances.

If the outputs of a batch cannot be delivered (a broker gone for longer than the producer's
retries), that batch and every later one are rewound and retried: nothing is committed that
was not delivered.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from eventrules.kafka.clients import consumer_config, producer_config
from eventrules.kafka.records import Headers, Record
from eventrules.kafka.sender import DeliveryReports, KafkaSender

__all__ = ["StreamLoop", "stream_producer_config", "stream_sender"]

log = logging.getLogger(__name__)

Handler = Callable[[Record], Any]
Partition = tuple[str, int]


def stream_producer_config(
    client_config: dict[str, Any], group_id: str, exactly_once: bool
) -> dict[str, Any]:
    """The settings of a stream's producer: transactional in exactly-once mode."""
    return producer_config(
        client_config,
        # One transactional id per process; KIP-447 fencing uses the group generation, so ids
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


def _record(message: Message) -> Record:
    kind, timestamp = message.timestamp()
    return Record(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=message.key(),
        value=message.value(),
        headers=cast(Headers, message.headers() or []),
        timestamp_ms=timestamp if kind and timestamp > 0 else None,
    )


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
    exactly_once: bool = False
    auto_offset_reset: str = "earliest"
    session_timeout_ms: int = 10_000
    batch_size: int = 500
    flush_timeout: float = 60.0
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
    # called after each batch is handled (the worker applies its metric counts there)
    on_batch_end: Callable[[], None] | None = None
    assigned: set[Partition] = field(default_factory=set)
    last_offsets: dict[Partition, int] = field(default_factory=dict)
    batches: int = 0

    def __post_init__(self) -> None:
        self._stopping = False
        self._in_flight: deque[_InFlight] = deque()
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

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned = {(tp.topic, tp.partition) for tp in partitions}
        log.info("assigned %s", sorted(self.assigned))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Runs inside consumer.poll, between batches: settle what is in flight and commit it
        # before the partitions go, so their new owner starts after everything we delivered.
        log.info("revoked %s", sorted((tp.topic, tp.partition) for tp in partitions))
        self._settle()
        self.assigned = set()

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> None:
        """Consume until :meth:`stop`; then settle, commit and leave the group cleanly."""
        if self.exactly_once:
            await asyncio.to_thread(self.producer.init_transactions, 60)
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
        finally:
            await asyncio.to_thread(self._close)

    def _next_batch(self) -> list[Message]:
        """Wait a little for the first record, then take what is already fetched.

        ``consume(n, timeout)`` alone waits the whole timeout unless n records arrive, which
        would add up to the timeout to every event's latency at moderate rates. The producer is
        polled on both sides so acknowledgements (and with them commits) are not held back.
        """
        self.producer.poll(0)
        first = self.consumer.poll(0.02 if self._in_flight else 0.2)
        self.producer.poll(0)
        if first is None:
            return []
        return [first, *self.consumer.consume(self.batch_size - 1, 0)]

    def _close(self) -> None:
        self._settle()
        self.producer.flush(10)
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

    def _await_oldest(self) -> None:
        oldest = self._in_flight[0].reports
        while not oldest.settled and not self._stopping:
            self.producer.poll(0.05)

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
                    done.reports.failures[:5],
                )
                delivered = False
                break
            self._in_flight.popleft()
            offsets.update(done.after)
        if offsets:
            commit = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
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
        self._in_flight.clear()
        self._seek_assigned(start)

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

    async def _handle_all(self, batch: list[Message]) -> None:
        handle = self.handle
        for message in batch:
            await handle(_record(message))
        if self.on_batch_end is not None:
            self.on_batch_end()

    async def _process_transaction(self, batch: list[Message]) -> None:
        # Delivery is the transaction's business here; a fresh count keeps reports from piling up.
        self.sender.next_batch()
        self.producer.begin_transaction()
        await self._handle_all(batch)
        first, after = _bounds(batch)
        offsets = [TopicPartition(t, p, o) for (t, p), o in after.items()]
        if not await asyncio.to_thread(self._commit_transaction, offsets):
            await asyncio.to_thread(self._seek_assigned, first)
            return
        self.batches += 1
        for key, offset in after.items():
            self.last_offsets[key] = offset - 1

    def _commit_transaction(self, offsets: list[TopicPartition]) -> bool:
        """Commit the batch's transaction; False when it must be processed again."""
        try:
            metadata = self.consumer.consumer_group_metadata()
            self.producer.send_offsets_to_transaction(offsets, metadata, self.flush_timeout)
            self.producer.commit_transaction(self.flush_timeout)
            return True
        except KafkaException as exc:
            error = exc.args[0]
            log.error("committing a transaction failed (%s); the batch will be retried", error)
            if error.txn_requires_abort():
                self.producer.abort_transaction(self.flush_timeout)
            elif not error.retriable():
                raise
            return False

    def _seek_assigned(self, first: dict[Partition, int]) -> None:
        # Only partitions still ours: a revoked one is replayed by its new owner.
        for (topic, partition), offset in first.items():
            if (topic, partition) in self.assigned:
                self.consumer.seek(TopicPartition(topic, partition, offset))
