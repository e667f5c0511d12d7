"""What every console view needs: settings, the index, the catalogs, and short-lived caches of
what the topics hold (read in a thread: the Kafka clients block)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import jinja2
from aiohttp import web

from eventrules.console.index import ExecutionIndex
from eventrules.console.indexer import ExecutionIndexer
from eventrules.console.security import SecurityPolicy
from eventrules.errors import EventRulesError
from eventrules.models.actions import ActionRegistry
from eventrules.ops.config import Live, read_live
from eventrules.ops.dlq import DeadLetter, read_dead_letters
from eventrules.ops.executions import ExecutionLog
from eventrules.ops.stats import read_workflow_stats
from eventrules.ops.workers import GroupStatus, worker_group_status
from eventrules.settings import Settings
from eventrules.workflows.catalog import TriggerCatalog

__all__ = ["CONSOLE", "Console", "Flash"]

T = TypeVar("T")


@dataclass(frozen=True)
class Flash:
    kind: str  # ok, error, info
    message: str


@dataclass
class Console:
    settings: Settings
    policy: SecurityPolicy
    index: ExecutionIndex
    indexer: ExecutionIndexer
    catalog: TriggerCatalog
    registry: ActionRegistry
    templates_root: Path | None
    jinja: jinja2.Environment
    _cache: dict[str, tuple[float, Any]] = field(default_factory=dict)
    _flashes: dict[str, list[Flash]] = field(default_factory=dict)
    _fetch_lock: threading.Lock = field(default_factory=threading.Lock)
    _fetcher: ExecutionLog | None = None

    async def cached(self, key: str, ttl: float, compute: Callable[[], T]) -> T:
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            value: T = hit[1]
            return value
        value = await asyncio.to_thread(compute)
        self._cache[key] = (time.monotonic() + ttl, value)
        return value

    def forget(self, *keys: str) -> None:
        for key in keys:
            self._cache.pop(key, None)

    async def live(self) -> Live:
        """The config table (cached two seconds; forgotten after every publish)."""
        return await self.cached("live", 2.0, lambda: read_live(self.settings))

    async def workflow_stats(self) -> dict[str, dict[str, Any]]:
        return await self.cached("stats", 5.0, lambda: read_workflow_stats(self.settings))

    async def dead_letters(self) -> list[DeadLetter]:
        return await self.cached("dlq", 3.0, lambda: read_dead_letters(self.settings))

    async def workers(self) -> GroupStatus | str:
        """The workers' group, or why it could not be described."""

        def describe() -> GroupStatus | str:
            try:
                return worker_group_status(self.settings)
            except EventRulesError as exc:
                return str(exc)

        return await self.cached("workers", 5.0, describe)

    def _fetch(self, partition: int, offset: int) -> dict[str, Any]:
        with self._fetch_lock:
            if self._fetcher is None:
                self._fetcher = ExecutionLog(self.settings)
            return self._fetcher.fetch(partition, offset)

    async def execution_record(self, partition: int, offset: int) -> dict[str, Any]:
        return await asyncio.to_thread(self._fetch, partition, offset)

    def close(self) -> None:
        with self._fetch_lock:
            if self._fetcher is not None:
                self._fetcher.close()
                self._fetcher = None

    def flash(self, session_id: str | None, kind: str, message: str) -> None:
        if session_id is None:
            return
        if len(self._flashes) > 10_000:  # sessions that never came back
            self._flashes.clear()
        queued = self._flashes.setdefault(session_id, [])
        if len(queued) < 10:
            queued.append(Flash(kind, message))

    def take_flashes(self, session_id: str | None) -> list[Flash]:
        return self._flashes.pop(session_id, []) if session_id else []


CONSOLE: web.AppKey[Console] = web.AppKey("console", Console)
