"""The overview: what is loaded, how executions go, lag, workers and dead letters."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from eventrules.console.context import CONSOLE
from eventrules.console.index import ExecutionFilter
from eventrules.console.pages import render
from eventrules.errors import EventRulesError
from eventrules.ops.config import Live

__all__ = ["add_routes"]

_WINDOW_MINUTES = 15


async def overview(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    problems: list[str] = []
    try:
        live = await console.live()
    except EventRulesError as exc:
        live, problems = Live(), [*problems, f"config topic: {exc}"]
    definitions = [item.value for item in live.values()]
    loaded = {
        kind: {
            "total": sum(1 for (k, _) in live if k == kind),
            "enabled": sum(
                1
                for (k, _), item in live.items()
                if k == kind and item.value.get("enabled", True) is not False
            ),
        }
        for kind in ("workflow", "rule")
    }
    since = int(time.time() * 1000) - _WINDOW_MINUTES * 60_000
    counts = await asyncio.to_thread(console.index.status_counts, since=since)
    total = sum(counts.values())
    failures = await asyncio.to_thread(
        console.index.query, ExecutionFilter(status="failed"), limit=8
    )
    try:
        letters = await console.dead_letters()
        dlq = {"total": len(letters), "waiting": sum(1 for letter in letters if not letter.replays)}
    except EventRulesError as exc:
        dlq, problems = None, [*problems, f"dlq topic: {exc}"]
    workers = await console.workers()
    return render(
        request,
        "overview.html",
        loaded=loaded,
        definitions=len(definitions),
        window=_WINDOW_MINUTES,
        counts=counts,
        per_minute=total / _WINDOW_MINUTES,
        success_rate=(counts["success"] / total) if total else None,
        failures=failures.rows,
        dlq=dlq,
        workers=workers if not isinstance(workers, str) else None,
        workers_error=workers if isinstance(workers, str) else None,
        progress=console.indexer.progress(),
        problems=problems,
    )


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/", overview)
