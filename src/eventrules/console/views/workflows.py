"""Workflows: the list (search, filters, toggles, run counts), one workflow's page (definition,
version history with diffs, stats, recent executions), its test button and Run now."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from eventrules.console.context import CONSOLE, Console
from eventrules.console.dryrun import chosen_event, dry_run, sample_event
from eventrules.console.forms import (
    choice,
    definition_id,
    json_object,
    optional_text,
)
from eventrules.console.index import ExecutionFilter
from eventrules.console.pages import render, unified_diff
from eventrules.console.security import admin_only
from eventrules.console.views.definitions import live_item
from eventrules.errors import DefinitionError, EventRulesError, InputError
from eventrules.models.workflows import Workflow, parse_workflow
from eventrules.ops.audit import AuditEntry
from eventrules.ops.config import definition_history
from eventrules.ops.events import RecentEvent, recent_events
from eventrules.ops.runs import live_engine, manual_event, run_workflow_now

__all__ = ["add_routes", "history_rows", "run_stats"]


async def run_stats(console: Console) -> dict[str, dict[str, Any]]:
    """Runs, success rate and last run per workflow: the stats keepers' snapshots (all time),
    or what the index holds for a workflow they have not published yet."""
    try:
        published = await console.workflow_stats()
    except EventRulesError:
        published = {}
    indexed = await asyncio.to_thread(console.index.workflow_summaries)
    stats: dict[str, dict[str, Any]] = {}
    for workflow_id, summary in indexed.items():
        stats[workflow_id] = {
            "runs": summary["runs"],
            "success_rate": summary["successes"] / summary["runs"] if summary["runs"] else None,
            "last_run": summary["last_run"],
            "source": "index",
        }
    for workflow_id, snapshot in published.items():
        runs = int(snapshot.get("run_count") or 0)
        stats[workflow_id] = {
            "runs": runs,
            "success_rate": int(snapshot.get("success_count") or 0) / runs if runs else None,
            "last_run": snapshot.get("last_run"),
            "average_ms": snapshot.get("average_duration_ms"),
            "source": "workflow-stats",
        }
    return stats


async def workflow_list(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    query = request.query
    search = (optional_text(query, "q", max_length=200) or "").lower()
    triggers = console.catalog.names()
    trigger = choice(query, "trigger", triggers)
    enabled = choice(query, "enabled", ("yes", "no"))
    owner = optional_text(query, "owner", max_length=200)
    live = await console.live()
    stats = await run_stats(console)
    rows = []
    owners: set[str] = set()
    for (kind, ident), item in sorted(live.items()):
        if kind != "workflow":
            continue
        value = item.value
        people = {str(value.get(k)) for k in ("created_by", "updated_by") if value.get(k)}
        owners |= people
        is_on = value.get("enabled", True) is not False
        text = " ".join(str(value.get(k, "")) for k in ("id", "name", "description")).lower()
        if (
            (search and search not in text)
            or (trigger and value.get("trigger") != trigger)
            or (enabled == "yes" and not is_on)
            or (enabled == "no" and is_on)
            or (owner and owner not in people)
        ):
            continue
        rows.append({"id": ident, "item": item, "enabled": is_on, "stats": stats.get(ident)})
    return render(
        request,
        "workflows.html",
        rows=rows,
        triggers=triggers,
        owners=sorted(owners),
        filters={
            "q": search,
            "trigger": trigger or "",
            "enabled": enabled or "",
            "owner": owner or "",
        },
        next_path=request.path_qs,
    )


def history_rows(entries: list[AuditEntry]) -> list[dict[str, Any]]:
    """Newest first, each audited change with who made it and its diff from the one before."""
    rows = []
    previous: dict[str, Any] | None = None
    for entry in entries:
        definition = entry.definition
        before_name = f"v{previous.get('version')}" if previous else "(none)"
        after_name = f"v{entry.version}" if definition is not None else "(deleted)"
        rows.append(
            {
                "value": definition,
                "version": entry.version,
                "timestamp_ms": entry.timestamp_ms,
                "offset": entry.offset,
                "by": str(entry.entry.get("by") or ""),
                "action": str(entry.entry.get("action") or ""),
                "verified": entry.verified,
                "diff": unified_diff(previous, definition, before_name, after_name),
            }
        )
        previous = definition
    return list(reversed(rows))


async def _detail_context(request: web.Request, ident: str) -> dict[str, Any]:
    console = request.app[CONSOLE]
    item = await live_item(request, "workflow", ident)
    versions = await asyncio.to_thread(definition_history, console.settings, "workflow", ident)
    recent = await asyncio.to_thread(
        console.index.query, ExecutionFilter(workflow_id=ident), limit=20
    )
    day = int(time.time() * 1000) - 86_400_000
    counts = await asyncio.to_thread(console.index.status_counts, since=day, workflow_id=ident)
    return {
        "item": item,
        "history": history_rows(versions),
        "recent": recent.rows,
        "day_counts": counts,
        "stats": (await run_stats(console)).get(ident),
        "sample": sample_event(console.templates_root, str(item.value.get("trigger"))),
        "recent_events": [],
        "test": None,
        "test_input": "",
        "run_result": None,
        "errors": {},
        "next_path": request.path,
    }


def _ident(request: web.Request) -> str:
    return definition_id(request.match_info["definition_id"], "workflow")


async def workflow_detail(request: web.Request) -> web.Response:
    return render(request, "workflow.html", **await _detail_context(request, _ident(request)))


def _event_choices(found: list[RecentEvent]) -> list[dict[str, Any]]:
    return [
        {
            "label": f"{r.event.time.isoformat(timespec='seconds')} {r.event.id} ({r.topic})",
            "json": r.event.model_dump(mode="json"),
        }
        for r in found
    ]


async def recent_for_trigger(request: web.Request) -> web.Response:
    """The newest events of a trigger, for the test button's picker (a fragment)."""
    console = request.app[CONSOLE]
    trigger = choice(request.query, "trigger", console.catalog.names())
    if trigger is None:
        raise InputError("trigger", "required")
    found = await asyncio.to_thread(recent_events, console.settings, trigger, limit=10)
    return render(
        request,
        "recent_events.html",
        fragment=True,
        events=_event_choices(found),
        trigger=trigger,
    )


