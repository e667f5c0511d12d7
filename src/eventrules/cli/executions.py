"""``eventrules executions``: read the executions log."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from eventrules.errors import EventRulesError
from eventrules.ops.executions import (
    follow_executions,
    read_executions,
    replay_execution,
    wanted,
)
from eventrules.settings import Settings

__all__ = ["executions"]

_STATUS = click.Choice(["success", "failed", "partial", "retrying"])
_STYLE = {"success": "green", "failed": "red", "partial": "yellow", "retrying": "cyan"}


def _read_executions(settings: Settings, console: Console) -> list[dict[str, Any]]:
    """Every execution record the topic holds, with a progress indicator while reading."""
    try:
        with console.status(f"reading {settings.topic('executions')}"):
            return read_executions(settings)
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None


def _table(records: Iterable[dict[str, Any]]) -> Table:
    table = Table(
        "executed at", "workflow", "v", "status", "event", "trigger", "by", "ms", "actions", "error"
    )
    for record in records:
        status = str(record.get("status"))
        actions = record.get("actions") or []
        # a delayed action counts as done, as in the record's status: its own run says more
        ok = sum(1 for action in actions if action.get("status") in ("success", "delayed"))
        table.add_row(
            str(record.get("executed_at", "")),
            str(record.get("workflow_id")),
            str(record.get("workflow_version")),
            f"[{_STYLE.get(status, 'white')}]{status}[/]",
            str(record.get("trigger_event_id")),
            str(record.get("trigger_event_type")),
            str(record.get("triggered_by")),
            f"{record.get('duration_ms', 0):.1f}",
            f"{ok}/{len(actions)}",
            str(record.get("error") or ""),
        )
    return table


@click.group()
def executions() -> None:
    """The executions log: one record per workflow run."""


@executions.command("list")
@click.option("--workflow", default=None, help="Only this workflow id.")
@click.option("--status", type=_STATUS, default=None)
@click.option("--limit", type=int, default=20, show_default=True, help="Newest N records.")
@click.option("--json", "as_json", is_flag=True, help="One JSON record per line.")
def list_command(workflow: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """The newest execution records, optionally filtered."""
    settings = Settings()
    console = Console(width=200)
    found = [r for r in _read_executions(settings, console) if wanted(r, workflow, status)]
    found.sort(key=lambda record: str(record.get("executed_at", "")))
    newest = found[-limit:] if limit > 0 else found
    if as_json:
        for record in newest:
            click.echo(orjson.dumps(record).decode())
        return
    console.print(_table(newest))
    console.print(f"{len(newest)} of {len(found)} matching record(s)")


@executions.command("tail")
@click.option("--workflow", default=None, help="Only this workflow id.")
@click.option("--status", type=_STATUS, default=None)
@click.option("--from-beginning", is_flag=True, help="Start at the oldest record, not the end.")
@click.option("--max", "max_records", type=int, default=0, help="Stop after N records (0: never).")
@click.option("--timeout", type=float, default=0.0, help="Stop after N idle seconds (0: never).")
def tail_command(
    workflow: str | None,
    status: str | None,
    from_beginning: bool,
    max_records: int,
    timeout: float,
) -> None:
    """Follow new execution records as JSON lines (Ctrl-C stops)."""
    settings = Settings()
    shown = 0
    try:
        for record in follow_executions(
            settings, from_beginning=from_beginning, idle_timeout=timeout
        ):
            if wanted(record, workflow, status):
                click.echo(orjson.dumps(record).decode())
                shown += 1
                if 0 < max_records <= shown:
                    break
    except KeyboardInterrupt:
        pass
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None


@executions.command("replay")
@click.argument("execution_id")
@click.option(
    "--recorded-version",
    is_flag=True,
    help="Run the workflow version the execution ran (from the config topic's history).",
)
@click.option(
    "--ignore-conditions", is_flag=True, help="Run even if the conditions no longer match."
)
def replay_command(execution_id: str, recorded_version: bool, ignore_conditions: bool) -> None:
    """Re-run the event of EXECUTION_ID against the live version of its workflow.

    The new record has triggered_by: replay and the event id ``<original>#replay-<n>``. Exits
    3 without running when the conditions no longer match (unless --ignore-conditions)."""
    settings = Settings()
    console = Console(width=200, stderr=True)
    try:
        with console.status("reading the executions and config topics"):
            replay = replay_execution(
                settings,
                execution_id,
                recorded_version=recorded_version,
                ignore_conditions=ignore_conditions,
            )
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    if replay.record is None:
        console.print(f"[yellow]{replay.workflow_id} v{replay.workflow_version} would not run:[/]")
        for reason in replay.trace.reasons:
            console.print(f"  {reason}")
        raise SystemExit(3)
    output = replay.record.model_dump(mode="json")
    output["replay_of"] = execution_id
    click.echo(orjson.dumps(output, option=orjson.OPT_INDENT_2).decode())
    if replay.record.status != "success":
        raise SystemExit(1)
