"""The evaluation of Quix Streams behind ARCHITECTURE.md's "State stores: why not Quix Streams".

Same broker, same events, one process after the other: N JSON events (200,000) keyed over K
products (10,000), 3 partitions, each read, decoded, counted per key in state (stateful runs
only), and written to an output topic:

* a plain confluent-kafka loop (consume, decode, produce): the baseline;
* our StreamLoop without state, and with a SQLite partition store and changelog writes
  (``runtime/state/store.py``: a get and a write per event, one changelog record);
* a Quix Streams application without state, and with its RocksDB state (``state.get`` /
  ``state.set``, its changelog topic);
* restore: each stateful run's state is restored into an empty store (ours: the changelog
  through ``restore_partition``; Quix: a new application over the same group with its state
  folder removed).

Quix Streams is not a dependency of eventrules: run this from a virtualenv that has both::

    python3 -m venv /tmp/quixenv && /tmp/quixenv/bin/pip install quixstreams -e .
    /tmp/quixenv/bin/python bench/eval_quixstreams.py --bootstrap 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from eventrules.kafka.clients import private_group
from eventrules.kafka.records import Record
from eventrules.runtime.state.changelog import changelog_headers, restore_partition
from eventrules.runtime.state.store import PartitionStore, encode_entry
from eventrules.runtime.stream import StreamLoop, stream_sender

PARTITIONS = 3


def _topics(bootstrap: str, *names: str, compact: bool = False) -> None:
    config = {"cleanup.policy": "compact"} if compact else {}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [NewTopic(name, PARTITIONS, 1, config=config) for name in names]
    for future in admin.create_topics(topics).values():
        future.result()


def _produce(bootstrap: str, topic: str, events: int, keys: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for n in range(events):
        key = f"product-{n % keys}"
        value = json.dumps({"productId": key, "stock": n % 10}).encode()
        while True:
            try:
                producer.produce(topic, value, key=key.encode())
                break
            except BufferError:
                producer.poll(0.1)
    producer.flush()


def _count(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": private_group("eval")})
    total = 0
    for partition in range(PARTITIONS):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        total += high - low
    consumer.close()
    return total


def _wait_for(bootstrap: str, topic: str, events: int) -> float:
    """Seconds from the first output record to the N-th (polled high watermarks)."""
    first = None
    while True:
        count = _count(bootstrap, topic)
        if count and first is None:
            first = time.perf_counter()
        if count >= events:
            return time.perf_counter() - (first or time.perf_counter())
        time.sleep(0.05)


def plain(bootstrap: str, source: str, out: str, events: int) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": private_group("plain"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
        }
    )
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    consumer.subscribe([source])
    seen = 0
    started = None
    while seen < events:
        for message in consumer.consume(500, 1.0):
            if message.error():
                continue
            started = started or time.perf_counter()
            value = json.loads(message.value())
            producer.produce(out, json.dumps(value).encode(), key=message.key())
            seen += 1
        producer.poll(0)
    producer.flush()
    consumer.close()
    return time.perf_counter() - (started or time.perf_counter())


class _Counting:
    """Our stream loop's handler and partition listener: a count per key in a partition store,
    each change written to the changelog, as the state stream does."""

    def __init__(self, folder: Path, out: str, changelog: str | None) -> None:
        self.folder = folder
        self.out = out
        self.changelog = changelog
        self.stores: dict[int, PartitionStore] = {}
        self.sender: Any = None

    def assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.stores[tp.partition] = PartitionStore(
                self.folder / f"{tp.partition}.sqlite", tp.partition
            )

    def revoked(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            store = self.stores.pop(tp.partition, None)
            if store is not None:
                store.close()

    def committed(self, offsets: dict[tuple[str, int], int]) -> None:
        for (_, partition), offset in offsets.items():
            if partition in self.stores:
                self.stores[partition].flush(offset)

    def rewound(self, offsets: dict[tuple[str, int], int]) -> None:
        for (_, partition), offset in offsets.items():
            if partition in self.stores:
                self.stores[partition].rewind(offset)

    async def handle(self, record: Record) -> None:
        value = json.loads(record.value or b"{}")
        if self.changelog is not None:
            store = self.stores[record.partition]
            key = (record.key or b"").decode()
            entry = store.get(key) or {"n": 0}
            entry = {"n": entry["n"] + 1}
            store.write(record.offset, key, entry, None)
            await self.sender.send(
                self.changelog,
                record.key,
                encode_entry(entry, None),
                changelog_headers(record.offset),
                partition=record.partition,
            )
            value["n"] = entry["n"]
        await self.sender.send(self.out, record.key, json.dumps(value).encode())


def ours(bootstrap: str, source: str, out: str, events: int, changelog: str | None) -> float:
    client = {"bootstrap.servers": bootstrap}
    group = private_group("ours")
    with tempfile.TemporaryDirectory() as folder:
        counting = _Counting(Path(folder), out, changelog)
        sender = stream_sender(client, group, exactly_once=False)
        counting.sender = sender
        loop = StreamLoop(
            client,
            group,
            [source],
            handle=counting.handle,
            ready=asyncio.Event(),
            output=sender,
            listener=counting,
        )
        loop.ready.set()

        async def run() -> float:
            task = asyncio.create_task(loop.run())
            seconds = await asyncio.to_thread(_wait_for, bootstrap, out, events)
            loop.stop()
            await task
            return seconds

        return asyncio.run(run())


def quix(
    bootstrap: str, source: str, out: str, events: int, *, stateful: bool, folder: Path, group: str
) -> float:
    from quixstreams import Application  # noqa: PLC0415  (optional: only this evaluation)

    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=str(folder),
        loglevel="WARNING",
    )
    sdf = app.dataframe(app.topic(source, value_deserializer="json"))
    if stateful:

        def count(value: dict[str, Any], state: Any) -> None:
            state.set("n", (state.get("n", 0) or 0) + 1)
            value["n"] = state.get("n")

        sdf = sdf.update(count, stateful=True)
    sdf.to_topic(app.topic(out, value_serializer="json"))
    # timed like ours, first output to N-th; Application.run wants the main thread
    measured: list[float] = []
    watcher = threading.Thread(
        target=lambda: measured.append(_wait_for(bootstrap, out, events)), daemon=True
    )
    watcher.start()
    app.run(count=events, timeout=60)
    watcher.join()
    return measured[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=10_000)
    args = parser.parse_args()
    run = uuid.uuid4().hex[:6]
    source = f"eval-{run}-events"
    _topics(args.bootstrap, source, *(f"eval-{run}-out-{n}" for n in range(5)))
    _topics(args.bootstrap, f"eval-{run}-changelog", compact=True)
    _produce(args.bootstrap, source, args.events, args.keys)
    print(f"{args.events:,} events over {args.keys:,} keys, {PARTITIONS} partitions")
    base = args.events / plain(args.bootstrap, source, f"eval-{run}-out-0", args.events)
    print(f"  plain confluent-kafka loop      {base:>9,.0f} events/s")
    figures = {
        "our stream loop, no state": ours(
            args.bootstrap, source, f"eval-{run}-out-1", args.events, None
        ),
        "our stream loop + SQLite store": ours(
            args.bootstrap, source, f"eval-{run}-out-2", args.events, f"eval-{run}-changelog"
        ),
    }
    quix_state = Path(tempfile.mkdtemp(prefix="eval-quix-"))
    figures["Quix Streams, no state"] = quix(
        args.bootstrap,
        source,
        f"eval-{run}-out-3",
        args.events,
        stateful=False,
        folder=quix_state,
        group=f"q0-{run}",
    )
    figures["Quix Streams + RocksDB state"] = quix(
        args.bootstrap,
        source,
        f"eval-{run}-out-4",
        args.events,
        stateful=True,
        folder=quix_state,
        group=f"q1-{run}",
    )
    for label, seconds in figures.items():
        rate = args.events / seconds
        print(f"  {label:<31} {rate:>9,.0f} events/s  ({rate / base:.2f}x the plain loop)")

    client = {"bootstrap.servers": args.bootstrap}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for partition in range(PARTITIONS):
            store = PartitionStore(Path(folder) / f"{partition}.sqlite", partition)
            restore_partition(
                store, client, f"eval-{run}-changelog", committed_input=1 << 62, repair=None
            )
            store.close()
    print(
        f"  restore, ours: {_count(args.bootstrap, f'eval-{run}-changelog'):,} changelog "
        f"records in {time.perf_counter() - started:.1f}s"
    )
    quix_changelog = f"changelog__q1-{run}--{source}--default"
    quix_records = _count(args.bootstrap, quix_changelog)
    shutil.rmtree(quix_state)
    _produce(args.bootstrap, source, PARTITIONS, 1)
    from quixstreams import Application  # noqa: PLC0415

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=f"q1-{run}",
        auto_offset_reset="earliest",
        state_dir=str(quix_state),
        loglevel="WARNING",
    )
    sdf = app.dataframe(app.topic(source, value_deserializer="json"))
    sdf = sdf.update(lambda value, state: state.set("n", 1), stateful=True)
    started = time.perf_counter()
    app.run(count=1, timeout=120)
    print(
        f"  restore, Quix Streams: {quix_records:,} changelog records (a key's latest value once"
        f" per checkpoint) in {time.perf_counter() - started:.1f}s,"
        " with its group join and one event"
    )
    shutil.rmtree(quix_state, ignore_errors=True)


if __name__ == "__main__":
    main()
