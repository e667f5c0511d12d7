"""``eventrules config``: manage definitions on the compacted config topic."""

from __future__ import annotations

from pathlib import Path

import click
import orjson
from rich.console import Console
from rich.table import Table

from eventrules.configops import (
    collect_definitions,
    plan_changes,
    publish,
    read_live_definitions,
)
from eventrules.errors import DefinitionError, EventRulesError
from eventrules.settings import Settings

_STYLE = {"create": "green", "update": "yellow", "delete": "red", "unchanged": "dim"}


def _config_topic(settings: Settings) -> str:
    return settings.topic_prefix + "config"


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
@click.option("--as", "updated_by", default=None, help="Recorded as updated_by (default: $USER).")
def apply_command(
    paths: tuple[Path, ...], yes: bool, dry_run: bool, prune: bool, updated_by: str | None
) -> None:
    """Validate every definition, show the plan, then publish it.

    Nothing is published if any definition is invalid; every error is listed.
    """
    settings = Settings()
    console = Console()
    try:
        definitions = collect_definitions(paths)
    except DefinitionError as exc:
        console.print(f"[red]{exc.args[0]}[/]")
        for where, reason in exc.problems:
            console.print(f"  {where}: {reason}")
        raise SystemExit(1) from None
    topic = _config_topic(settings)
    try:
        with console.status(f"reading {topic}"):
            live = read_live_definitions(settings.kafka_client_config(), topic)
        changes = plan_changes(definitions, live, updated_by=updated_by, prune=prune)
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    table = Table("action", "kind", "id", "version")
    for change in changes:
        style = _STYLE[change.action]
        version = (
            f"{change.live_version} -> {change.version}"
            if change.action == "update"
            else str(change.version or change.live_version)
        )
        table.add_row(f"[{style}]{change.action}[/]", change.kind, change.definition_id, version)
    console.print(table)
    pending = [c for c in changes if c.action != "unchanged"]
    if not pending:
        console.print("nothing to change")
        return
    if dry_run:
        console.print(f"dry run: {len(pending)} change(s) not published")
        return
    if not yes and not click.confirm(f"publish {len(pending)} change(s) to {topic}?"):
        raise SystemExit(1)
    try:
        with console.status(f"publishing to {topic}"):
            written = publish(settings.kafka_client_config(), topic, changes)
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(f"published {written} change(s) to {topic}")


@config.command("list")
def list_command() -> None:
    """The live definitions."""
    settings = Settings()
    try:
        live = read_live_definitions(settings.kafka_client_config(), _config_topic(settings))
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    table = Table(
        "kind",
        "id",
        "name",
        "trigger / type",
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
            str(value.get("enabled", True)),
            str(value.get("priority", "")),
            str(value.get("version", "")),
            str(value.get("updated_by") or value.get("created_by", "")),
            str(value.get("updated_at", "")),
        )
    Console(width=200).print(table)


@config.command("get")
@click.argument("definition_id")
@click.option("--kind", default="workflow", show_default=True)
def get_command(definition_id: str, kind: str) -> None:
    """Print one live definition as JSON."""
    settings = Settings()
    try:
        live = read_live_definitions(settings.kafka_client_config(), _config_topic(settings))
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    item = live.get((kind, definition_id))
    if item is None:
        raise click.ClickException(f"no live {kind} {definition_id!r}")
    click.echo(orjson.dumps(item.value, option=orjson.OPT_INDENT_2).decode())
