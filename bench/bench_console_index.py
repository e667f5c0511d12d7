"""What the console's execution index costs: disk and memory per million executions, how fast
it is built, and how fast the history pages query it.

N execution records shaped like the worker's (1,000 workflows, two actions each, 5% failed
with an error, a full event of ~300 bytes) are indexed in batches of 1,000 the way the
follower does (``ExecutionIndex.add``). Printed next to baselines measured in the same run:

* disk: the index file (after a WAL checkpoint) against the JSON bytes of the same records,
  i.e. what the executions topic holds for them before compression;
* build rate: rows/s into the index against rows/s into a bare table with the same columns
  and no secondary index (what the filters cost to maintain);
* memory: the process's RSS before and after, and its peak (the page cache is bounded at
  32 MiB, so memory does not grow with the row count);
* queries: median latency of the pages the console serves (newest 50, a workflow, failed
  only, one event id, a page 200 deep by cursor).

    .venv/bin/python bench/bench_console_index.py            # 1,000,000 records, a few minutes
    .venv/bin/python bench/bench_console_index.py --quick    # 50,000 records, seconds
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from eventrules.console.index import ExecutionFilter, ExecutionIndex, row_of
from eventrules.ops.executions import LoggedExecution

SEED = 20261201
WORKFLOWS = 1000
BATCH = 1000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms


def _status() -> dict[str, int]:
    values: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in {"VmRSS", "VmHWM"}:
            values[name] = int(rest.split()[0]) // 1024
    return values


def records(count: int, rng: random.Random) -> Iterator[list[LoggedExecution]]:
    batch: list[LoggedExecution] = []
    for n in range(count):
        workflow = f"workflow-{rng.randrange(WORKFLOWS):04d}"
        failed = rng.random() < 0.05
        at = T0 + n * 250
        event_id = uuid.UUID(int=rng.getrandbits(128)).hex
        record: dict[str, Any] = {
            "execution_id": str(uuid.UUID(int=rng.getrandbits(128), version=5)),
            "workflow_id": workflow,
            "workflow_name": workflow.replace("-", " ").title(),
            "workflow_version": rng.randint(1, 5),
            "trigger_event_type": "order.created",
            "trigger_event_id": event_id,
            "trigger_event_source": "shop/orders",
            "subject": f"order-{n}",
            "triggered_by": "event",
            "status": "failed" if failed else "success",
            "actions": [
                {
                    "action_id": f"x.{i}",
                    "index": i,
                    "type": "send_email",
                    "status": "failed" if failed else "success",
                    "error": "connection refused after 3 attempts" if failed else None,
                    "duration_ms": 1.5,
                    "attempts": 3 if failed else 1,
                    "topic": "eventrules.actions.email",
                }
                for i in range(2)
            ],
            "logs": [],
            "error": "2 of 2 actions failed" if failed else None,
            "executed_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(at / 1000)),
            "duration_ms": round(rng.uniform(0.5, 40), 3),
            "event": {
                "id": event_id,
                "type": "order.created",
                "source": "shop/orders",
                "subject": f"order-{n}",
                "time": "2026-01-01T00:00:00+00:00",
                "data": {
                    "orderId": f"order-{n}",
                    "total": round(rng.uniform(5, 2000), 2),
                    "email": f"customer{n}@example.com",
                    "userId": f"user-{rng.randrange(100_000)}",
                },
            },
        }
        batch.append(LoggedExecution(n % 6, n // 6, at, record))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _bare(path: Path, count: int, seed: int) -> tuple[float, int]:
    """Rows/s and JSON bytes for the same rows into a table without secondary indexes."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute(
        "CREATE TABLE executions (id INTEGER PRIMARY KEY, execution_id TEXT, workflow_id TEXT,"
        " workflow_version INTEGER, status TEXT, triggered_by TEXT, trigger_event_type TEXT,"
        " trigger_event_id TEXT, subject TEXT, executed_at INTEGER, duration_ms REAL,"
        " actions INTEGER, actions_failed INTEGER, error TEXT, partition INTEGER, offset INTEGER)"
    )
    json_bytes = 0
    elapsed = 0.0
    for batch in records(count, random.Random(seed)):
        json_bytes += sum(len(orjson.dumps(logged.record)) for logged in batch)
        started = time.perf_counter()
        rows = [row for logged in batch if (row := row_of(logged)) is not None]
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO executions (execution_id, workflow_id, workflow_version, status,"
            " triggered_by, trigger_event_type, trigger_event_id, subject, executed_at,"
            " duration_ms, actions, actions_failed, error, partition, offset)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.execute("COMMIT")
        elapsed += time.perf_counter() - started
    db.close()
    return count / elapsed, json_bytes


def _median_ms(run: Callable[[], object], times: int = 50) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50,000 records")
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--cache-mib", type=int, default=32, help="the index's page cache")
    args = parser.parse_args()
    count = args.records or (50_000 if args.quick else 1_000_000)
    per_million = 1_000_000 / count
    with tempfile.TemporaryDirectory() as folder:
        before = _status()
        path = Path(folder) / "index.sqlite3"
        index = ExecutionIndex(path, topic="bench.executions", cache_kib=args.cache_mib * 1024)
        elapsed = 0.0
        for batch in records(count, random.Random(SEED)):
            started = time.perf_counter()
            index.add(batch)
            elapsed += time.perf_counter() - started
        started = time.perf_counter()
        index.analyze()  # as the follower does once the rows grew by a fifth
        analyze_ms = (time.perf_counter() - started) * 1000
        after = _status()
        some = index.query(ExecutionFilter(), limit=1).rows[0]
        cursor = None
        for _ in range(200):
            cursor = index.query(ExecutionFilter(), limit=50, cursor=cursor).next_cursor
        queries = {
            "newest 50": lambda: index.query(ExecutionFilter(), limit=50),
            "one workflow, newest 50": lambda: index.query(
                ExecutionFilter(workflow_id="workflow-0042"), limit=50
            ),
            "failed only, newest 50": lambda: index.query(
                ExecutionFilter(status="failed"), limit=50
            ),
            "one event id": lambda: index.query(
                ExecutionFilter(event_id=some.trigger_event_id), limit=50
            ),
            "page 200 by cursor": lambda: index.query(ExecutionFilter(), limit=50, cursor=cursor),
            "workflow + failed + time range": lambda: index.query(
                ExecutionFilter(
                    workflow_id="workflow-0042",
                    status="failed",
                    since=T0,
                    until=T0 + count * 125,
                ),
                limit=50,
            ),
        }
        latencies = {name: _median_ms(run) for name, run in queries.items()}
        rows = index.count()
        index.close()
        index_bytes = _size(path)
        bare_path = Path(folder) / "bare.sqlite3"
        bare_rate, json_bytes = _bare(bare_path, count, SEED)
        bare_bytes = _size(bare_path)
    rate = count / elapsed
    mib = 1024 * 1024
    print(f"execution index: {rows:,} of {count:,} records indexed")
    print(
        f"disk per million: {index_bytes * per_million / mib:,.0f} MiB index"
        f" ({index_bytes / count:,.0f} B/row)"
        f"  | baseline: {json_bytes * per_million / mib:,.0f} MiB of record JSON on the topic"
        f" ({json_bytes / count:,.0f} B/record), {bare_bytes * per_million / mib:,.0f} MiB"
        " for the rows without secondary indexes"
    )
    print(
        f"build: {rate:,.0f} rows/s ({1_000_000 / rate:,.0f} s per million)"
        f"  | baseline without secondary indexes: {bare_rate:,.0f} rows/s"
    )
    print(
        f"memory: RSS {before['VmRSS']} MiB before, {after['VmRSS']} MiB after"
        f" (peak {after['VmHWM']} MiB); the SQLite page cache is capped at {args.cache_mib} MiB"
    )
    print(f"statistics (ANALYZE, sampled): {analyze_ms:,.0f} ms")
    for name, value in latencies.items():
        print(f"query {name}: {value:.2f} ms median")


if __name__ == "__main__":
    main()
