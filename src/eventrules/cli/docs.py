"""``eventrules docs``: reference documents generated from the code, so they cannot drift."""

from __future__ import annotations

from pathlib import Path

import click

from eventrules.definitions.reference import render_reference
from eventrules.models.actions import ActionRegistry

__all__ = ["docs"]


@click.group()
def docs() -> None:
    """Reference documents generated from the models."""


@docs.command("definitions")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (the repository's is docs/definitions.md) instead of stdout.",
)
@click.option("--check", is_flag=True, help="Exit 1 if --output differs from what is generated.")
def definitions_command(output: Path | None, check: bool) -> None:
    """Every workflow and rule field and every action type's parameters, as Markdown.

    Plugin action types installed under the eventrules.actions entry point are included."""
    text = render_reference(ActionRegistry.from_entry_points().classes())
    if output is None:
        if check:
            raise click.UsageError("--check needs --output")
        click.echo(text, nl=False)
        return
    if check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            raise click.ClickException(
                f"{output} is out of date: run `eventrules docs definitions -o {output}`"
            )
        click.echo(f"{output} is up to date")
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}")
