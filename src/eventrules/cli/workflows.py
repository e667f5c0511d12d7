"""``eventrules workflows``: statistics and manual runs of live workflows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from eventrules.errors import EventRulesError
from eventrules.models.event_files import parse_header_options
from eventrules.ops.runs import file_event, live_engine, manual_event, run_workflow_now
from eventrules.ops.stats import read_workflow_stats
from eventrules.settings import Settings

__all__ = ["workflows"]


@click.group()
def workflows() -> None:
    """Live workflows: statistics and manual runs."""


@workflows.command("stats")
@click.option("--json", "as_json", is_flag=True)
def stats_command(as_json: bool) -> None:
    """Run count, last run, success/failure counts and average duration per workflow.

    Read from the compacted workflow-stats topic: they survive worker restarts."""
    settings = Settings()
    try:
        table = read_workflow_stats(settings)
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(orjson.dumps(table, option=orjson.OPT_INDENT_2).decode())
        return
    view = Table(
        "workflow",
        "runs",
        "success",
        "failed",
        "partial",
        "success rate",
        "avg ms",
        "last run",
        "last status",
    )
    for workflow_id, stats in sorted(table.items()):
        runs = int(stats.get("run_count", 0))
        rate = f"{100 * int(stats.get('success_count', 0)) / runs:.1f}%" if runs else "-"
        view.add_row(
            workflow_id,
            str(runs),
            str(stats.get("success_count", 0)),
            str(stats.get("failure_count", 0)),
            str(stats.get("partial_count", 0)),
            rate,
            f"{stats.get('average_duration_ms', 0):.1f}",
            str(stats.get("last_run", "")),
            str(stats.get("last_status", "")),
        )
    Console(width=200).print(view)


def _data(data_json: str) -> dict[str, Any]:
    try:
        data: Any = orjson.loads(data_json)
    except orjson.JSONDecodeError as exc:
        raise click.ClickException(f"--data is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise click.ClickException("--data must be a JSON object")
    return data


@workflows.command("run")
@click.argument("workflow_id")
@click.option("--data", "data_json", default=None, help="The event data (JSON object).")
@click.option("--subject", default=None, help="The entity id (CloudEvents subject).")
@click.option(
    "--event",
    "event_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The whole event instead of --data, as the topic carries it (the shapes of "
    "`eventrules test --event`); id and source may be left out.",
)
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="NAME=VALUE",
    help="A record header for --event (repeatable), e.g. ce_type=order.created.",
)
def run_command(
    workflow_id: str,
    data_json: str | None,
    subject: str | None,
    event_file: Path | None,
    headers: tuple[str, ...],
) -> None:
    """Execute WORKFLOW_ID for real with test data (the seed's test button).

    Conditions are not checked (the output says whether they would match); actions are
    published and webhooks called; the execution record (triggered_by: manual) is written to
    the executions topic and printed."""
    if event_file is not None and (data_json is not None or subject is not None):
        raise click.UsageError("--event carries the data and subject: drop --data/--subject")
    if headers and event_file is None:
        raise click.UsageError("--header goes with --event")
    settings = Settings()
    data = _data(data_json or "{}")
    try:
        engine = live_engine(settings, workflow_id)
        workflow = engine.get(workflow_id)
        if workflow is None:  # live_engine installed it; this guards the type, not a case
            raise click.ClickException(f"no live workflow {workflow_id!r}")
        if event_file is None:
            event = manual_event(workflow, data, subject)
        else:
            pairs = parse_header_options(headers)
            event = file_event(settings, workflow, event_file.read_bytes(), pairs)
        trace = engine.trace(workflow_id, event)
        record = run_workflow_now(settings, engine, workflow, event, "manual")
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    output = record.model_dump(mode="json")
    output["conditions_would_match"] = trace.fired
    click.echo(orjson.dumps(output, option=orjson.OPT_INDENT_2).decode())
    if record.status != "success":
        raise SystemExit(1)
