"""The at-least-once bookkeeping of the stream loop: commit what is delivered, in order, and
rewind from the first batch whose outputs failed. Fake clients stand in for librdkafka; the
Kafka path itself is covered by the integration tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Collection, Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from eventrules.errors import PoisonEventError
from eventrules.kafka.records import Record
from eventrules.metrics import Metrics
from eventrules.runtime.crash_guard import MARK_CLEAN, run_mark, try_mark
from eventrules.runtime.deadletters import DeadLetterWriter
from eventrules.runtime.stream import StreamLoop


class FakeMessage:
    def __init__(
        self, topic: str, partition: int, offset: int, headers: list[Any] | None = None
    ) -> None:
        self._where = (topic, partition, offset)
        self._headers = headers

    def topic(self) -> str:
        return self._where[0]

    def partition(self) -> int:
        return self._where[1]

    def offset(self) -> int:
        return self._where[2]

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return b'{"offset": %d}' % self._where[2]

    def headers(self) -> list[Any] | None:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_767_225_600_000)

    def error(self) -> None:
        return None


class FakeProducer:
    """Holds delivery callbacks until the test decides each record's fate."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.pending: list[Any] = []
        self.produced: list[tuple[str, Any, Any]] = []
        # (topic, value) -> the error the broker answers it with, every time
        self.refuse: dict[tuple[str, bytes], Any] = {}
        self.flushes = 0
        self.polls = 0

    def produce(self, topic: str, **kwargs: Any) -> None:
        refusal = self.refuse.get((topic, kwargs.get("value") or b""))
        if refusal is not None:  # the broker refuses this one whenever it is sent
            kwargs["on_delivery"](refusal, FakeMessage(topic, 0, 0))
            self.produced.append((topic, kwargs.get("key"), kwargs.get("headers")))
            return
        self.pending.append((topic, kwargs["on_delivery"]))
        self.produced.append((topic, kwargs.get("key"), kwargs.get("headers")))

    def deliver(self, *, fail: Collection[int] = (), error: Any = "broker gone") -> None:
        for index, (topic, callback) in enumerate(self.pending):
            callback(error if index in fail else None, FakeMessage(topic, 0, 0))
        self.pending.clear()

    def poll(self, timeout: float) -> int:
        self.polls += 1
        return 0

    def __len__(self) -> int:
        return len(self.pending)

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
        self.history: list[tuple[str, int, int, str | None]] = []
        self.seeks: list[tuple[str, int, int]] = []
        self.paused: list[tuple[str, int]] = []
        self.resumed: list[tuple[str, int]] = []

    def store_offsets(self, offsets: list[TopicPartition]) -> None:
        self.stored.append(sorted((tp.topic, tp.partition, tp.offset) for tp in offsets))

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits.append(sorted((tp.topic, tp.partition, tp.offset) for tp in offsets))
        for tp in offsets:
            self.marks[(tp.topic, tp.partition)] = (tp.offset, tp.metadata)
            self.history.append((tp.topic, tp.partition, tp.offset, tp.metadata))

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        found = []
        for tp in partitions:
            offset, metadata = self.marks.get((tp.topic, tp.partition), (-1001, None))
            found.append(TopicPartition(tp.topic, tp.partition, offset, metadata=metadata or ""))
        return found

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.topic, tp.partition, tp.offset))

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused.extend((tp.topic, tp.partition) for tp in partitions)

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.resumed.extend((tp.topic, tp.partition) for tp in partitions)


# Which way the loop hands records over: to ``handle`` awaited one by one, or to ``handle_now``
# in compiled code (the worker's events stream). Every test here runs both ways.
_HANDLE_NOW = False


@pytest.fixture(autouse=True, params=["awaited", "now"])
def handler_path(request: pytest.FixtureRequest) -> Iterator[None]:
    global _HANDLE_NOW  # noqa: PLW0603 - read by make_loop, which the tests call directly
    _HANDLE_NOW = request.param == "now"
    yield
    _HANDLE_NOW = False


