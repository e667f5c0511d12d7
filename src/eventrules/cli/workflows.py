"""``eventrules workflows``: statistics and manual runs of live workflows."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import click
import httpx
import orjson
from confluent_kafka import Producer
from rich.console import Console
from rich.table import Table

from eventrules.actions.webhook import WebhookExecutor
from eventrules.errors import DefinitionError, EventRulesError
from eventrules.metrics import Metrics
from eventrules.models.events import Event
from eventrules.models.executions import ExecutionRecord, TriggeredBy
from eventrules.models.workflows import Workflow, parse_workflow
from eventrules.ops.config import read_live_definitions
from eventrules.runtime.runner import WorkflowRunner
from eventrules.runtime.stats import read_stats
from eventrules.runtime.stream import KafkaSender
from eventrules.settings import Settings, TopicNames
from eventrules.workflows.catalog import TriggerCatalog
from eventrules.workflows.engine import Engine
from eventrules.workflows.plan import PlannedWorkflow


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
        table = read_stats(settings.kafka_client_config(), settings.topic_prefix + "workflow-stats")
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


async def run_manually(
    settings: Settings, planned: PlannedWorkflow, event: Event, triggered_by: TriggeredBy
) -> ExecutionRecord:
    """Execute one planned workflow for real (actions published, webhooks called) and record
    the execution like the worker does."""
    producer = Producer({**settings.kafka_client_config(), "enable.idempotence": True})
    sender = KafkaSender(producer)
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
        webhooks = WebhookExecutor(
            client,
            secrets={k: v.get_secret_value() for k, v in settings.webhook_secrets.items()},
            allow_list=settings.webhook_allow_list,
        )
        runner = WorkflowRunner(
            Engine(TriggerCatalog(())),
            topics=TopicNames(settings.topic_prefix),
            sender=sender,
            metrics=Metrics.create(),
            webhooks=webhooks,
        )
        record = ExecutionRecord.model_validate(await runner.execute(planned, event, triggered_by))
    failures = await asyncio.to_thread(sender.flush, 30.0)
    if failures:
        raise click.ClickException(f"publishing the run failed: {failures}")
    return record


def run_workflow_now(
    settings: Settings, engine: Engine, workflow: Workflow, event: Event, triggered_by: TriggeredBy
) -> ExecutionRecord:
    """Render ``workflow``'s actions for ``event`` and execute them now, whatever its
    conditions say (manual runs and replays decide that themselves)."""
    planned = PlannedWorkflow(
        workflow.id,
        workflow.name,
        workflow.version,
        workflow.priority,
        engine.render_actions(workflow.id, event),
    )
    return asyncio.run(run_manually(settings, planned, event, triggered_by))


def load_live_engine(settings: Settings, workflow_id: str) -> Engine:
    """An engine holding the live version of one workflow, read from the config topic."""
    live = read_live_definitions(settings.kafka_client_config(), settings.topic_prefix + "config")
    item = live.get(("workflow", workflow_id))
    if item is None:
        raise click.ClickException(f"no live workflow {workflow_id!r} on the config topic")
    engine = Engine(
        TriggerCatalog.load(*settings.extra_trigger_files), timezone=settings.zoneinfo()
    )
    try:
        engine.upsert(parse_workflow(item.value))
    except DefinitionError as exc:
        raise click.ClickException(f"the live definition is invalid: {exc}") from None
    return engine


@workflows.command("run")
@click.argument("workflow_id")
@click.option("--data", "data_json", default="{}", help="The event data (JSON object).")
@click.option("--subject", default=None, help="The entity id (CloudEvents subject).")
def run_command(workflow_id: str, data_json: str, subject: str | None) -> None:
    """Execute WORKFLOW_ID for real with test data (the seed's test button).

    Conditions are not checked (the output says whether they would match); actions are
    published and webhooks called; the execution record (triggered_by: manual) is written to
    the executions topic and printed."""
    settings = Settings()
    try:
        data: Any = orjson.loads(data_json)
    except orjson.JSONDecodeError as exc:
        raise click.ClickException(f"--data is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise click.ClickException("--data must be a JSON object")
    try:
        engine = load_live_engine(settings, workflow_id)
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    workflow = engine.get(workflow_id)
    if workflow is None:  # load_live_engine installed it; this guards the type, not a case
        raise click.ClickException(f"no live workflow {workflow_id!r}")
    event = Event(
        id=f"manual-{uuid.uuid4().hex}",
        type=workflow.trigger,
        source="eventrules/cli",
        time=datetime.now(UTC),
        subject=subject,
        data=data,
    )
    trace = engine.trace(workflow_id, event)
    record = run_workflow_now(settings, engine, workflow, event, "manual")
    output = record.model_dump(mode="json")
    output["conditions_would_match"] = trace.fired
    click.echo(orjson.dumps(output, option=orjson.OPT_INDENT_2).decode())
    if record.status != "success":
        raise SystemExit(1)
