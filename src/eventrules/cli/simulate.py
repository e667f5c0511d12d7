"""``eventrules simulate``: try a draft workflow on past events before publishing it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from eventrules.definitions.files import load_workflows
from eventrules.errors import DefinitionError
from eventrules.ops.simulate import Comparison, simulate_against_live
from eventrules.settings import Settings

__all__ = ["simulate_command"]


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time (e.g. 2026-11-01T00:00:00Z)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _show(console: Console, comparison: Comparison) -> None:
    draft, live = comparison.draft, comparison.live
    table = Table(title=f"{draft.workflow_id}: {comparison.events} event(s) read")
    for column in ("", "draft", "live"):
        table.add_column(column)
    table.add_row(
        "version", str(draft.version), str(live.version) if live else "[dim]none live[/dim]"
    )
    table.add_row("executions", str(len(draft.runs)), str(len(live.runs)) if live else "-")
    for decision in sorted(set(draft.decisions) | set(live.decisions if live else ())):
        table.add_row(
            decision,
            str(draft.decisions.get(decision, 0)),
            str(live.decisions.get(decision, 0)) if live else "-",
        )
    console.print(table)
    console.print(
        f"fired by both: {len(comparison.both)}   only by the draft: {len(comparison.only_draft)}"
        f"   only by the live version: {len(comparison.only_live)}"
    )
    for label, keys in (
        ("only the draft", comparison.only_draft),
        ("only live", comparison.only_live),
    ):
        if keys:
            sample = ", ".join(event_id for _, event_id in keys[:10])
            console.print(f"[dim]{label}, e.g.:[/dim] {escape(sample)}")
    for traced in draft.traces:
        console.print(f"[bold]{escape(traced['event_id'])}[/bold]: {escape(traced['outcome'])}")
        for reason in traced["trace"]["reasons"] + traced["trace"]["memory"]:
            console.print(f"   {escape(reason)}")


@click.command("simulate")
@click.argument("definition", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--from", "start", required=True, callback=_moment, help="Start of the range (ISO 8601)."
)
@click.option("--to", "end", callback=_moment, help="End of the range (default: now).")
@click.option("--id", "workflow_id", help="The definition to simulate when the file holds several.")
@click.option(
    "--topic",
    "topics",
    multiple=True,
    help="Read only this event topic (logical name, e.g. events.orders); default: all.",
)
@click.option("--sample", default=5, show_default=True, help="Traces to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def simulate_command(
    definition: Path,
    *,
    start: datetime,
    end: datetime | None,
    workflow_id: str | None,
    topics: tuple[str, ...],
    sample: int,
    as_json: bool,
) -> None:
    """Run the workflow in DEFINITION over the events of a time range, with no side effects:
    how many executions it would produce, sample traces, and how that differs from the live
    version (throttle, dedupe and absence included)."""
    try:
        workflows = load_workflows(definition)
    except DefinitionError as exc:
        raise click.ClickException(str(exc)) from None
    if workflow_id is not None:
        workflows = [workflow for workflow in workflows if workflow.id == workflow_id]
    if len(workflows) != 1:
        raise click.ClickException(
            f"{definition} holds {len(workflows)} matching workflow(s); name one with --id"
        )
    if end is not None and end <= start:
        raise click.ClickException("--to must be after --from")
    settings = Settings()
    comparison = simulate_against_live(
        settings,
        workflows[0],
        start=start,
        end=end,
        sample=sample,
        topics=[settings.topic(topic) for topic in topics] or None,
    )
    if as_json:
        click.echo(orjson.dumps(comparison.to_dict(), option=orjson.OPT_INDENT_2).decode())
        return
    _show(Console(soft_wrap=True, highlight=False), comparison)