def make_loop(**options: Any) -> tuple[StreamLoop, FakeProducer, FakeConsumer]:
    async def handle(record: Record) -> None:
        # every event produces one output, like an execution record
        if record.offset in poison:
            raise poison[record.offset]
        if record.offset in waits:
            await asyncio.sleep(0)
        await loop.sender.send("out", record.key, record.value)

    def handle_now(record: Record) -> Awaitable[None] | None:
        if record.offset in poison:
            raise poison[record.offset]
        if record.offset in waits:
            return handle(record)
        loop.sender.send_now("out", record.key, record.value)
        return None

    poison: dict[int, Exception] = options.pop("poison", {})
    # offsets whose handling waits on something (a webhook, run state): awaited in place
    waits: set[int] = options.pop("waits", set())
    loop = StreamLoop(
        {"bootstrap.servers": "127.0.0.1:9"},
        "group",
        ["events"],
        handle=handle,
        handle_now=handle_now if _HANDLE_NOW else None,
        ready=asyncio.Event(),
        make_producer=FakeProducer,
        make_consumer=options.pop("make_consumer", FakeConsumer),
        **options,
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


def _dead_letters() -> tuple[dict[str, Any], DeadLetterWriter]:
    holder: dict[str, Any] = {}

    class Late:
        async def send(self, topic: str, key: Any, value: Any, headers: Any = None) -> None:
            await holder["loop"].sender.send(topic, key, value, headers)

    return holder, DeadLetterWriter("dlq", Late(), Metrics.create())


def _reasons(producer: FakeProducer) -> list[str]:
    return [
        dict(headers)["dlq.reason"].decode()
        for topic, _, headers in producer.produced
        if topic == "dlq"
    ]


def test_a_record_whose_handling_raises_is_dead_lettered_and_the_batch_goes_on() -> None:
    holder, writer = _dead_letters()
    loop, producer, consumer = make_loop(
        dead_letters=writer,
        poison={2: RecursionError("maximum recursion depth"), 3: PoisonEventError("not_json", "x")},
    )
    holder["loop"] = loop
    asyncio.run(loop._process(batch((0, 1), (0, 2), (0, 3), (0, 4))))
    assert [topic for topic, _, _ in producer.produced] == ["out", "dlq", "dlq", "out"]
    assert _reasons(producer) == ["too_deep", "not_json"]
    producer.deliver()
    asyncio.run(loop._after_batch())
    assert consumer.stored == [[("events", 0, 5)]], "the offset advances past the failures"


def test_without_a_dead_letter_writer_a_failure_stops_the_stream() -> None:
    loop, _, _ = make_loop(poison={1: ValueError("bug")})
    with pytest.raises(ValueError, match="bug"):
        asyncio.run(loop._process(batch((0, 1))))


def test_an_output_refused_for_good_condemns_its_input_after_the_attempts_run_out() -> None:
    holder, writer = _dead_letters()
    loop, producer, consumer = make_loop(dead_letters=writer, output_attempts=2)
    holder["loop"] = loop
    producer.refuse["out", b'{"offset": 2}'] = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)
    for attempt in (1, 2):
        asyncio.run(loop._process(batch((0, 1), (0, 2))))
        producer.deliver()
        asyncio.run(loop._after_batch())
        assert consumer.seeks[-1] == ("events", 0, 1), f"attempt {attempt} is rewound"
    assert list(loop.condemned) == [("events", 0, 2)]
    assert loop.condemned[("events", 0, 2)][0] == "output_rejected"
    producer.produced.clear()
    asyncio.run(loop._process(batch((0, 1), (0, 2))))
    assert [topic for topic, _, _ in producer.produced] == ["out", "dlq"]
    assert _reasons(producer) == ["output_rejected"]
    producer.deliver()
    asyncio.run(loop._after_batch())
    assert consumer.stored[-1] == [("events", 0, 3)]


def test_a_passing_delivery_failure_rewinds_without_condemning() -> None:
    holder, writer = _dead_letters()
    loop, producer, _ = make_loop(dead_letters=writer, output_attempts=2)
    holder["loop"] = loop
    for _ in range(3):
        asyncio.run(loop._process(batch((0, 1))))
        producer.deliver(fail={0}, error=KafkaError(KafkaError._MSG_TIMED_OUT))
        asyncio.run(loop._after_batch())
    assert loop.condemned == {}


