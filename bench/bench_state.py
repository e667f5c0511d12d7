"""State stores: restore time and changelog size with N keys, and the cost of a decision.

Restore: N keys (1,000,000) of throttle entries, as the worker writes them, are produced to a
state-changelog topic of 6 partitions. Each partition is then restored into a fresh SQLite
store, one after the other, as a worker assigned all of them does
(``runtime/state/changelog.restore_partition``); the baseline is a plain confluent-kafka read of
the same records without applying them. Then the same stores are restored again from their
local files (a restarted worker on the same host: only the tail is read). Printed: seconds,
records/s, the changelog's size (records and bytes of keys, values and headers, and the
broker's segment files when ``--log-dir`` names its data folder), the local files' size, and
the keys restored as proof.

Decisions: the state stream's handler decides M throttle requests over K keys against one
partition store (no broker: outputs collected in memory), next to the same runs executed
without state by the runner; decisions/s and the ratio.

    .venv/bin/python bench/bench_state.py            # 1,000,000 keys, a few minutes
    .venv/bin/python bench/bench_state.py --quick    # 20,000 keys, a smoke run
    .venv/bin/python bench/bench_state.py --bootstrap 127.0.0.1:9092 --log-dir .eventrules/kafka
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from eventrules.kafka.clients import consumer_config, private_group
from eventrules.kafka.records import Record
from eventrules.metrics import Metrics
from eventrules.models.events import Event
from eventrules.runtime.deadletters import DeadLetterWriter
from eventrules.runtime.runner import WorkflowRunner
from eventrules.runtime.state.changelog import (
    changelog_headers,
    restore_partition,
)
from eventrules.runtime.state.processor import StateProcessor
from eventrules.runtime.state.router import StateRouter
from eventrules.runtime.state.store import PartitionStore, encode_entry
from eventrules.settings import TopicNames
from eventrules.workflows.engine import Engine
from eventrules.workflows.plan import PlannedWorkflow, RenderedAction
from worker_harness import kafka

PARTITIONS = 6
T0 = 1_793_613_600.0  # 2026-11-02T10:00:00Z


def _entry(n: int) -> dict[str, Any]:
    return {"kind": "throttle", "runs": [[T0 + n, str(uuid.UUID(int=n))]]}


def produce_changelog(bootstrap: str, topic: str, keys: int) -> int:
    """N keys spread over the partitions; returns the bytes of keys, values and headers."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
        }
    )
    size = 0
    for n in range(keys):
        key = f"throttle\x1flow-stock-alert-throttled\x1fproduct-{n}".encode()
        value = encode_entry(_entry(n), T0 + n + 21600) or b""
        headers = changelog_headers(n)
        size += len(key) + len(value) + sum(len(k) + len(v or b"") for k, v in headers)
        while True:
            try:
                producer.produce(
                    topic, key=key, value=value, partition=n % PARTITIONS, headers=headers
                )
                break
            except BufferError:
                producer.poll(0.1)
        if n % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120):
        raise SystemExit("changelog records undelivered")
    return size


def raw_read(bootstrap: str, topic: str) -> tuple[int, float]:
    """Every record of the changelog read with confluent-kafka and dropped: the baseline. One
    consumer per partition with the restore's own settings, so only the applying differs."""
    started = time.perf_counter()
    count = 0
    for partition in range(PARTITIONS):
        consumer = Consumer(
            consumer_config(
                {"bootstrap.servers": bootstrap},
                private_group("bench"),
                extra={"fetch.max.bytes": 64 * 1024 * 1024, "enable.partition.eof": True},
            )
        )
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
        consumer.assign([TopicPartition(topic, partition, 0)])
        position = 0
        while position < high:
            for message in consumer.consume(10_000, 0.1):
                if message.error() is None:
                    count += 1
                    message.key()
                    message.value()
                    message.headers()
            (tp,) = consumer.position([TopicPartition(topic, partition)])
            position = max(position, tp.offset)
        consumer.close()
    return count, time.perf_counter() - started


def restore_all(bootstrap: str, topic: str, folder: Path) -> tuple[int, int, float]:
    """Restore every partition into ``folder``; returns (records read, keys held, seconds)."""
    client = {"bootstrap.servers": bootstrap}
    started = time.perf_counter()
    records = keys = 0
    for partition in range(PARTITIONS):
        store = PartitionStore(folder / f"{partition}.sqlite", partition)
        restored = restore_partition(store, client, topic, committed_input=1 << 62, repair=None)
        records += restored.records
        keys += len(store)
        store.close()
    return records, keys, time.perf_counter() - started


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


class _Collect:
    def __init__(self) -> None:
        self.count = 0

    async def send(
        self, topic: str, key: Any, value: Any, headers: Any = None, *, partition: int | None = None
    ) -> None:
        self.count += 1


class _NoProducer:
    def __init__(self, config: dict[str, Any]) -> None:
        pass

    def flush(self, timeout: float) -> int:
        return 0


