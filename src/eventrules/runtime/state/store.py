"""One partition's state store: SQLite on local disk, with the uncommitted writes kept apart.

Why SQLite (the standard library's ``sqlite3``): a well-kept embedded database that needs no
new dependency, writes a batch of rows in one transaction, and indexes the timers by due time
(``WHERE due <= now ORDER BY due``), which a plain key-value store would need a second table
for. The changelog topic, not this file, is the source of truth; the file only spares a
restarted worker from reading the whole changelog again.

A write is first kept in memory (the *overlay*) with the offset of the input record that made
it; reads see the overlay over the database. Once the stream has committed an input offset,
the writes made before it are written to the database (:meth:`flush`); when the stream rewinds,
the writes made from the rewound offset on are dropped (:meth:`rewind`). So the database never
holds the effect of an input that may be processed again.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import tempfile
import threading
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import orjson

__all__ = ["PartitionStore", "StoreWrite", "encode_entry"]

log = logging.getLogger(__name__)

# (key, value or None for a delete, due time)
StoreWrite = tuple[str, dict[str, Any] | None, float | None]

_SCHEMA = """
-- value: the changelog record's bytes ({"value": entry, "due": due}), due: its timer
CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value BLOB NOT NULL, due REAL);
CREATE INDEX IF NOT EXISTS entries_due ON entries (due) WHERE due IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def encode_entry(value: dict[str, Any] | None, due: float | None) -> bytes | None:
    """A changelog value: the entry and its due time, or None (a tombstone) for a delete."""
    if value is None:
        return None
    return orjson.dumps({"value": value, "due": due})


