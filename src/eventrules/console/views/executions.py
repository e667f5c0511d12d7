"""Executions: the history (filters and pages from the index), one execution read from the
topic (each action, logs, the event), and replay."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from eventrules.console.context import CONSOLE
from eventrules.console.forms import (
    choice,
    optional_text,
    page_size,
    timestamp_ms,
)
from eventrules.console.index import STATUSES, TRIGGERED_BY, ExecutionFilter, parse_cursor
from eventrules.console.pages import redirect, render
from eventrules.console.security import admin_only
from eventrules.errors import EventRulesError, InputError, NotFoundError
from eventrules.ops.executions import recorded_event, replay_execution
from eventrules.settings import Settings

__all__ = ["add_routes"]

_EXECUTION_ID_LIMIT = 200


def _filters(request: web.Request) -> tuple[ExecutionFilter, dict[str, str]]:
    console = request.app[CONSOLE]
    query = request.query
    zone = console.settings.zoneinfo()
    where = ExecutionFilter(
        workflow_id=optional_text(query, "workflow", max_length=128),
        status=choice(query, "status", STATUSES),
        trigger=choice(query, "trigger", console.catalog.names()),
        triggered_by=choice(query, "triggered_by", TRIGGERED_BY),
        event_id=optional_text(query, "event_id", max_length=256),
        since=timestamp_ms(query, "since", zone),
        until=timestamp_ms(query, "until", zone),
    )
    shown = {
        name: optional_text(query, name, max_length=256) or ""
        for name in ("workflow", "status", "trigger", "triggered_by", "event_id", "since", "until")
    }
    return where, shown


async def execution_list(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    where, shown = _filters(request)
    limit = page_size(request.query)
    cursor = optional_text(request.query, "after", max_length=40)
    if cursor is not None:
        try:
            parse_cursor(cursor)
        except ValueError:
            raise InputError("after", "not a page cursor") from None
    page = await asyncio.to_thread(console.index.query, where, limit=limit, cursor=cursor)
    kept = {name: value for name, value in shown.items() if value}
    next_link = (
        "/executions?" + urlencode({**kept, "limit": limit, "after": page.next_cursor})
        if page.next_cursor
        else None
    )
    return render(
        request,
        "executions.html",
        rows=page.rows,
        filters=shown,
        limit=limit,
        next_link=next_link,
        first_link="/executions?" + urlencode({**kept, "limit": limit}) if cursor else None,
        statuses=STATUSES,
        triggered_by=TRIGGERED_BY,
        triggers=console.catalog.names(),
        progress=console.indexer.progress(),
    )


def _execution_id(request: web.Request) -> str:
    value = request.match_info["execution_id"]
    if len(value) > _EXECUTION_ID_LIMIT:
        raise InputError("execution", "too long")
    return value


async def execution_detail(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    execution_id = _execution_id(request)
    row = await asyncio.to_thread(console.index.get, execution_id)
    if row is None:
        raise NotFoundError(f"no execution {execution_id!r} in the index")
    record: dict[str, Any] = await console.execution_record(row.partition, row.offset)
    replays = await asyncio.to_thread(
        console.index.query, ExecutionFilter(workflow_id=row.workflow_id), limit=200
    )
    base_event = str(record.get("trigger_event_id") or "").split("#replay-", 1)[0]
    related = [
        other
        for other in replays.rows
        if other.execution_id != execution_id
        and str(other.trigger_event_id or "").split("#replay-", 1)[0] == base_event
    ]
    event, event_note = await _event_of(console.settings, record)
    return render(
        request,
        "execution.html",
        row=row,
        record=record,
        related=related,
        replay=None,
        event=event,
        event_note=event_note,
    )


async def _event_of(
    settings: Settings, record: dict[str, Any]
) -> tuple[dict[str, Any] | None, str]:
    """The run's event for display: its copy, or read back from where the record points (and
    why not, when retention took it)."""
    if isinstance(record.get("event"), dict):
        return record["event"], ""
    if not isinstance(record.get("event_ref"), dict):
        return None, "this record carries no event"
    try:
        event = await asyncio.to_thread(recorded_event, settings, record)
    except EventRulesError as exc:
        return None, str(exc)
    return event.model_dump(mode="json"), "read back from " + _where(record["event_ref"])


def _where(ref: dict[str, Any]) -> str:
    return f"{ref.get('topic')}[{ref.get('partition')}]@{ref.get('offset')}"


@admin_only
async def replay(request: web.Request) -> web.StreamResponse:
    """Re-run the execution's event against the live workflow (or the recorded version)."""
    console = request.app[CONSOLE]
    execution_id = _execution_id(request)
    form = await request.post()
    recorded = optional_text(form, "recorded_version", max_length=5) == "true"
    ignore = optional_text(form, "ignore_conditions", max_length=5) == "true"
    result = await asyncio.to_thread(
        replay_execution,
        console.settings,
        execution_id,
        recorded_version=recorded,
        ignore_conditions=ignore,
    )
    back = f"/executions/{execution_id}"
    if result.record is None:
        reasons = "; ".join(result.trace.reasons)
        raise redirect(
            request,
            back,
            "error",
            f"Not replayed: {result.workflow_id} v{result.workflow_version} would not run"
            f" ({reasons}). Tick 'ignore conditions' to run it anyway.",
        )
    new = result.record
    # the new record's page reads the index: give the follower a moment to see it
    for _ in range(100):
        if await asyncio.to_thread(console.index.get, new.execution_id) is not None:
            break
        await asyncio.sleep(0.1)
    raise redirect(
        request,
        f"/executions/{new.execution_id}?replay_of={execution_id}",
        "ok" if new.status == "success" else "error",
        f"Replayed as {new.execution_id}: {new.status}.",
    )


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/executions", execution_list)
    router.add_get("/executions/{execution_id}", execution_detail)
    router.add_post("/executions/{execution_id}/replay", replay)
