"""``eventrules templates``: the shipped workflow and rule templates (config/templates)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from eventrules.cli._plan import plan_and_publish, read_live_or_exit
from eventrules.definitions.files import Definition
from eventrules.errors import EventRulesError
from eventrules.models.workflows import Workflow
from eventrules.ops.config import plan_changes
from eventrules.ops.templates import shipped_templates, templates_dir
from eventrules.settings import Settings

__all__ = ["templates"]


def _shipped(root: Path | None) -> dict[str, tuple[Definition, Path]]:
    try:
        return shipped_templates(templates_dir(root))
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None


_DIR = click.option(
    "--dir",
    "root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Templates folder (default: EVENTRULES_TEMPLATES_DIR, else the shipped templates).",
)


@click.group()
def templates() -> None:
    """Shipped workflow and rule templates: list them, install them on the config topic."""


@templates.command("list")
@_DIR
def list_command(root: Path | None) -> None:
    """The shipped templates."""
    table = Table("name", "kind", "trigger / type", "name (definition)", "file")
    for name, (definition, file) in sorted(_shipped(root).items()):
        what = definition.trigger if isinstance(definition, Workflow) else definition.rule_type
        table.add_row(name, definition.kind, str(what), definition.name, str(file))
    Console(width=200).print(table)


@templates.command("install")
@click.argument("names", nargs=-1)
@click.option("--all", "install_all", is_flag=True, help="Install every template.")
@click.option("--yes", is_flag=True, help="Publish without asking.")
@click.option("--dry-run", is_flag=True, help="Only show the plan.")
@click.option("--as", "updated_by", default=None, help="Recorded as updated_by (default: $USER).")
@_DIR
def install_command(
    *,
    names: tuple[str, ...],
    install_all: bool,
    yes: bool,
    dry_run: bool,
    updated_by: str | None,
    root: Path | None,
) -> None:
    """Publish the named templates to the config topic (planned like `config apply`)."""
    shipped = _shipped(root)
    if install_all:
        names = tuple(sorted(shipped))
    if not names:
        raise click.UsageError("name at least one template, or --all")
    unknown = [name for name in names if name not in shipped]
    if unknown:
        raise click.ClickException(
            f"unknown template(s) {unknown}; `eventrules templates list` shows {sorted(shipped)}"
        )
    settings = Settings()
    console = Console(width=200)
    live = read_live_or_exit(settings, console)
    changes = plan_changes([shipped[name][0] for name in names], live, updated_by=updated_by)
    plan_and_publish(settings, console, changes, live, yes=yes, dry_run=dry_run, force=False)