def decisions(requests: int, keys: int, folder: Path) -> tuple[float, float, int]:
    """Throttle decisions/s through the state handler, runs/s without state, runs made."""
    sender = _Collect()
    metrics = Metrics.create()
    topics = TopicNames("b.")
    router = StateRouter("b.state-repartition", sender)
    runner = WorkflowRunner(Engine(), topics=topics, sender=sender, metrics=metrics, state=router)
    processor = StateProcessor(
        client_config={},
        repartition_topic="b.state-repartition",
        changelog_topic="b.state-changelog",
        state_dir=None,
        runner=runner,
        router=router,
        sender=sender,  # type: ignore[arg-type]
        dead_letters=DeadLetterWriter(topics.dlq, sender, metrics),
        metrics=metrics,
        make_producer=_NoProducer,  # type: ignore[arg-type]
    )
    store = processor.stores[0] = PartitionStore(folder / "decisions.sqlite", 0)
    action = RenderedAction(0, "send_email", {"to": "a@example.com", "subject": "s", "body": "b"})
    planned = PlannedWorkflow("w", "w", 1, 5, (action,))
    values = []
    for n in range(requests):
        event = {
            "id": f"e{n}",
            "type": "product.low_stock",
            "source": "bench",
            "time": "2026-11-02T10:00:00Z",
            "data": {"productId": f"p{n % keys}"},
        }
        gate = {"kind": "throttle", "key": f"p{n % keys}", "limit": 1, "window": 21600.0}
        values.append(
            orjson.dumps(
                {"op": "gate", "planned": planned.to_dict() | {"gates": [gate]}, "event": event}
            )
        )

    async def gated() -> None:
        for offset, value in enumerate(values):
            await processor.handle(Record("b.state-repartition", 0, offset, None, value, [], None))
            if offset % 500 == 499:
                store.flush(offset + 1)  # as the stream does once a batch is committed

    started = time.perf_counter()
    asyncio.run(gated())
    with_state = requests / (time.perf_counter() - started)
    runs = sender.count
    events = [Event.model_validate(orjson.loads(v)["event"]) for v in values]

    async def plain() -> None:
        for event in events:
            await runner.execute(planned, event, "event")

    started = time.perf_counter()
    asyncio.run(plain())
    without = requests / (time.perf_counter() - started)
    store.close()
    return with_state, without, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="an existing cluster; default: start a broker")
    parser.add_argument("--quick", action="store_true", help="20,000 keys, a smoke run")
    parser.add_argument("--keys", type=int, help="state keys in the changelog (1,000,000)")
    parser.add_argument("--requests", type=int, help="throttle requests decided (100,000)")
    parser.add_argument("--log-dir", type=Path, help="the broker's data folder, for disk size")
    args = parser.parse_args()
    keys = args.keys or (20_000 if args.quick else 1_000_000)
    requests = args.requests or (5_000 if args.quick else 100_000)

    with kafka(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        topic = f"bench-state-{uuid.uuid4().hex[:8]}.state-changelog"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        config = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
        for future in admin.create_topics([NewTopic(topic, PARTITIONS, 1, config=config)]).values():
            future.result()
        started = time.perf_counter()
        payload = produce_changelog(bootstrap, topic, keys)
        print(
            f"changelog: {keys:,} keys over {PARTITIONS} partitions written in "
            f"{time.perf_counter() - started:.1f}s; {payload / 2**20:,.1f} MiB of keys, values "
            f"and headers ({payload / keys:.0f} bytes per key)",
            flush=True,
        )
        if args.log_dir is not None:
            on_disk = sum(
                segment.stat().st_size
                for path in args.log_dir.rglob(f"{topic}-*")
                for segment in path.glob("*.log")
            )
            print(f"  broker segment files: {on_disk / 2**20:,.1f} MiB (lz4-compressed batches)")
        raw_read(bootstrap, topic)  # warms the broker's page cache and fetch path for both
        read, raw_seconds = raw_read(bootstrap, topic)
        print(
            f"  baseline, a plain confluent-kafka read: {read:,} records in {raw_seconds:.2f}s "
            f"({read / raw_seconds:,.0f} records/s)",
            flush=True,
        )
        stores = folder / "stores"
        records, held, seconds = restore_all(bootstrap, topic, stores)
        print(
            f"  restore into empty SQLite stores: {records:,} records in {seconds:.2f}s "
            f"({records / seconds:,.0f} records/s, {seconds / raw_seconds:.1f}x the plain "
            f"read); {held:,} keys held; local files {folder_bytes(stores) / 2**20:,.1f} MiB",
            flush=True,
        )
        again, _, tail_seconds = restore_all(bootstrap, topic, stores)
        print(
            f"  restart on the same host (local files kept): {again:,} records read in "
            f"{tail_seconds:.2f}s",
            flush=True,
        )
        if held != keys:
            raise SystemExit(f"restored {held:,} keys, wrote {keys:,}")

        with_state, without, runs = decisions(requests, max(1, requests // 10), folder)
        print(
            f"decisions: {requests:,} throttle requests over {max(1, requests // 10):,} keys: "
            f"{with_state:,.0f}/s through the state handler (SQLite store, changelog writes "
            f"collected), {without:,.0f} runs/s without state ({with_state / without:.2f}x); "
            f"{runs:,} outputs",
            flush=True,
        )


if __name__ == "__main__":
    main()