def test_a_partition_whose_owner_died_is_handled_one_record_at_a_time_behind_marks() -> None:
    loop, _, consumer = make_loop(crash_window=2)
    consumer.marks[("events", 0)] = (5, run_mark("a-worker-that-died"))
    loop._on_assign(consumer, [TopicPartition("events", 0), TopicPartition("events", 1)])
    asyncio.run(loop._process(batch((0, 5), (0, 6), (0, 7), (1, 3))))
    marks = [(o, m) for t, p, o, m in consumer.history if p == 0]
    # a try mark before each record of the window (5, 6), each done one committed after it
    me = loop.owner
    assert marks == [
        (5, try_mark(5, 1, me)),
        (6, run_mark(me)),
        (6, try_mark(6, 1, me)),
        (7, run_mark(me)),
    ]
    assert ("events", 0) not in loop._careful, "the window is over: 7 went normally"


def test_a_record_in_flight_at_two_deaths_is_condemned_as_a_crash_loop() -> None:
    holder, writer = _dead_letters()
    loop, producer, consumer = make_loop(dead_letters=writer)
    holder["loop"] = loop
    consumer.marks[("events", 0)] = (9, try_mark(9, 1, "a-worker-that-died"))
    loop._on_assign(consumer, [TopicPartition("events", 0)])
    asyncio.run(loop._process(batch((0, 9), (0, 10))))
    assert _reasons(producer) == ["crash_loop"]
    assert [topic for topic, _, _ in producer.produced] == ["dlq", "out"]


def test_a_fresh_partition_is_marked_running_before_its_first_batch() -> None:
    loop, _, consumer = make_loop()
    loop._on_assign(consumer, [TopicPartition("events", 0)])
    asyncio.run(loop._process(batch((0, 4), (0, 5))))
    assert consumer.commits[0] == [("events", 0, 4)]
    assert consumer.marks[("events", 0)][1] == run_mark(loop.owner)


def test_a_delay_topic_record_not_yet_due_pauses_its_partition_until_it_is() -> None:
    due = {7: time.time() + 3600}
    loop, producer, consumer = make_loop(due_at=lambda record: due.get(record.offset))
    asyncio.run(loop._process(batch((0, 6), (0, 7), (0, 8), (1, 2))))
    assert [topic for topic, _, _ in producer.produced] == ["out", "out"]  # offsets 6 and (1, 2)
    assert consumer.paused == [("events", 0)]
    assert consumer.seeks == [("events", 0, 7)]
    loop._paused[("events", 0)] = time.time() - 1
    loop._resume_due()
    assert consumer.resumed == [("events", 0)]


def test_a_worker_that_gets_back_partitions_it_lost_alive_is_not_careful() -> None:
    loop, _, consumer = make_loop()
    consumer.marks[("events", 0)] = (5, run_mark(loop.owner))
    consumer.marks[("events", 1)] = (8, try_mark(8, 1, loop.owner))
    loop._on_assign(consumer, [TopicPartition("events", 0), TopicPartition("events", 1)])
    assert ("events", 0) not in loop._careful
    assert loop._careful[("events", 1)].deaths(8) == 1, "its own try mark adds no death"


def test_a_failed_transaction_is_finished_aborted_or_its_producer_replaced() -> None:
    def step(error: KafkaError, committing: bool = True) -> str:
        return StreamLoop._next_step(error, committing=committing)

    assert step(KafkaError(KafkaError._FENCED, fatal=True)) == "replace"
    assert step(KafkaError(KafkaError.PRODUCER_FENCED)) == "replace"
    assert step(KafkaError(KafkaError._TIMED_OUT, retriable=True)) == "finish"
    assert step(KafkaError(KafkaError._CONFLICT)) == "finish"
    assert step(KafkaError(KafkaError._FAIL, txn_requires_abort=True)) == "abort"
    assert step(KafkaError(KafkaError.INVALID_TXN_STATE)) == "abort"
    # only a commit is finished: anything else that failed retriably is aborted
    assert step(KafkaError(KafkaError._TRANSPORT, retriable=True), committing=False) == "abort"
    assert step(KafkaError(KafkaError._CONFLICT), committing=False) == "abort"
    assert step(KafkaError(KafkaError._FENCED, fatal=True), committing=False) == "replace"