async def test_workflow(request: web.Request) -> web.Response:
    """The test button on a live workflow: a dry run, nothing published."""
    console = request.app[CONSOLE]
    ident = _ident(request)
    context = await _detail_context(request, ident)
    form = await request.post()
    context["test_input"] = optional_text(form, "event", max_length=300_000) or ""
    try:
        workflow = parse_workflow(context["item"].value, console.registry)
        event, context["test_input"] = chosen_event(form, workflow.trigger, console.templates_root)
        trace, actions = dry_run(workflow, event, console.catalog, console.settings.zoneinfo())
        context["test"] = {"trace": trace, "actions": actions, "event": event}
    except InputError as exc:
        context["errors"] = {exc.field: [str(exc).partition(": ")[2]]}
        return render(request, "workflow.html", status=400, **context)
    except DefinitionError as exc:
        context["errors"] = {"event": [str(exc)]}
    return render(request, "workflow.html", **context)


@admin_only
async def run_now(request: web.Request) -> web.Response:
    """Run now: execute the live workflow for real with the data given (its conditions are
    shown, not checked), as `eventrules workflows run` does."""
    console = request.app[CONSOLE]
    ident = _ident(request)
    form = await request.post()
    typed = optional_text(form, "data", max_length=300_000) or "{}"
    subject = optional_text(form, "subject", max_length=256)
    context = await _detail_context(request, ident)
    try:
        data = json_object(typed, "data")
    except InputError as exc:
        context["errors"] = {exc.field: [str(exc).partition(": ")[2]]}
        return render(request, "workflow.html", status=400, **context)

    def run() -> dict[str, Any]:
        engine = live_engine(console.settings, ident)
        workflow = engine.get(ident)
        if not isinstance(workflow, Workflow):  # live_engine installed it
            raise InputError("workflow", "not live")
        event = manual_event(workflow, data, subject)
        trace = engine.trace(ident, event)
        record = run_workflow_now(console.settings, engine, workflow, event, "manual")
        return {"record": record.model_dump(mode="json"), "would_match": trace.fired}

    context["run_result"] = await asyncio.to_thread(run)
    return render(request, "workflow.html", **context)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/workflows", workflow_list)
    router.add_get("/events/recent", recent_for_trigger)
    router.add_get("/workflows/{definition_id}", workflow_detail)
    router.add_post("/workflows/{definition_id}/test", test_workflow)
    router.add_post("/workflows/{definition_id}/run", run_now)
