"""The console's index of the executions topic: one row per execution in an embedded SQLite
file, so history pages filter and page without reading the topic.

The topic stays the source of truth: a row holds what lists and filters need plus the record's
partition and offset, and the detail page reads the record itself from the topic. The index
records the next offset to read per partition in the same transaction as the rows, so a
restart resumes where it stopped; a missing file (or one built for another topic or schema) is
rebuilt from the start of the topic.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, get_args

from eventrules.models.executions import ExecutionStatus, TriggeredBy
from eventrules.ops.executions import LoggedExecution

__all__ = [
    "STATUSES",
    "TRIGGERED_BY",
    "ExecutionFilter",
    "ExecutionIndex",
    "IndexedExecution",
    "Page",
    "row_of",
]

# 2: rows of every execution status (1 left out `retrying` records)
SCHEMA_VERSION: Final = 2
# the record's own vocabulary: a status or origin added there is indexed and filterable here
STATUSES: Final = get_args(ExecutionStatus)
TRIGGERED_BY: Final = get_args(TriggeredBy)
# bounds on what a (hostile) record may put into a row
_TEXT: Final = 256
_ERROR: Final = 500

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions (partition INTEGER PRIMARY KEY, next_offset INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS executions (
    id INTEGER PRIMARY KEY,
    execution_id TEXT NOT NULL UNIQUE,
    workflow_id TEXT NOT NULL,
    workflow_version INTEGER,
    status TEXT NOT NULL,
    triggered_by TEXT,
    trigger_event_type TEXT,
    trigger_event_id TEXT,
    subject TEXT,
    executed_at INTEGER NOT NULL,
    duration_ms REAL,
    actions INTEGER NOT NULL,
    actions_failed INTEGER NOT NULL,
    error TEXT,
    partition INTEGER NOT NULL,
    offset INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_time ON executions (executed_at);
CREATE INDEX IF NOT EXISTS executions_workflow ON executions (workflow_id, executed_at);
CREATE INDEX IF NOT EXISTS executions_status ON executions (status, executed_at);
CREATE INDEX IF NOT EXISTS executions_trigger ON executions (trigger_event_type, executed_at);
CREATE INDEX IF NOT EXISTS executions_event ON executions (trigger_event_id);
"""
_INSERT: Final = (
    "INSERT OR IGNORE INTO executions (execution_id, workflow_id, workflow_version, status,"
    " triggered_by, trigger_event_type, trigger_event_id, subject, executed_at, duration_ms,"
    " actions, actions_failed, error, partition, offset)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class IndexedExecution:
    """One row: what the history lists show, and where the full record is."""

    id: int
    execution_id: str
    workflow_id: str
    workflow_version: int | None
    status: str
    triggered_by: str | None
    trigger_event_type: str | None
    trigger_event_id: str | None
    subject: str | None
    executed_at: int
    duration_ms: float | None
    actions: int
    actions_failed: int
    error: str | None
    partition: int
    offset: int

    @property
    def executed_at_iso(self) -> str:
        return datetime.fromtimestamp(self.executed_at / 1000, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ExecutionFilter:
    """Every field optional; times are epoch milliseconds, ``until`` exclusive."""

    workflow_id: str | None = None
    status: str | None = None
    trigger: str | None = None
    triggered_by: str | None = None
    event_id: str | None = None
    since: int | None = None
    until: int | None = None


@dataclass(frozen=True)
class Page:
    rows: list[IndexedExecution]
    next_cursor: str | None


def _text(value: Any, limit: int = _TEXT) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text[:limit]


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _millis(value: Any, fallback: int) -> int:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return fallback
        if moment.utcoffset() is not None:
            return int(moment.timestamp() * 1000)
    return fallback


def row_of(logged: LoggedExecution) -> tuple[Any, ...] | None:
    """The row of one logged record, or None when it is not an execution record."""
    record = logged.record
    if record is None:
        return None
    execution = record.get("execution_id")
    workflow = record.get("workflow_id")
    status = record.get("status")
    if not (isinstance(execution, str) and isinstance(workflow, str) and status in STATUSES):
        return None
    if not execution or not workflow or len(execution) > _TEXT or len(workflow) > _TEXT:
        return None
    actions = record.get("actions")
    actions = actions if isinstance(actions, list) else []
    failed = sum(
        1 for action in actions if isinstance(action, dict) and action.get("status") == "failed"
    )
    duration = record.get("duration_ms")
    triggered_by = record.get("triggered_by")
    return (
        execution,
        workflow,
        _int(record.get("workflow_version")),
        status,
        triggered_by if triggered_by in TRIGGERED_BY else None,
        _text(record.get("trigger_event_type")),
        _text(record.get("trigger_event_id")),
        _text(record.get("subject")),
        _millis(record.get("executed_at"), logged.timestamp_ms),
        float(duration) if isinstance(duration, int | float) else None,
        len(actions),
        failed,
        _text(record.get("error"), _ERROR),
        logged.partition,
        logged.offset,
    )


def _cursor(row: IndexedExecution) -> str:
    return f"{row.executed_at}.{row.id}"


def parse_cursor(cursor: str) -> tuple[int, int]:
    """``<executed_at ms>.<row id>``; ValueError when it is not one."""
    time_part, _, id_part = cursor.partition(".")
    if not (time_part.isdigit() and id_part.isdigit()) or len(cursor) > 40:
        raise ValueError("not a page cursor")
    return int(time_part), int(id_part)


class ExecutionIndex:
    """The SQLite file (or ``:memory:``); one connection shared under a lock, so the follower
    thread and the request handlers may both use it."""

    def __init__(self, path: Path | str, *, topic: str, cache_kib: int = 32_768) -> None:
        self.path = str(path)
        self.topic = topic
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        # bounded page cache: memory stays flat whatever the number of rows
        self._db.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        # ANALYZE samples instead of reading every index: its cost stays bounded as rows grow
        self._db.execute("PRAGMA analysis_limit = 1000")
        with self._lock:
            self._open()

    def _open(self) -> None:
        self._db.executescript(_SCHEMA)
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        wanted = {"schema_version": str(SCHEMA_VERSION), "topic": self.topic}
        if meta and meta != wanted:
            self._drop()
            self._db.executescript(_SCHEMA)
            meta = {}
        if not meta:
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", wanted.items())

    def _drop(self) -> None:
        self._db.executescript(
            "DROP TABLE IF EXISTS executions; DROP TABLE IF EXISTS positions;"
            " DROP TABLE IF EXISTS meta;"
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def reset(self) -> None:
        """Forget everything: the next follow starts from the start of the topic."""
        with self._lock:
            self._drop()
            self._open()

    def positions(self) -> dict[int, int]:
        """The next offset to read, per partition."""
        with self._lock:
            return dict(self._db.execute("SELECT partition, next_offset FROM positions"))

    def add(self, batch: Iterable[LoggedExecution]) -> int:
        """Index a batch and advance the positions past it, in one transaction; returns the
        rows added (duplicates of an execution id and non-records add none)."""
        rows: list[tuple[Any, ...]] = []
        ends: dict[int, int] = {}
        for logged in batch:
            ends[logged.partition] = max(ends.get(logged.partition, 0), logged.offset + 1)
            row = row_of(logged)
            if row is not None:
                rows.append(row)
        if not ends:
            return 0
        with self._transaction() as db:
            before = db.total_changes
            db.executemany(_INSERT, rows)
            added = db.total_changes - before
            db.executemany(
                "INSERT INTO positions VALUES (?, ?) ON CONFLICT (partition) DO UPDATE"
                " SET next_offset = max(next_offset, excluded.next_offset)",
                ends.items(),
            )
        return added

    def analyze(self) -> None:
        """Refresh the planner's statistics: without them SQLite cannot tell that one workflow
        is a narrower filter than one status, and picks the slow index."""
        with self._lock:
            self._db.execute("ANALYZE")

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM executions").fetchone()[0])

    def query(self, where: ExecutionFilter, *, limit: int = 50, cursor: str | None = None) -> Page:
        """Newest first; ``cursor`` (from the previous page) continues after its last row."""
        clauses: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("workflow_id", where.workflow_id),
            ("status", where.status),
            ("trigger_event_type", where.trigger),
            ("triggered_by", where.triggered_by),
            ("trigger_event_id", where.event_id),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if where.since is not None:
            clauses.append("executed_at >= ?")
            args.append(where.since)
        if where.until is not None:
            clauses.append("executed_at < ?")
            args.append(where.until)
        if cursor is not None:
            at, row_id = parse_cursor(cursor)
            clauses.append("(executed_at < ? OR (executed_at = ? AND id < ?))")
            args.extend((at, at, row_id))
        sql = "SELECT * FROM executions"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY executed_at DESC, id DESC LIMIT ?"
        args.append(limit + 1)
        with self._lock:
            found = [IndexedExecution(**dict(row)) for row in self._db.execute(sql, args)]
        rows = found[:limit]
        more = len(found) > limit
        return Page(rows, _cursor(rows[-1]) if more and rows else None)

    def get(self, execution_id: str) -> IndexedExecution | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM executions WHERE execution_id = ?", (execution_id,)
            ).fetchone()
        return IndexedExecution(**dict(row)) if row is not None else None

    def status_counts(self, *, since: int, workflow_id: str | None = None) -> dict[str, int]:
        """Executions per status since ``since`` (epoch ms)."""
        sql = "SELECT status, count(*) FROM executions WHERE executed_at >= ?"
        args: list[Any] = [since]
        if workflow_id is not None:
            sql = (
                "SELECT status, count(*) FROM executions WHERE workflow_id = ? AND executed_at >= ?"
            )
            args = [workflow_id, since]
        with self._lock:
            counts = dict(self._db.execute(sql + " GROUP BY status", args).fetchall())
        return {status: int(counts.get(status, 0)) for status in STATUSES}

    def workflow_summaries(self) -> dict[str, dict[str, Any]]:
        """Per workflow: runs, successes, last run (ms) and its status, over what is indexed."""
        sql = (
            "SELECT workflow_id, count(*) AS runs, sum(status = 'success') AS successes,"
            " max(executed_at) AS last_run FROM executions GROUP BY workflow_id"
        )
        with self._lock:
            return {
                row["workflow_id"]: {
                    "runs": int(row["runs"]),
                    "successes": int(row["successes"] or 0),
                    "last_run": int(row["last_run"]),
                }
                for row in self._db.execute(sql)
            }
