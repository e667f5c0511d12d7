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
from eventrules.definitions.signatures import ConfigSigner
from eventrules.errors import DefinitionError, EventRulesError
from eventrules.ops.config import (
    Live,
    LiveDefinition,
    PlannedChange,
    collect_definitions,
    definition_history,
    plan_changes,
    plan_rollback,
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
) -> tuple[LiveDefinition, Live]:
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
    live: Live,
    *,
    expect_version: int | None,
    yes: bool,
    author: str | None = None,
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
    publish_or_exit(settings, console, [change], live, force=False, author=author)
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
@click.option("--as", "updated_by", default=None, help="Recorded in the audit trail.")
def delete_command(
    definition_id: str, kind: str, expect_version: int | None, yes: bool, updated_by: str | None
) -> None:
    """Delete one live definition (a tombstone on the config topic)."""
    settings = Settings()
    console = Console(width=WIDTH)
    item, live = _live_one(settings, console, kind, definition_id)
    version = int(item.value.get("version", 0))
    change = PlannedChange("delete", kind, definition_id, None, None, version)
    _guarded_single_change(
        settings,
        console,
        change,
        live,
        expect_version=expect_version,
        yes=yes,
        author=updated_by,
    )


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


_PAST = {"create": "created", "update": "updated", "delete": "deleted"}


@config.command("history")
@click.argument("definition_id")
@click.option("--kind", type=_KIND, default="workflow", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per change.")
def history_command(definition_id: str, kind: str, as_json: bool) -> None:
    """Every published change of a definition, oldest first, from the audit topic (which is
    not compacted): who, when, the signing key, the versions and what changed."""
    settings = Settings()
    console = Console(width=WIDTH)
    try:
        with console.status(f"reading {settings.topics.audit}"):
            entries = definition_history(settings, kind, definition_id)
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    if not entries:
        raise click.ClickException(f"the audit trail holds no change of {kind} {definition_id!r}")
    if as_json:
        for entry in entries:
            row: dict[str, Any] = {
                "offset": entry.offset,
                "timestamp": _when(entry.timestamp_ms),
                "deleted": entry.entry.get("action") == "delete",
                "verified": entry.verified,
                **entry.entry,
            }
            click.echo(orjson.dumps(row).decode())
        return
    table = Table("written at", "action", "version", "by", "signed by", "changed")
    for entry in entries:
        value = entry.entry
        action = _PAST.get(str(value.get("action")), "?")
        if value.get("note"):
            action += f" ({value['note']})"
        signer = str(value.get("signer") or "unsigned")
        if entry.verified is False:
            signer = f"[red]{signer} (signature NOT valid)[/]"
        previous = value.get("previous_version")
        version = f"{previous} -> {entry.version}" if previous else str(entry.version)
        fields = ", ".join(str(d.get("field")) for d in value.get("diff") or [])
        style = "red" if action.startswith("deleted") else ""
        table.add_row(
            _when(entry.timestamp_ms),
            f"[{style}]{action}[/]" if style else action,
            version,
            str(value.get("by", "")),
            signer,
            fields,
        )
    console.print(table)


@config.command("rollback")
@click.argument("definition_id")
@click.option("--to-version", "to_version", type=int, required=True, help="Version to restore.")
@click.option("--kind", type=_KIND, default="workflow", show_default=True)
@click.option("--yes", is_flag=True, help="Publish without asking.")
@click.option("--as", "updated_by", default=None, help="Recorded as updated_by.")
def rollback_command(
    definition_id: str, to_version: int, kind: str, yes: bool, updated_by: str | None
) -> None:
    """Publish an earlier version's content (from the audit trail) as the next version.

    Works after compaction and after a delete; the restored definition gets a version above
    every one it ever had, so every worker accepts it."""
    settings = Settings()
    console = Console(width=WIDTH)
    live = read_live_or_exit(settings, console)
    try:
        change = plan_rollback(
            live,
            definition_history(settings, kind, definition_id),
            kind,
            definition_id,
            to_version,
            updated_by=updated_by,
        )
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    _guarded_single_change(settings, console, change, live, expect_version=None, yes=yes)


@config.command("keygen")
@click.option(
    "--out",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the private key (PEM, mode 0600; never overwritten).",
)
def keygen_command(path: Path) -> None:
    """Make an Ed25519 key pair for signing definitions.

    The private key goes to --out: point EVENTRULES_CONFIG_SIGNING_KEY_FILE at it wherever
    definitions are published (CLI, console). Add the printed public key to the workers'
    EVENTRULES_CONFIG_TRUSTED_KEYS (a JSON list)."""
    signer = ConfigSigner.generate()
    try:
        signer.write(path)
    except FileExistsError:
        raise click.ClickException(f"{path} exists; not overwritten") from None
    click.echo(f"private key: {path} (key id {signer.key_id})")
    click.echo(f"public key: {signer.public_key}")
    click.echo(f"EVENTRULES_CONFIG_TRUSTED_KEYS entry: {orjson.dumps(signer.public_key).decode()}")
