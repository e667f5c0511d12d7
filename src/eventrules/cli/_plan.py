"""Showing a plan of config changes and publishing it on confirmation: the flow `config apply`,
`config enable/disable/delete` and `templates install` share (presentation only; planning and
publishing live in :mod:`eventrules.ops.config`)."""

from __future__ import annotations

from collections.abc import Sequence

import click
from rich.console import Console
from rich.table import Table

from eventrules.errors import ConfigConflictError, EventRulesError
from eventrules.ops.config import Live, PlannedChange, publish_checked, read_live
from eventrules.settings import Settings

__all__ = ["WIDTH", "plan_and_publish", "plan_table", "publish_or_exit", "read_live_or_exit"]

_STYLE = {"create": "green", "update": "yellow", "delete": "red", "unchanged": "dim"}
# Wide enough that ids and timestamps are not folded in CI logs.
WIDTH = 200


def read_live_or_exit(settings: Settings, console: Console) -> Live:
    try:
        with console.status(f"reading {settings.topic('config')}"):
            return read_live(settings)
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None


def plan_table(changes: Sequence[PlannedChange]) -> Table:
    table = Table("action", "kind", "id", "version")
    for change in changes:
        style = _STYLE[change.action]
        version = (
            f"{change.live_version} -> {change.version}"
            if change.action == "update"
            else str(change.version or change.live_version)
        )
        table.add_row(f"[{style}]{change.action}[/]", change.kind, change.definition_id, version)
    return table


def publish_or_exit(
    settings: Settings,
    console: Console,
    changes: Sequence[PlannedChange],
    planned_against: Live,
    *,
    force: bool,
    author: str | None = None,
) -> int:
    """Publish; a concurrent change since planning exits 4 with what changed."""
    try:
        with console.status(f"publishing to {settings.topic('config')}"):
            return publish_checked(settings, changes, planned_against, force=force, author=author)
    except ConfigConflictError as exc:
        console.print(f"[red]{exc}[/]")
        for key, what in exc.conflicts:
            console.print(f"  {key}: {what}")
        raise SystemExit(4) from None
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None


def plan_and_publish(
    settings: Settings,
    console: Console,
    changes: Sequence[PlannedChange],
    live: Live,
    *,
    yes: bool,
    dry_run: bool,
    force: bool,
) -> None:
    """Show the plan, then publish it on confirmation."""
    console.print(plan_table(changes))
    pending = [c for c in changes if c.action != "unchanged"]
    if not pending:
        console.print("nothing to change")
        return
    if dry_run:
        console.print(f"dry run: {len(pending)} change(s) not published")
        return
    topic = settings.topic("config")
    if not yes and not click.confirm(f"publish {len(pending)} change(s) to {topic}?"):
        raise SystemExit(1)
    written = publish_or_exit(settings, console, changes, live, force=force)
    console.print(f"published {written} change(s) to {topic}")
