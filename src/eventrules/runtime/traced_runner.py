"""The workflow runner with OpenTelemetry spans, used instead of the plain one when tracing is
on (so the plain runner pays nothing for it).

The span tree of one event::

    process <topic>             CONSUMER; child of (and linked to) the producer's traceparent
    ├── match                   the engine's plan: how many workflows matched
    └── workflow <id>           one per matched workflow; its execution id and status
        └── action <type>       one per action; its action id and status
            └── POST            one per webhook attempt (actions/webhook.py)

What the runner produces carries the ``traceparent`` of the span it was produced in, as a
Kafka header: action messages (their action span), execution records (their workflow span,
also as the record's ``traceparent`` field). Webhook requests carry their attempt span's.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, Tracer

from eventrules.kafka.records import Headers, Record
from eventrules.models.events import Event
from eventrules.models.executions import TriggeredBy, action_id
from eventrules.runtime.deadletters import Sender
from eventrules.runtime.runner import WorkflowRunner
from eventrules.tracing import context_from_headers, kafka_trace_headers, trace_headers, traceparent
from eventrules.workflows.plan import Plan, PlannedWorkflow, RenderedAction

__all__ = ["TracedSender", "TracedWorkflowRunner"]


class TracedSender:
    """Adds the current span's ``traceparent`` to the headers of every record sent."""

    def __init__(self, inner: Sender) -> None:
        self.inner = inner

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> None:
        traced = kafka_trace_headers()
        await self.inner.send(topic, key, value, [*(headers or ()), *traced] or None)


def _event_attributes(event: Event) -> dict[str, str]:
    attributes = {
        "cloudevents.event_id": event.id,
        "cloudevents.event_type": event.type,
        "cloudevents.event_source": event.source,
    }
    if event.subject is not None:
        attributes["cloudevents.event_subject"] = event.subject
    return attributes


class TracedWorkflowRunner(WorkflowRunner):
    """:class:`WorkflowRunner` with a span per event, match, workflow run and action."""

    def __init__(self, *args: Any, tracer: Tracer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tracer = tracer
        self.sender = TracedSender(self.sender)
        # every run awaited, through the traced sender and methods: spans and traceparents
        self._send_now = None
        plain_dead_letter = self.dead_letter

        async def dead_letter(record: Record, reason: str, detail: str) -> None:
            span = trace.get_current_span()
            span.set_attribute("eventrules.dead_letter.reason", reason)
            span.set_status(Status(StatusCode.ERROR, f"dead-lettered: {reason}"))
            await plain_dead_letter(record, reason, detail)

        self.dead_letter = dead_letter

    async def handle(self, record: Record) -> list[dict[str, Any]]:
        parent = context_from_headers(record.headers)
        links = []
        if parent is not None:
            links.append(Link(trace.get_current_span(parent).get_span_context()))
        with self.tracer.start_as_current_span(
            f"process {record.topic}",
            context=parent,
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": record.topic,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
            },
        ):
            return await super().handle(record)

    def handle_now(self, record: Record) -> Awaitable[list[dict[str, Any]]]:
        """Always the awaited :meth:`handle`: its span is the event's."""
        return self.handle(record)

    def _plan(self, event: Event) -> Plan:
        trace.get_current_span().set_attributes(_event_attributes(event))
        with self.tracer.start_as_current_span("match") as span:
            plan = super()._plan(event)
            span.set_attribute("eventrules.workflows_matched", len(plan.workflows))
            return plan

    async def execute(
        self,
        planned: PlannedWorkflow,
        event: Event,
        triggered_by: TriggeredBy,
        *,
        run_id: str | None = None,
        record_id: str | None = None,
        source: tuple[str, int, int] | None = None,
    ) -> dict[str, Any]:
        with self.tracer.start_as_current_span(
            f"workflow {planned.workflow_id}",
            attributes={
                "eventrules.workflow_id": planned.workflow_id,
                "eventrules.workflow_version": planned.version,
                "eventrules.triggered_by": triggered_by,
                "cloudevents.event_id": event.id,
            },
        ) as span:
            record = await super().execute(
                planned, event, triggered_by, run_id=run_id, record_id=record_id, source=source
            )
            span.set_attribute("eventrules.execution_id", record["execution_id"])
            span.set_attribute("eventrules.status", record["status"])
            if record["status"] != "success":
                span.set_status(Status(StatusCode.ERROR, record["error"] or record["status"]))
            return record

    async def _write_record(self, workflow_id: str, record: dict[str, Any]) -> None:
        record["traceparent"] = traceparent(trace_headers())
        await super()._write_record(workflow_id, record)

    async def _run_action(
        self,
        action: RenderedAction,
        planned: PlannedWorkflow,
        event: Event,
        run_id: str,
        now: datetime,
    ) -> dict[str, Any]:
        with self.tracer.start_as_current_span(
            f"action {action.type}",
            attributes={
                "eventrules.action_type": action.type,
                "eventrules.action_index": action.index,
                "eventrules.action_id": action_id(run_id, action.index),
            },
        ) as span:
            result = await super()._run_action(action, planned, event, run_id, now)
            span.set_attribute("eventrules.status", result["status"])
            if result["topic"] is not None:
                span.set_attribute("messaging.destination.name", result["topic"])
            if result["error"] is not None:
                span.set_status(Status(StatusCode.ERROR, result["error"]))
            return result
