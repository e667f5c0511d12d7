"""The execution index: rows from hostile records, positions, filters and pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eventrules.console.index import ExecutionFilter, ExecutionIndex, parse_cursor, row_of
from eventrules.ops.executions import LoggedExecution

T0 = 1_768_000_000_000  # ms


def record(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "execution_id": f"ex-{n}",
        "workflow_id": fields.pop("workflow_id", "wf-a"),
        "workflow_version": 1,
        "status": fields.pop("status", "success"),
        "triggered_by": "event",
        "trigger_event_type": "order.created",
        "trigger_event_id": f"evt-{n}",
        "executed_at": f"2026-01-10T00:00:{n % 60:02d}+00:00",
        "duration_ms": 2.5,
        "actions": [{"status": "success"}, {"status": "failed"}],
        **fields,
    }


def logged(n: int, partition: int = 0, **fields: Any) -> LoggedExecution:
    return LoggedExecution(partition, n, T0 + n, record(n, **fields))


@pytest.fixture
def index(tmp_path: Path) -> ExecutionIndex:
    return ExecutionIndex(tmp_path / "index.sqlite3", topic="t.executions")


def test_rows_keep_what_lists_need_and_where_the_record_is() -> None:
    row = row_of(logged(7, partition=2))
    assert row is not None
    assert row[0] == "ex-7"
    assert row[10:12] == (2, 1)  # two actions, one failed
    assert row[-2:] == (2, 7)


@pytest.mark.parametrize(
    "hostile",
    [
        None,
        {"execution_id": "x"},  # no workflow
        {"execution_id": "x", "workflow_id": "w", "status": "exploded"},
        {"execution_id": ["x"], "workflow_id": "w", "status": "success"},
    ],
)
def test_records_that_are_not_executions_add_no_row(hostile: Any) -> None:
    assert row_of(LoggedExecution(0, 1, T0, hostile)) is None


def test_hostile_fields_are_bounded_and_bad_times_fall_back_to_the_record_time() -> None:
    row = row_of(
        LoggedExecution(
            0, 1, T0, record(1, error="e" * 10_000, executed_at="yesterday", actions="many")
        )
    )
    assert row is not None
    assert len(row[12]) == 500
    assert row[8] == T0
    assert row[10] == 0


def test_positions_advance_past_non_records_and_duplicates_add_nothing(
    index: ExecutionIndex,
) -> None:
    assert index.add([logged(0), logged(1), LoggedExecution(0, 2, T0, None)]) == 2
    assert index.positions() == {0: 3}
    # a record written twice after a crash (same execution id, later offset)
    assert index.add([LoggedExecution(0, 3, T0, record(1))]) == 0
    assert index.positions() == {0: 4}
    assert index.count() == 2


def test_filters_and_pages_newest_first(index: ExecutionIndex) -> None:
    index.add(
        [
            logged(n, status="failed" if n % 3 == 0 else "success", workflow_id=f"wf-{n % 2}")
            for n in range(30)
        ]
    )
    failed = index.query(ExecutionFilter(status="failed"), limit=100).rows
    assert [r.execution_id for r in failed] == [f"ex-{n}" for n in range(27, -1, -3)]
    both = index.query(ExecutionFilter(status="failed", workflow_id="wf-1"), limit=100).rows
    assert {r.execution_id for r in both} == {f"ex-{n}" for n in (3, 9, 15, 21, 27)}
    seen: list[str] = []
    cursor = None
    while True:
        page = index.query(ExecutionFilter(), limit=7, cursor=cursor)
        seen += [r.execution_id for r in page.rows]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"ex-{n}" for n in range(29, -1, -1)]
    window = index.query(ExecutionFilter(since=T0 + 10, until=T0 + 12), limit=10).rows
    assert window == []  # executed_at comes from the record, not the Kafka time
    by_event = index.query(ExecutionFilter(event_id="evt-5"), limit=10).rows
    assert [r.execution_id for r in by_event] == ["ex-5"]


@pytest.mark.parametrize("cursor", ["", "1", "a.b", "1.2.3", "9" * 50 + ".1", "-1.2"])
def test_a_forged_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        parse_cursor(cursor)


def test_an_index_for_another_topic_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    first = ExecutionIndex(path, topic="a.executions")
    first.add([logged(1)])
    first.close()
    again = ExecutionIndex(path, topic="a.executions")
    assert again.count() == 1
    assert again.positions() == {0: 2}
    again.close()
    other = ExecutionIndex(path, topic="b.executions")
    assert other.count() == 0
    assert other.positions() == {}


def test_every_status_and_origin_a_record_may_carry_is_indexed_and_filterable(
    index: ExecutionIndex,
) -> None:
    # a webhook waiting on a retry tier; a delayed action's own run, started by its timer
    index.add([logged(1, status="retrying"), logged(2, triggered_by="timer")])
    retrying = index.query(ExecutionFilter(status="retrying"), limit=10).rows
    assert [row.execution_id for row in retrying] == ["ex-1"]
    timers = index.query(ExecutionFilter(triggered_by="timer"), limit=10).rows
    assert [row.execution_id for row in timers] == ["ex-2"]
    assert index.status_counts(since=0)["retrying"] == 1


def test_status_counts_and_summaries(index: ExecutionIndex) -> None:
    index.add([logged(n, status="failed" if n == 2 else "success") for n in range(4)])
    since = record(0)["executed_at"]
    assert since
    counts = index.status_counts(since=0)
    assert counts == {"success": 3, "failed": 1, "partial": 0, "retrying": 0}
    summary = index.workflow_summaries()["wf-a"]
    assert summary["runs"] == 4
    assert summary["successes"] == 3
