"""The event stream: one consumer group over the event topics, batch by batch.

Delivery per batch:

* ``at_least_once``: run every event, flush the producer (every action message, execution
  record and dead letter acknowledged by the broker), then commit the batch's offsets. A crash
  before the commit replays the batch; deterministic ids make the replay recognisable.
* ``exactly_once``: the batch's outputs and its offsets go into one Kafka transaction
  (KIP-447: the transaction is fenced by the consumer group's generation), so read_committed
  consumers see each output once even across crashes and rebalances.

If the outputs of a batch cannot be delivered (a broker gone for longer than the producer's
retries), the batch is rewound and retried: nothing is committed that was not delivered.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from eventrules.runtime.runner import Headers, Record

__all__ = ["KafkaSender", "StreamLoop", "offsets_after"]

log = logging.getLogger(__name__)

Handler = Callable[[Record], Any]


class KafkaSender:
    """The runner's :class:`~eventrules.runtime.runner.Sender` over a confluent-kafka producer.

    ``send`` only enqueues; :meth:`flush` waits for the acknowledgements and reports failures.
    """

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.failures: list[str] = []

    def _delivered(self, error: Any, message: Message) -> None:
        if error is not None:
            self.failures.append(f"{message.topic()}: {error}")

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> None:
        while True:
            try:
                self.producer.produce(
                    topic,
                    value=value,
                    key=key,
                    headers=cast(Any, headers) or None,
                    on_delivery=self._delivered,
                )
                return
            except BufferError:
                # The local queue is full: let librdkafka send some before queueing more.
                await asyncio.to_thread(self.producer.poll, 0.1)

    def flush(self, timeout: float) -> list[str]:
        """Wait for every queued record; returns and clears the delivery failures."""
        remaining = self.producer.flush(timeout)
        failures, self.failures = self.failures, []
        if remaining:
            failures.append(f"{remaining} record(s) still undelivered after {timeout}s")
        return failures


def offsets_after(messages: list[Message]) -> list[TopicPartition]:
    """The offsets to commit after ``messages``: one past the last of each partition."""
    last: dict[tuple[str, int], int] = {}
    for message in messages:
        key = (message.topic() or "", message.partition() or 0)
        last[key] = max(last.get(key, -1), message.offset() or 0)
    return [
        TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in last.items()
    ]


def _first_offsets(messages: list[Message]) -> list[TopicPartition]:
    first: dict[tuple[str, int], int] = {}
    for message in messages:
        key = (message.topic() or "", message.partition() or 0)
        offset = message.offset() or 0
        first[key] = min(first.get(key, offset), offset)
    return [
        TopicPartition(topic, partition, offset) for (topic, partition), offset in first.items()
    ]


def _record(message: Message) -> Record:
    kind, timestamp = message.timestamp()
    return Record(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=message.key(),
        value=message.value(),
        headers=cast(Headers, list(message.headers() or [])),
        timestamp_ms=timestamp if kind and timestamp > 0 else None,
    )


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
    assigned: set[tuple[str, int]] = field(default_factory=set)
    last_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    batches: int = 0

    def __post_init__(self) -> None:
        self._stopping = False
        producer_config: dict[str, Any] = {
            **self.client_config,
            "linger.ms": 5,
            "enable.idempotence": True,
            "acks": "all",
        }
        if self.exactly_once:
            # One transactional id per process; KIP-447 fencing uses the group generation,
            # so ids need not be tied to partitions.
            producer_config["transactional.id"] = f"{self.group_id}-{uuid.uuid4().hex}"
        self.producer = Producer(producer_config)
        self.sender = KafkaSender(self.producer)
        self.consumer = Consumer(
            {
                **self.client_config,
                "group.id": self.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": self.auto_offset_reset,
                "isolation.level": "read_committed",
                "session.timeout.ms": self.session_timeout_ms,
                "heartbeat.interval.ms": max(1000, self.session_timeout_ms // 4),
            }
        )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned = {(tp.topic, tp.partition) for tp in partitions}
        log.info("assigned %s", sorted(self.assigned))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Every processed batch is already committed before the next poll, so a revoke has
        # nothing in flight to save.
        log.info("revoked %s", sorted((tp.topic, tp.partition) for tp in partitions))
        self.assigned = set()

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> None:
        """Consume until :meth:`stop`; then leave the group cleanly."""
        if self.exactly_once:
            await asyncio.to_thread(self.producer.init_transactions, 60)
        self.consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while not self._stopping:
                messages = await asyncio.to_thread(self._next_batch)
                batch = [m for m in messages if not self._is_noise(m)]
                if not batch:
                    continue
                if not self.ready.is_set():
                    # The ready gate: no event is evaluated against a half-loaded config table.
                    await self.ready.wait()
                await self._process(batch)
        finally:
            await asyncio.to_thread(self._close)

    def _next_batch(self) -> list[Message]:
        """Wait up to 0.2 s for the first record, then take what is already fetched.

        ``consume(n, timeout)`` alone waits the whole timeout unless n records arrive, which
        would add up to the timeout to every event's latency at moderate rates.
        """
        first = self.consumer.poll(0.2)
        if first is None:
            return []
        return [first, *self.consumer.consume(self.batch_size - 1, 0)]

    def _close(self) -> None:
        self.producer.flush(10)
        self.consumer.close()

    @staticmethod
    def _is_noise(message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        if error.code() != error._PARTITION_EOF:
            log.warning("consumer: %s", error)
        return True

    async def _process(self, batch: list[Message]) -> None:
        if self.exactly_once:
            self.producer.begin_transaction()
        for message in batch:
            await self.handle(_record(message))
        offsets = offsets_after(batch)
        committed = await asyncio.to_thread(self._complete, offsets)
        if not committed:
            await asyncio.to_thread(self._rewind, batch)
            return
        self.batches += 1
        for tp in offsets:
            self.last_offsets[(tp.topic, tp.partition)] = tp.offset - 1

    def _complete(self, offsets: list[TopicPartition]) -> bool:
        """Make the batch durable; False when it must be processed again."""
        try:
            if self.exactly_once:
                metadata = self.consumer.consumer_group_metadata()
                self.producer.send_offsets_to_transaction(offsets, metadata, self.flush_timeout)
                self.producer.commit_transaction(self.flush_timeout)
                return True
            failures = self.sender.flush(self.flush_timeout)
            if failures:
                log.error("outputs not delivered, batch will be retried: %s", failures[:5])
                return False
            self.consumer.commit(offsets=offsets, asynchronous=False)
            return True
        except KafkaException as exc:
            error = exc.args[0]
            log.error("completing a batch failed (%s); it will be processed again", error)
            if self.exactly_once:
                if error.txn_requires_abort():
                    self.producer.abort_transaction(self.flush_timeout)
                elif not error.retriable():
                    raise
            return False

    def _rewind(self, batch: list[Message]) -> None:
        # Only partitions still ours: a revoked one is replayed by its new owner.
        for tp in _first_offsets(batch):
            if (tp.topic, tp.partition) in self.assigned:
                self.consumer.seek(tp)
