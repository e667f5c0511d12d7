"""Folding execution records into per-workflow stats."""

from __future__ import annotations

from typing import Any

from eventrules.runtime.stats import fold_stats


def execution(status: str, duration_ms: float, at: str) -> dict[str, Any]:
    return {
        "workflow_id": "wf",
        "workflow_name": "A workflow",
        "status": status,
        "duration_ms": duration_ms,
        "executed_at": at,
    }


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