class PartitionStore:
    """The keyed state of one partition of the state stream. Thread-safe: the stream's poll
    thread restores and flushes it while the event loop reads and writes it."""

    def __init__(self, path: Path | None, partition: int) -> None:
        self.partition = partition
        self._lock = threading.RLock()
        self._lock_file: IO[bytes] | None = None
        self._temporary: Path | None = None
        self.path = self._claim(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # The changelog is the source of truth: an OS crash that loses the last writes costs a
        # longer restore, not state.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        # key -> (input offset, value or None, due), newest write per key
        self._overlay: dict[str, tuple[int, dict[str, Any] | None, float | None]] = {}
        self._log: deque[tuple[int, str, dict[str, Any] | None, float | None]] = deque()

    def _claim(self, path: Path | None) -> Path:
        """``path`` locked for this process; a file of our own when another process on this
        host holds it (two workers sharing a state folder) or when there is no folder."""
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = path.with_suffix(".lock").open("ab")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.close()
                log.warning(
                    "%s is in use by another process; restoring into a file of our own", path
                )
            else:
                self._lock_file = lock
                return path
        handle, name = tempfile.mkstemp(prefix=f"eventrules-state-{self.partition}-", suffix=".db")
        os.close(handle)
        self._temporary = Path(name)
        return self._temporary

    # reading ----------------------------------------------------------------------------

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            pending = self._overlay.get(key)
            if pending is not None:
                return pending[1]
            row = self._db.execute("SELECT value FROM entries WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        value: dict[str, Any] = orjson.loads(row[0])["value"]
        return value

    def due_of(self, key: str) -> float | None:
        with self._lock:
            pending = self._overlay.get(key)
            if pending is not None:
                return pending[2]
            row = self._db.execute("SELECT due FROM entries WHERE key = ?", (key,)).fetchone()
        return float(row[0]) if row is not None and row[0] is not None else None

    def next_due(self) -> float | None:
        """The earliest due time of any entry."""
        with self._lock:
            overlay = [due for _, value, due in self._overlay.values() if value and due is not None]
            for key, due in self._db.execute(
                "SELECT key, due FROM entries WHERE due IS NOT NULL ORDER BY due"
            ):
                if key not in self._overlay:
                    overlay.append(due)
                    break
        return min(overlay) if overlay else None

    def due(self, now: float, limit: int) -> list[tuple[str, dict[str, Any]]]:
        """Up to ``limit`` entries whose due time is at or before ``now``, earliest first."""
        with self._lock:
            found: list[tuple[float, str, dict[str, Any]]] = [
                (due, key, value)
                for key, (_, value, due) in self._overlay.items()
                if value is not None and due is not None and due <= now
            ]
            rows = self._db.execute(
                "SELECT key, value, due FROM entries WHERE due <= ? ORDER BY due LIMIT ?",
                (now, limit + len(self._overlay)),
            )
            for key, value, due in rows:
                if key not in self._overlay:
                    found.append((due, key, orjson.loads(value)["value"]))
        found.sort(key=lambda item: item[0])
        return [(key, value) for _, key, value in found[:limit]]

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM entries").fetchone()
            extra = sum(
                (1 if value is not None else 0) - (1 if self._stored(key) else 0)
                for key, (_, value, _) in self._overlay.items()
            )
        return int(count) + extra

    def _stored(self, key: str) -> bool:
        return (
            self._db.execute("SELECT 1 FROM entries WHERE key = ?", (key,)).fetchone() is not None
        )

    # writing ----------------------------------------------------------------------------

    def write(self, offset: int, key: str, value: dict[str, Any] | None, due: float | None) -> None:
        """A write made while processing the input at ``offset`` (not durable until flushed)."""
        with self._lock:
            self._overlay[key] = (offset, value, due)
            self._log.append((offset, key, value, due))

    def flush(self, committed: int) -> int:
        """Write to the database what inputs before ``committed`` wrote; returns how many."""
        with self._lock:
            rows: list[StoreWrite] = []
            while self._log and self._log[0][0] < committed:
                _, key, value, due = self._log.popleft()
                rows.append((key, value, due))
            if not rows:
                return 0
            self._apply(rows)
            for key, _, _ in rows:
                pending = self._overlay.get(key)
                if pending is not None and pending[0] < committed:
                    del self._overlay[key]
            return len(rows)

    def rewind(self, start: int) -> None:
        """Forget the writes of inputs at or after ``start``: they will be processed again."""
        with self._lock:
            kept = [entry for entry in self._log if entry[0] < start]
            self._log = deque(kept)
            self._overlay = {key: (offset, value, due) for offset, key, value, due in kept}

    def discard_pending(self) -> None:
        """Forget every write not flushed yet (the partition is going to another worker)."""
        self.rewind(-1)

    def _apply(self, rows: Iterable[StoreWrite]) -> None:
        self._write_rows(
            (key, encode_entry(value, due) if value is not None else None, due)
            for key, value, due in rows
        )

    def _write_rows(self, rows: Iterable[tuple[str, bytes | None, float | None]]) -> None:
        """One transaction; only each key's last row counts, so deletes and upserts batch."""
        last: dict[str, tuple[bytes | None, float | None]] = {}
        for key, raw, due in rows:
            last[key] = (raw, due)
        deletes = [(key,) for key, (raw, _) in last.items() if raw is None]
        upserts = [(key, raw, due) for key, (raw, due) in last.items() if raw is not None]
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany("DELETE FROM entries WHERE key = ?", deletes)
            db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)", upserts)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # restoring --------------------------------------------------------------------------

    def restore_rows(self, rows: list[tuple[str, bytes | None, float | None]]) -> None:
        """Apply changelog records as they are (value bytes as the changelog holds them)."""
        with self._lock:
            self._write_rows(rows)

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM entries")
            self._db.execute("DELETE FROM meta")
            self._overlay.clear()
            self._log.clear()

    def changelog_position(self) -> int | None:
        """The changelog offset up to which the database reflects the changelog."""
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM meta WHERE name = 'changelog_position'"
            ).fetchone()
        return int(row[0]) if row is not None else None

    def save_position(self, position: int | None) -> None:
        """Record (None: forget) the changelog position; only valid when nothing is pending."""
        with self._lock:
            if position is None:
                self._db.execute("DELETE FROM meta WHERE name = 'changelog_position'")
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('changelog_position', ?)", (position,)
                )

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._log)

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._lock_file is not None:
                self._lock_file.close()
            if self._temporary is not None:
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        Path(f"{self._temporary}{suffix}").unlink()
