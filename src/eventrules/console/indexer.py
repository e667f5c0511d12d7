"""Keeps the execution index following the executions topic, in a thread of its own (the Kafka
client blocks)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from eventrules.console.index import ExecutionIndex
from eventrules.errors import EventRulesError
from eventrules.ops.executions import ExecutionLog
from eventrules.settings import Settings

__all__ = ["ExecutionIndexer", "IndexProgress"]

log = logging.getLogger(__name__)

_WATERMARK_INTERVAL = 5.0
_RETRY_SECONDS = 2.0
# statistics are refreshed once the rows grew by this share since the last time
_ANALYZE_GROWTH = 0.2
_ANALYZE_MIN_ROWS = 5_000


@dataclass(frozen=True)
class IndexProgress:
    rows: int
    behind: int | None  # records between the index and the topic's end; None before known
    error: str | None


class ExecutionIndexer:
    """``start()`` a daemon thread that reads the topic into ``index``; ``stop()`` ends it."""

    def __init__(self, settings: Settings, index: ExecutionIndex) -> None:
        self.settings = settings
        self.index = index
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ends: dict[int, int] | None = None
        self._error: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="execution-indexer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def progress(self) -> IndexProgress:
        ends = self._ends
        behind = None
        if ends is not None:
            positions = self.index.positions()
            behind = sum(max(0, end - positions.get(p, 0)) for p, end in ends.items())
        return IndexProgress(self.index.count(), behind, self._error)

    def wait_caught_up(self, timeout: float) -> bool:
        """True once the index holds everything the topic held when this was called."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.progress().behind == 0:
                return True
            time.sleep(0.1)
        return False

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except EventRulesError as exc:
                self._error = str(exc)
                log.warning("execution index: %s; retrying", exc)
                self._stop.wait(_RETRY_SECONDS)

    def _follow(self) -> None:
        reader = ExecutionLog(self.settings)
        try:
            marks = reader.watermarks()
            positions = self.index.positions()
            # a position past the end, or a partition gone: the topic was recreated
            if any(p not in marks or next_ > marks[p][1] for p, next_ in positions.items()):
                log.warning("execution index: %s was recreated; rebuilding", reader.topic)
                self.index.reset()
                positions = {}
            if not positions:
                log.info("execution index: building from the start of %s", reader.topic)
            reader.follow(positions)
            self._ends = {p: high for p, (_, high) in marks.items()}
            self._error = None
            checked = time.monotonic()
            analyzed_at = self.index.count()
            added = 0
            while not self._stop.is_set():
                batch = reader.poll(max_records=1000, timeout=0.5)
                if batch:
                    added += self.index.add(batch)
                if added >= max(_ANALYZE_MIN_ROWS, _ANALYZE_GROWTH * analyzed_at):
                    self.index.analyze()
                    analyzed_at, added = analyzed_at + added, 0
                since = time.monotonic() - checked
                if since > _WATERMARK_INTERVAL or (not batch and since > 1.0):
                    self._ends = {p: high for p, (_, high) in reader.watermarks().items()}
                    checked = time.monotonic()
        finally:
            reader.close()