class TransactionalFakeProducer(FakeProducer):
    """Says which transactional calls were made; the broker goes away for ``send_offsets``."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.calls: list[str] = []
        self.offsets_fail: KafkaError | None = None
        self.abort_fails = 0

    def init_transactions(self, timeout: float) -> None:
        self.calls.append("init")

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def send_offsets_to_transaction(self, offsets: Any, metadata: Any, timeout: float) -> None:
        self.calls.append("send_offsets")
        if self.offsets_fail is not None:
            raise KafkaException(self.offsets_fail)

    def commit_transaction(self, timeout: float) -> None:
        self.calls.append("commit")

    def abort_transaction(self, timeout: float) -> None:
        self.calls.append("abort")
        if self.abort_fails:
            self.abort_fails -= 1
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, retriable=True))


def test_a_transaction_whose_offsets_were_not_added_is_aborted_never_committed() -> None:
    """librdkafka answers send_offsets_to_transaction with a retriable error when the broker
    is away past its timeout ("Failed to add offsets to transaction ... transport failure").
    The transaction is still open and holds the batch's outputs but not its offsets:
    committing it would publish the outputs while the committed offsets stay behind, and the
    batch would run again (its execution records written twice under exactly-once)."""

    class Group(FakeConsumer):
        def consumer_group_metadata(self) -> object:
            return object()

    made: list[TransactionalFakeProducer] = []

    def make_producer(config: dict[str, Any]) -> TransactionalFakeProducer:
        made.append(TransactionalFakeProducer(config))
        return made[-1]

    loop = StreamLoop(
        {"bootstrap.servers": "127.0.0.1:9"},
        "group",
        ["events"],
        handle=lambda record: loop.sender.send("out", record.key, record.value),
        ready=asyncio.Event(),
        make_producer=make_producer,
        make_consumer=Group,
        exactly_once=True,
    )
    loop.assigned = {("events", 0)}
    first = made[0]
    first.offsets_fail = KafkaError(KafkaError._TRANSPORT, retriable=True)
    first.abort_fails = 1  # the broker is still away for the first abort
    asyncio.run(loop._process_transaction(batch((0, 5), (0, 6))))
    assert first.calls == ["begin", "send_offsets"]
    assert (loop._producer_state, loop._resync) == ("abort", True)
    assert loop._producer_ready() is False, "the abort failed: it is tried again"
    assert loop._producer_state == "abort"
    assert loop._producer_ready() is True
    assert first.calls == ["begin", "send_offsets", "abort", "abort"], "never committed"
    assert [p.calls for p in made[1:]] == [["init"]], "then a fresh producer"
    assert loop.last_offsets == {}, "the batch is not counted as done"


class Listener:
    """Records what the stream tells a partition listener (the state stores)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def assigned(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self.calls.append(("assigned", sorted((tp.topic, tp.partition) for tp in partitions)))

    def revoked(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("revoked", sorted((tp.topic, tp.partition) for tp in partitions)))

    def committed(self, offsets: dict[tuple[str, int], int]) -> None:
        self.calls.append(("committed", offsets))

    def rewound(self, offsets: dict[tuple[str, int], int]) -> None:
        self.calls.append(("rewound", offsets))


def test_the_listener_hears_of_commits_and_of_rewinds_of_failed_deliveries() -> None:
    listener = Listener()
    loop, producer, consumer = make_loop(listener=listener)
    loop._on_assign(consumer, [TopicPartition("events", 0)])
    asyncio.run(loop._process(batch((0, 1), (0, 2))))
    producer.deliver()
    asyncio.run(loop._after_batch())
    asyncio.run(loop._process(batch((0, 3))))
    producer.deliver(fail={0})
    asyncio.run(loop._after_batch())
    loop._on_revoke(consumer, [TopicPartition("events", 0)])
    assert listener.calls == [
        ("assigned", [("events", 0)]),
        ("committed", {("events", 0): 3}),
        ("rewound", {("events", 0): 3}),
        ("revoked", [("events", 0)]),
    ]


def test_a_careful_record_handled_but_not_committed_is_rewound_for_the_listener() -> None:
    listener = Listener()
    loop, _, consumer = make_loop(listener=listener, crash_window=5)
    consumer.marks[("events", 0)] = (5, run_mark("a-worker-that-died"))
    loop._on_assign(consumer, [TopicPartition("events", 0)])
    commit = consumer.commit

    def refuse_the_commit_after_it(offsets: list[TopicPartition], asynchronous: bool) -> None:
        if offsets[0].offset == 6:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        commit(offsets, asynchronous)

    consumer.commit = refuse_the_commit_after_it  # type: ignore[method-assign]
    # 5 is handled and delivered, but its commit fails: it comes again, so do its writes
    asyncio.run(loop._process(batch((0, 5), (0, 6))))
    assert listener.calls[1:] == [("rewound", {("events", 0): 5})]
    assert consumer.seeks[-1] == ("events", 0, 5)


def test_after_a_failed_transaction_the_listener_follows_the_committed_offsets() -> None:
    listener = Listener()
    loop, _, consumer = make_loop(listener=listener, exactly_once=True)
    consumer.marks[("events", 0)] = (12, run_mark(loop.owner))  # its commit went through
    loop._resync = True  # what a failed transaction leaves
    assert loop._transactions_ready() is False, "the batch in hand is read again"
    assert loop._resync is False
    # what came before the committed offsets is kept; after them it is handled again
    assert listener.calls == [
        ("committed", {("events", 0): 12}),
        ("rewound", {("events", 0): 12, ("events", 1): -2}),
    ]
    assert sorted(consumer.seeks) == [("events", 0, 12), ("events", 1, -2)]


def test_a_long_restore_on_assignment_is_not_a_stall() -> None:
    seen: list[bool] = []

    class SlowRestore(Listener):
        def assigned(self, consumer: Any, partitions: list[TopicPartition]) -> None:
            loop.progress_at -= 3600  # as if the restore took an hour
            seen.append(loop.stalled(60))

    loop, _, consumer = make_loop(listener=SlowRestore())
    loop.lag = lambda: 10  # type: ignore[method-assign]
    loop._on_assign(consumer, [TopicPartition("events", 0)])
    assert seen == [False]
    assert loop.stalled(60) is False, "the restore's end counts as progress"
    loop.progress_at -= 3600
    assert loop.stalled(60) is True


def test_a_fenced_transactional_producer_seen_in_a_poll_is_replaced_not_fatal() -> None:
    fenced = KafkaException(KafkaError(KafkaError._FENCED, fatal=True))

    def poll(timeout: float) -> int:
        raise fenced

    loop, producer, _ = make_loop(exactly_once=True)
    producer.poll = poll  # type: ignore[method-assign]
    loop._poll_producer()
    assert (loop._producer_state, loop._resync) == ("replace", True)
    at_least_once, other, _ = make_loop()
    other.poll = poll  # type: ignore[method-assign]
    with pytest.raises(KafkaException):  # no transaction to recover: the worker restarts
        at_least_once._poll_producer()


def test_after_a_failed_transaction_an_unreadable_committed_offset_is_waited_for() -> None:
    """A partition whose committed offset comes back with an error (its coordinator loading
    after a broker restart) is not taken for one never committed: no seek to the reset
    position, which would run everything committed before it again."""

    @dataclass
    class Unread:
        topic: str
        partition: int
        offset: int = -1001
        metadata: str = ""
        error: KafkaError | None = None

    failing = [True]

    class LoadingConsumer(FakeConsumer):
        def committed(self, partitions: list[TopicPartition], timeout: float) -> list[Any]:
            found: list[Any] = super().committed(partitions, timeout)
            if failing[0]:
                found[0] = Unread(
                    found[0].topic,
                    found[0].partition,
                    error=KafkaError(KafkaError.COORDINATOR_LOAD_IN_PROGRESS),
                )
            return found

    loop, _, _ = make_loop(exactly_once=True, make_consumer=LoadingConsumer)
    consumer = cast(LoadingConsumer, loop.consumer)
    loop.assigned = {("events", 0), ("events", 1)}
    consumer.marks[("events", 0)] = (7, "")
    consumer.marks[("events", 1)] = (3, "")
    assert loop._seek_committed() is False
    assert consumer.seeks == [], "nothing is reset while an offset is unknown"
    failing[0] = False
    assert loop._seek_committed() is True
    assert sorted(consumer.seeks) == [("events", 0, 7), ("events", 1, 3)]


def test_a_failed_transaction_with_no_more_input_still_resets_the_position() -> None:
    """The failed batch may have been the last input there was: the reset to the committed
    offsets must not wait for a record that is never coming (it is what would read it again)."""

    class IdleConsumer(FakeConsumer):
        def subscribe(self, topics: list[str], **callbacks: Any) -> None:
            pass

        def poll(self, timeout: float) -> None:
            if self.seeks:
                loop.stop()

        def consume(self, count: int, timeout: float) -> list[Any]:
            return []

        def close(self) -> None:
            pass

    class TransactionalProducer(FakeProducer):
        def init_transactions(self, timeout: float) -> None:
            pass

    loop = StreamLoop(
        {"bootstrap.servers": "127.0.0.1:9"},
        "group",
        ["events"],
        handle=lambda record: asyncio.sleep(0),
        ready=asyncio.Event(),
        make_producer=TransactionalProducer,
        make_consumer=IdleConsumer,
        exactly_once=True,
    )
    loop.assigned = {("events", 0)}
    consumer = cast(IdleConsumer, loop.consumer)
    consumer.marks[("events", 0)] = (7, run_mark(loop.owner))
    loop._resync = True  # what a failed (or abandoned) transaction leaves
    asyncio.run(asyncio.wait_for(loop.run(), 30))
    assert ("events", 0, 7) in consumer.seeks
    assert loop._resync is False


def test_a_hand_over_commits_what_was_stored_since_the_last_auto_commit() -> None:
    """At-least-once: delivered batches are stored and committed by librdkafka every few
    seconds; a revoke in between must hand over the stored offsets, not the older committed
    ones (the next owner would run those events again)."""
    loop, producer, consumer = make_loop()
    consumer.marks[("events", 0)] = (1, run_mark(loop.owner))  # the last auto-commit
    asyncio.run(loop._process(batch((0, 1), (0, 2), (0, 3))))
    producer.deliver()
    asyncio.run(loop._after_batch())
    assert consumer.stored == [[("events", 0, 4)]]
    assert consumer.marks[("events", 0)][0] == 1, "stored, not yet auto-committed"
    loop._on_revoke(consumer, [TopicPartition("events", 0)])
    assert consumer.marks[("events", 0)] == (4, MARK_CLEAN)
    assert all(offset >= 4 for _, partition, offset, _ in consumer.history if partition == 0)


def test_records_that_wait_are_awaited_in_their_place_among_the_others() -> None:
    holder, writer = _dead_letters()
    loop, producer, consumer = make_loop(
        dead_letters=writer, waits={2, 4}, poison={3: PoisonEventError("not_json", "x")}
    )
    holder["loop"] = loop
    asyncio.run(loop._process(batch((0, 1), (0, 2), (0, 3), (0, 4), (0, 5))))
    assert [topic for topic, _, _ in producer.produced] == ["out", "out", "dlq", "out", "out"]
    assert [offset for _, _, offset in _attributed(producer)] == [1, 2, 3, 4, 5]
    producer.deliver()
    asyncio.run(loop._after_batch())
    assert consumer.stored == [[("events", 0, 6)]]


def _attributed(producer: FakeProducer) -> list[tuple[str, int, int]]:
    """The input each pending output is attributed to, read from its delivery callback."""
    return [callback.source for _, callback in producer.pending]


# the awaited path waits for room in KafkaSender.send instead
@pytest.mark.parametrize("handler_path", ["now"], indirect=True)
def test_a_full_producer_queue_is_let_drain_before_records_are_handled_at_once() -> None:
    loop, producer, _ = make_loop()
    backlog = [60_000]
    producer.__class__ = type(
        "Backlogged",
        (FakeProducer,),
        {
            "__len__": lambda self: backlog[0],
            "poll": lambda self, timeout: backlog.__setitem__(0, backlog[0] - 20_000) or 0,
        },
    )
    asyncio.run(loop._process(batch((0, 1))))
    assert backlog == [40_000], "polled until the queue was below the room kept"
    assert [topic for topic, _, _ in producer.produced] == ["out"]
