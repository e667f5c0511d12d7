"""``eventrules config``: manage definitions on the compacted config topic."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import orjson
import yaml
from rich.console import Console
from rich.table import Table

from eventrules.cli._plan import (
    WIDTH,
    plan_and_publish,
    plan_table,
    publish_or_exit,
    read_live_or_exit,
)
from eventrules.errors import DefinitionError, EventRulesError
from eventrules.ops.config import (
    LiveDefinition,
    PlannedChange,
    collect_definitions,
    definition_history,
    plan_changes,
    plan_toggle,
)
from eventrules.settings import Settings

__all__ = ["config"]

_KIND = click.Choice(["workflow", "rule"])


@click.group()
def config() -> None:
    """Workflow and rule definitions on the config topic."""


@config.command("apply")
@click.option(
    "-f",
    "--file",
    "paths",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Definition file or directory (YAML/JSON); repeatable.",
)
@click.option("--yes", is_flag=True, help="Publish without asking.")
@click.option("--dry-run", is_flag=True, help="Only show the plan.")
@click.option("--prune", is_flag=True, help="Delete live definitions absent from the files.")
@click.option("--force", is_flag=True, help="Publish even if the topic changed since planning.")
@click.option("--as", "updated_by", default=None, help="Recorded as updated_by (default: $USER).")
def apply_command(
    *,
    paths: tuple[Path, ...],
    yes: bool,
    dry_run: bool,
    prune: bool,
    force: bool,
    updated_by: str | None,
) -> None:
    """Validate every definition, show the plan, then publish it.

    Nothing is published if any definition is invalid; every error is listed. In a directory,
    documents without a ``kind`` (sample events) are skipped. If someone else changed a planned
    definition between the plan and the publish, nothing is published (exit 4) unless --force.
    """
    settings = Settings()
    console = Console(width=WIDTH)
    skipped: list[str] = []
    try:
        definitions = collect_definitions(paths, skipped=skipped)
    except DefinitionError as exc:
        console.print(f"[red]{exc.args[0]}[/]")
        for where, reason in exc.problems:
            console.print(f"  {where}: {reason}")
        raise SystemExit(1) from None
    for source in skipped:
        console.print(f"[dim]skipped {source}: no definition (no `kind`)[/]")
    live = read_live_or_exit(settings, console)
    changes = plan_changes(definitions, live, updated_by=updated_by, prune=prune)
    plan_and_publish(settings, console, changes, live, yes=yes, dry_run=dry_run, force=force)


@config.command("list")
def list_command() -> None:
    """The live definitions."""
    settings = Settings()
    console = Console(width=WIDTH)
    live = read_live_or_exit(settings, console)
    table = Table(
        "kind",
        "id",
        "name",
        "trigger / type",
        "schedule",
        "enabled",
        "priority",
        "version",
        "updated by",
        "updated at",
    )
    for (kind, definition_id), item in sorted(live.items()):
        value = item.value
        table.add_row(
            kind,
            definition_id,
            str(value.get("name", "")),
            str(value.get("trigger") or value.get("rule_type") or ""),
            str(value.get("schedule") or ""),
            str(value.get("enabled", True)),
            str(value.get("priority", "")),
            str(value.get("version", "")),
            str(value.get("updated_by") or value.get("created_by", "")),
            str(value.get("updated_at", "")),
        )
    console.print(table)


def _live_one(
    settings: Settings, console: Console, kind: str, definition_id: str
) -> tuple[LiveDefinition, dict[tuple[str, str], LiveDefinition]]:
    live = read_live_or_exit(settings, console)
    item = live.get((kind, definition_id))
    if item is None:
        raise click.ClickException(f"no live {kind} {definition_id!r}")
    return item, live


@config.command("get")
@click.argument("definition_id")
@click.option("--kind", type=_KIND, default="workflow", show_default=True)
def get_command(definition_id: str, kind: str) -> None:
    """Print one live definition as JSON."""
    settings = Settings()
    item, _ = _live_one(settings, Console(stderr=True), kind, definition_id)
    click.echo(orjson.dumps(item.value, option=orjson.OPT_INDENT_2).decode())


@config.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write workflows/<id>.yaml and rules/<id>.yaml under this directory (default: stdout).",
)
def export_command(output: Path | None) -> None:
    """Every live definition as YAML; `config apply -f` of the result changes nothing."""
    settings = Settings()
    live = read_live_or_exit(settings, Console(stderr=True))
    values = [item.value for _, item in sorted(live.items())]
    if output is None:
        click.echo(yaml.safe_dump(values, sort_keys=False, allow_unicode=True), nl=False)
        return
    for (kind, definition_id), item in sorted(live.items()):
        target = output / f"{kind}s" / f"{definition_id}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(item.value, sort_keys=False, allow_unicode=True))
    click.echo(f"exported {len(values)} definition(s) to {output}")


def _guarded_single_change(
    settings: Settings,
    console: Console,
    change: PlannedChange,
    live: dict[tuple[str, str], LiveDefinition],
    *,
    expect_version: int | None,
    yes: bool,
) -> None:
    if expect_version is not None and change.live_version != expect_version:
        console.print(
            f"[red]{change.kind} {change.definition_id!r} is at v{change.live_version},"
            f" not v{expect_version}; nothing was published[/]"
        )
        raise SystemExit(4)
    console.print(plan_table([change]))
    topic = settings.topic("config")
    if not yes and not click.confirm(f"publish this change to {topic}?"):
        raise SystemExit(1)
    publish_or_exit(settings, console, [change], live, force=False)
    console.print(f"published 1 change(s) to {topic}")


_EXPECT = click.option(
    "--expect-version",
    type=int,
    default=None,
    help="Refuse unless the live version is exactly this one.",
)


@config.command("delete")
@click.argument("definition_id")
@click.option("--kind", type=_KIND, default="workflow", show_default=True)
@_EXPECT
@click.option("--yes", is_flag=True, help="Delete without asking.")
def delete_command(definition_id: str, kind: str, expect_version: int | None, yes: bool) -> None:
    """Delete one live definition (a tombstone on the config topic)."""
    settings = Settings()
    console = Console(width=WIDTH)
    item, live = _live_one(settings, console, kind, definition_id)
    version = int(item.value.get("version", 0))
    change = PlannedChange("delete", kind, definition_id, None, None, version)
    _guarded_single_change(settings, console, change, live, expect_version=expect_version, yes=yes)


def _toggle(
    definition_id: str,
    kind: str,
    expect_version: int | None,
    updated_by: str | None,
    *,
    enabled: bool,
) -> None:
    settings = Settings()
    console = Console(width=WIDTH)
    item, live = _live_one(settings, console, kind, definition_id)
    if bool(item.value.get("enabled", True)) == enabled:
        console.print(f"{kind} {definition_id!r} is already {'enabled' if enabled else 'disabled'}")
        return
    change = plan_toggle(item, enabled=enabled, updated_by=updated_by)
    _guarded_single_change(settings, console, change, live, expect_version=expect_version, yes=True)


@config.command("enable")
@click.argument("definition_id")
@click.option("--kind", type=_KIND, default="workflow", show_default=True)
@_EXPECT
@click.option("--as", "updated_by", default=None, help="Recorded as updated_by.")
def enable_command(
    definition_id: str, kind: str, expect_version: int | None, updated_by: str | None
) -> None:
    """Enable one definition (published as the next version)."""
    _toggle(definition_id, kind, expect_version, updated_by, enabled=True)


@config.command("disable")
@click.argument("definition_id")
@click.option("--kind", type=_KIND, default="workflow", show_default=True)
@_EXPECT
@click.option("--as", "updated_by", default=None, help="Recorded as updated_by.")
def disable_command(
    definition_id: str, kind: str, expect_version: int | None, updated_by: str | None
) -> None:
    """Disable one definition (published as the next version; it stops matching events)."""
    _toggle(definition_id, kind, expect_version, updated_by, enabled=False)


def _when(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat(timespec="seconds")


@config.command("history")
@click.argument("definition_id")
@click.option("--kind", type=_KIND, default="workflow", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per version.")
def history_command(definition_id: str, kind: str, as_json: bool) -> None:
    """Every version of a definition the config topic still holds (compaction may have removed
    older ones), oldest first."""
    settings = Settings()
    console = Console(width=WIDTH)
    try:
        with console.status(f"reading {settings.topic('config')}"):
            versions = definition_history(settings, kind, definition_id)
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    if not versions:
        raise click.ClickException(f"the config topic holds no record of {kind} {definition_id!r}")
    if as_json:
        for version in versions:
            row: dict[str, Any] = {
                "offset": version.offset,
                "timestamp": _when(version.timestamp_ms),
                "deleted": version.value is None,
                "definition": version.value,
            }
            click.echo(orjson.dumps(row).decode())
        return
    table = Table("offset", "written at", "version", "enabled", "updated by", "updated at")
    for version in versions:
        value = version.value
        if value is None:
            table.add_row(str(version.offset), _when(version.timestamp_ms), "[red]deleted[/]")
            continue
        table.add_row(
            str(version.offset),
            _when(version.timestamp_ms),
            str(value.get("version", "")),
            str(value.get("enabled", True)),
            str(value.get("updated_by") or value.get("created_by", "")),
            str(value.get("updated_at", "")),
        )
    console.print(table)
