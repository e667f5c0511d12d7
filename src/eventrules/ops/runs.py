"""Running a workflow now, outside the event stream: manual runs (the seed's test button) and
replays of recorded executions. Actions are published and webhooks called through the same
runner and webhook executor a worker uses; the execution record is written like a worker's."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer

from eventrules.actions.webhook import WebhookExecutor
from eventrules.errors import DefinitionError, KafkaError, NotFoundError, PoisonEventError
from eventrules.kafka.clients import producer_config
from eventrules.kafka.sender import KafkaSender
from eventrules.metrics import Metrics
from eventrules.models.event_files import event_from_file
from eventrules.models.events import Event
from eventrules.models.executions import ExecutionRecord, TriggeredBy
from eventrules.models.workflows import Workflow, parse_workflow
from eventrules.ops.audit import version_in_audit
from eventrules.ops.config import definition_history, read_history, read_live
from eventrules.runtime.runners import new_runner, start_tracing_for
from eventrules.settings import Settings
from eventrules.workflows.catalog import TriggerCatalog
from eventrules.workflows.engine import Engine
from eventrules.workflows.plan import PlannedWorkflow

__all__ = [
    "file_event",
    "live_engine",
    "manual_event",
    "recorded_engine",
    "run_manually",
    "run_workflow_now",
]


def _engine_with(settings: Settings, value: dict[str, Any], what: str) -> Engine:
    engine = Engine(
        TriggerCatalog.load(*settings.extra_trigger_files), timezone=settings.zoneinfo()
    )
    try:
        engine.upsert(parse_workflow(value))
    except DefinitionError as exc:
        raise DefinitionError(f"the {what} definition is invalid: {exc}") from None
    return engine


def live_engine(settings: Settings, workflow_id: str) -> Engine:
    """An engine holding the live version of one workflow, read from the config topic."""
    item = read_live(settings).get(("workflow", workflow_id))
    if item is None:
        raise NotFoundError(f"no live workflow {workflow_id!r} on the config topic")
    return _engine_with(settings, item.value, "live")


def recorded_engine(settings: Settings, workflow_id: str, version: int) -> Engine:
    """An engine holding ``version`` of a workflow, from the audit trail (or, for versions
    published before it existed, from what the config topic still holds)."""
    try:
        value = version_in_audit(definition_history(settings, "workflow", workflow_id), version)
    except NotFoundError:
        history = read_history(
            settings.kafka_client_config(), settings.topic("config"), "workflow", workflow_id
        )
        recorded = next(
            (v.value for v in reversed(history) if v.value and v.value.get("version") == version),
            None,
        )
        if recorded is None:
            raise NotFoundError(
                f"neither the audit trail nor the config topic holds {workflow_id} v{version}"
                " (see `config history`)"
            ) from None
        value = recorded
    return _engine_with(settings, value, "recorded")


def manual_event(workflow: Workflow, data: dict[str, Any], subject: str | None) -> Event:
    """The event of a manual run: the workflow's trigger, with ``data``, from the CLI."""
    return Event(
        id=f"manual-{uuid.uuid4().hex}",
        type=workflow.trigger,
        source="eventrules/cli",
        time=datetime.now(UTC),
        subject=subject,
        data=data,
    )


def file_event(
    settings: Settings, workflow: Workflow, content: bytes, headers: list[tuple[str, str]]
) -> Event:
    """The event of a manual run given as a file, in any shape the worker accepts (see
    :mod:`eventrules.models.event_files`); ``id`` and ``source`` may be left out.

    Raises :class:`PoisonEventError` when the worker would refuse it, or when its type is not
    the workflow's trigger (the worker would never run the workflow for it)."""
    event, _ = event_from_file(
        content,
        headers,
        now=datetime.now(UTC),
        fill_defaults=True,
        fill_id=f"manual-{uuid.uuid4().hex}",
        max_bytes=settings.max_event_bytes,
    )
    if event.type != workflow.trigger:
        raise PoisonEventError(
            "wrong_type",
            f"the event's type {event.type!r} is not {workflow.id}'s trigger {workflow.trigger!r}",
        )
    return event


async def run_manually(
    settings: Settings, planned: PlannedWorkflow, event: Event, triggered_by: TriggeredBy
) -> ExecutionRecord:
    """Execute one planned workflow for real (actions published, webhooks called) and record
    the execution like the worker does."""
    sender = KafkaSender(Producer(producer_config(settings.kafka_client_config())))
    provider, tracer = start_tracing_for(settings)
    try:
        async with WebhookExecutor.new_client(settings.webhook_ca_location) as client:
            runner = new_runner(
                Engine(TriggerCatalog(())),
                tracer,
                topics=settings.topics,
                sender=sender,
                metrics=Metrics.create(),
                webhooks=WebhookExecutor.from_settings(settings, client, tracer=tracer),
            )
            executed = await runner.execute(planned, event, triggered_by)
            record = ExecutionRecord.model_validate(executed)
    finally:
        if provider is not None:
            await asyncio.to_thread(provider.shutdown)
    failures = await asyncio.to_thread(sender.flush, 30.0)
    if failures:
        raise KafkaError(f"publishing the run failed: {failures}")
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
