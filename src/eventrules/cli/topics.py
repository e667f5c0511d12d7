"""``eventrules topics``: apply and list the declared topics."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from eventrules.errors import EventRulesError
from eventrules.ops.topics import TopicSpec, apply_declared, declared, describe
from eventrules.settings import Settings


def _specs(
    settings: Settings, folder: Path | None, replication_factor: int | None
) -> list[TopicSpec]:
    return declared(settings, folder, replication_factor)


_dir_option = click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of topic files (default: EVENTRULES_TOPICS_DIR, else the shipped ones).",
)
_rf_option = click.option(
    "--replication-factor",
    type=int,
    default=None,
    help="Override the files' replication factor (e.g. 3 on a production cluster).",
)


@click.group()
def topics() -> None:
    """Declared topics: create them, compare them with the cluster."""


@topics.command("apply")
@_dir_option
@_rf_option
@click.option(
    "--fix", is_flag=True, help="Repair drift that is safe: grow partitions, set configs."
)
def apply_command(folder: Path | None, replication_factor: int | None, fix: bool) -> None:
    """Create missing topics and report drift. Never deletes or shrinks anything.

    Exits 0 when the cluster matches the declarations, 3 when drift remains.
    """
    settings = Settings()
    console = Console()
    try:
        specs = _specs(settings, folder, replication_factor)
        with console.status(f"applying {len(specs)} topics to {settings.bootstrap_servers}"):
            report = apply_declared(settings, specs, fix=fix)
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    for topic in report.created:
        console.print(f"[green]created[/]   {topic}")
    for item in report.fixed:
        console.print(f"[yellow]fixed[/]     {item}")
    for item in report.drift:
        hint = " (fix with --fix)" if item.fixable else " (needs manual migration)"
        console.print(f"[red]drift[/]     {item}{hint}")
    console.print(
        f"{len(report.created)} created, {len(report.unchanged)} unchanged, "
        f"{len(report.fixed)} fixed, {len(report.drift)} drifted"
    )
    if report.drift:
        raise SystemExit(3)


@topics.command("list")
@_dir_option
@_rf_option
def list_command(folder: Path | None, replication_factor: int | None) -> None:
    """Show declared topics next to what the cluster has."""
    settings = Settings()
    try:
        states = describe(settings, _specs(settings, folder, replication_factor))
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    table = Table("topic", "partitions", "replication", "configs", "state")
    for state in states:
        spec = state.spec
        drift = state.drift()
        status = "missing" if not state.exists else ("drift" if drift else "ok")
        table.add_row(
            spec.topic,
            f"{spec.partitions} / {state.partitions if state.exists else '-'}",
            f"{spec.replication_factor} / {state.replication_factor if state.exists else '-'}",
            ", ".join(f"{k}={v}" for k, v in sorted(spec.configs.items())),
            status
            if not drift
            else "drift: " + "; ".join(f"{d.setting} {d.declared}->{d.actual}" for d in drift),
        )
    Console(width=200).print(table)
