"""Folding execution records into per-workflow stats."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from eventrules.runtime.stats import ExecutionSummary, StatsKeeper, decode_summary, fold_stats


def execution(status: str, duration_ms: float, at: str) -> ExecutionSummary:
    return ExecutionSummary(
        workflow_id="wf",
        workflow_name="A workflow",
        status=status,
        duration_ms=duration_ms,
        executed_at=at,
    )


def test_a_batch_folds_counts_last_run_and_average() -> None:
    stats = fold_stats(
        None,
        [
            execution("success", 2.0, "2026-01-01T10:00:00Z"),
            execution("failed", 4.0, "2026-01-01T12:00:00Z"),
            execution("partial", 6.0, "2026-01-01T11:00:00Z"),
        ],
        partition=1,
        offset=7,
    )
    assert stats is not None
    assert {k: stats[k] for k in ("run_count", "success_count", "failure_count")} == {
        "run_count": 3,
        "success_count": 1,
        "failure_count": 1,
    }
    assert stats["partial_count"] == 1
    assert stats["last_run"] == "2026-01-01T12:00:00Z"
    assert stats["last_status"] == "partial"  # the last in log order
    assert stats["average_duration_ms"] == 4.0
    assert (stats["source_partition"], stats["source_offset"]) == (1, 7)


def test_folding_on_top_of_a_snapshot_adds_to_it() -> None:
    first = fold_stats(
        None, [execution("success", 1.0, "2026-01-01T10:00:00Z")], partition=0, offset=0
    )
    second = fold_stats(
        first, [execution("success", 3.0, "2026-01-02T10:00:00Z")], partition=0, offset=5
    )
    assert second is not None
    assert (second["run_count"], second["success_count"], second["average_duration_ms"]) == (
        2,
        2,
        2.0,
    )
    assert second["last_run"] == "2026-01-02T10:00:00Z"


def test_an_offset_already_folded_is_not_counted_twice() -> None:
    # A batch replayed after a crash (snapshot written, offsets not committed).
    snapshot = fold_stats(None, [execution("success", 1.0, "t")], partition=2, offset=9)
    assert fold_stats(snapshot, [execution("success", 1.0, "t")], partition=2, offset=9) is None
    assert fold_stats(snapshot, [execution("success", 1.0, "t")], partition=2, offset=3) is None
    moved = fold_stats(snapshot, [execution("success", 1.0, "t")], partition=0, offset=3)
    assert moved is not None
    assert moved["run_count"] == 2


def test_a_record_decodes_to_the_fields_folded_and_the_rest_is_skipped() -> None:
    record = {
        "execution_id": "e-1",
        "workflow_id": "wf",
        "workflow_name": "A workflow",
        "status": "success",
        "actions": [{"index": 0, "status": "success", "params": {"deep": [[[1]]]}}],
        "logs": ["one", "two"],
        "executed_at": "2026-01-01T10:00:00Z",
        "duration_ms": 3,
        "event_ref": {"topic": "events.orders", "partition": 0, "offset": 9, "fields": {}},
    }
    assert decode_summary(orjson.dumps(record)) == ExecutionSummary(
        workflow_id="wf",
        workflow_name="A workflow",
        status="success",
        executed_at="2026-01-01T10:00:00Z",
        duration_ms=3.0,
    )


class FakeMessage:
    def __init__(self, key: bytes, value: bytes | None, offset: int) -> None:
        self._key, self._value, self._offset = key, value, offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


class DroppingProducer:
    def __init__(self) -> None:
        self.produced: list[tuple[str, bytes, bytes]] = []

    def produce(self, topic: str, key: bytes, value: bytes) -> None:
        self.produced.append((topic, key, value))

    def flush(self, timeout: float) -> int:
        return 1  # nothing is committed: the consumer is never reached


HOSTILE = [
    b"not json",
    b"[1, 2, 3]",
    b'{"workflow_id": "wf", "duration_ms": "abc"}',
    b'{"workflow_id": "wf", "duration_ms": -5}',
    b'{"workflow_id": "wf", "duration_ms": 1e400}',
    b'{"workflow_id": "wf", "status": {"nested": true}}',
    b'{"workflow_id": "wf", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b"",
    None,
]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_a_record_that_is_not_an_execution_record_is_skipped_and_counted(
    value: bytes | None,
) -> None:
    """Before, a duration that was not a number raised out of the fold: the keeper died and,
    restarted, died again on the same record."""
    keeper = StatsKeeper.__new__(StatsKeeper)  # no clients: only the fold is exercised
    keeper.stats, keeper.skipped, keeper.stats_topic = {}, 0, "stats"
    keeper.executions_topic = "executions"
    keeper.on_change = lambda workflow_id, stats: None
    told: list[int] = []
    keeper.on_skipped = told.append
    producer = DroppingProducer()
    keeper.producer = producer  # type: ignore[assignment]
    good = orjson.dumps({"workflow_id": "wf", "status": "success", "duration_ms": 2.5})
    batch: Any = [FakeMessage(b"wf", value, 1), FakeMessage(b"wf", good, 2)]
    keeper._fold(batch)
    assert keeper.skipped == 1
    assert told == [1], "the worker is told, to count it"
    assert keeper.stats["wf"]["run_count"] == 1
    assert keeper.stats["wf"]["average_duration_ms"] == 2.5
    assert [key for _, key, _ in producer.produced] == [b"wf"]
