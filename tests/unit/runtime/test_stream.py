"""The at-least-once bookkeeping of the stream loop: commit what is delivered, in order, and
rewind from the first batch whose outputs failed. Fake clients stand in for librdkafka; the
Kafka path itself is covered by the integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

from confluent_kafka import TopicPartition

from eventrules.kafka.records import Record
from eventrules.runtime.crash_guard import MARK_CLEAN
from eventrules.runtime.stream import StreamLoop


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self._where = (topic, partition, offset)

    def topic(self) -> str:
        return self._where[0]

    def partition(self) -> int:
        return self._where[1]

    def offset(self) -> int:
        return self._where[2]

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return b"{}"

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_767_225_600_000)

    def error(self) -> None:
        return None


class FakeProducer:
    """Holds delivery callbacks until the test decides each record's fate."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.pending: list[Any] = []
        self.flushes = 0

    def produce(self, topic: str, **kwargs: Any) -> None:
        self.pending.append((topic, kwargs["on_delivery"]))

    def deliver(self, *, fail: Collection[int] = ()) -> None:
        for index, (topic, callback) in enumerate(self.pending):
            callback("broker gone" if index in fail else None, FakeMessage(topic, 0, 0))
        self.pending.clear()

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        self.flushes += 1
        self.deliver()
        return 0


class FakeConsumer:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.stored: list[list[tuple[str, int, int]]] = []
        self.commits: list[list[tuple[str, int, int]]] = []
        # what the group holds per partition: (offset, commit metadata)
        self.marks: dict[tuple[str, int], tuple[int, str | None]] = {}
        self.seeks: list[tuple[str, int, int]] = []

    def store_offsets(self, offsets: list[TopicPartition]) -> None:
        self.stored.append(sorted((tp.topic, tp.partition, tp.offset) for tp in offsets))

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits.append(sorted((tp.topic, tp.partition, tp.offset) for tp in offsets))
        for tp in offsets:
            self.marks[(tp.topic, tp.partition)] = (tp.offset, tp.metadata)

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        found = []
        for tp in partitions:
            offset, metadata = self.marks.get((tp.topic, tp.partition), (-1001, None))
            found.append(TopicPartition(tp.topic, tp.partition, offset, metadata=metadata))
        return found

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.topic, tp.partition, tp.offset))


def make_loop() -> tuple[StreamLoop, FakeProducer, FakeConsumer]:
    async def handle(record: Record) -> None:
        # every event produces one output, like an execution record
        await loop.sender.send("out", record.key, record.value)

    loop = StreamLoop(
        {"bootstrap.servers": "127.0.0.1:9"},
        "group",
        ["events"],
        handle=handle,
        ready=asyncio.Event(),
        make_producer=FakeProducer,
        make_consumer=FakeConsumer,
    )
    loop.assigned = {("events", 0), ("events", 1)}
    return loop, loop.producer, loop.consumer


def batch(*where: tuple[int, int]) -> list[Any]:
    return [FakeMessage("events", partition, offset) for partition, offset in where]


def test_offsets_are_stored_only_once_the_batch_outputs_are_acknowledged() -> None:
    loop, producer, consumer = make_loop()
    asyncio.run(loop._process(batch((0, 10), (0, 11), (1, 5))))
    assert consumer.stored == [], "nothing is stored before the broker acknowledges"
    assert consumer.config["enable.auto.commit"] is True
    assert consumer.config["enable.auto.offset.store"] is False
    producer.deliver()
    asyncio.run(loop._after_batch())
    assert consumer.stored == [[("events", 0, 12), ("events", 1, 6)]]
    assert loop.last_offsets == {("events", 0): 11, ("events", 1): 5}


def test_a_later_batch_waits_for_an_earlier_unacknowledged_one() -> None:
    loop, producer, consumer = make_loop()
    asyncio.run(loop._process(batch((0, 1))))
    first_outputs = list(producer.pending)
    producer.pending.clear()
    asyncio.run(loop._process(batch((0, 2))))
    producer.deliver()  # the second batch's output is acknowledged first
    asyncio.run(loop._after_batch())
    assert consumer.stored == []
    producer.pending = first_outputs
    producer.deliver()
    asyncio.run(loop._after_batch())
    assert consumer.stored == [[("events", 0, 3)]]


def test_a_failed_batch_and_every_later_one_are_rewound_and_not_committed() -> None:
    loop, producer, consumer = make_loop()
    asyncio.run(loop._process(batch((0, 1), (1, 7))))
    producer.deliver()
    asyncio.run(loop._process(batch((0, 2), (0, 3))))
    asyncio.run(loop._process(batch((0, 4), (1, 8))))
    producer.deliver(fail={0})  # one output of the second batch fails
    asyncio.run(loop._after_batch())
    assert consumer.stored == [[("events", 0, 2), ("events", 1, 8)]]
    assert sorted(consumer.seeks) == [("events", 0, 2), ("events", 1, 8)]
    assert loop._in_flight == type(loop._in_flight)()


def test_a_revoke_flushes_and_commits_synchronously_what_was_delivered() -> None:
    loop, producer, consumer = make_loop()
    asyncio.run(loop._process(batch((0, 1), (1, 1))))
    loop._on_revoke(consumer, [TopicPartition("events", 0), TopicPartition("events", 1)])
    assert producer.flushes == 1
    assert consumer.commits[0] == [("events", 0, 2), ("events", 1, 2)]
    assert consumer.marks[("events", 0)] == (2, MARK_CLEAN), "a hand-over is marked clean"
    assert loop.assigned == set()
