"""Runs workflows for events: decode, plan, execute each action in isolation, record the run.

Transport-agnostic: outputs go through a :class:`Sender` (the stream's producer in the worker,
a plain producer for manual runs from the CLI), so the same code serves both.

Webhooks with a retry queue (the worker): one attempt inline, bounded by what is left of the
batch's inline budget; a retryable failure goes to the first retry tier and the action is
``retrying`` in the execution record (:mod:`eventrules.runtime.retries`). Once a batch has
spent its budget, its remaining webhooks go to the retry tier without an inline attempt, so a
receiver that hangs costs the stream at most the budget per batch. Without a queue (manual
runs), the executor retries inline as before.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from time import perf_counter
from typing import Any, Final, Literal

import orjson
from mypy_extensions import mypyc_attr

from eventrules.actions.webhook import WebhookExecutor
from eventrules.errors import PoisonEventError
from eventrules.kafka.records import Record
from eventrules.metrics import Metrics, declared_or_other
from eventrules.models.cloudevents import DEFAULT_MAX_EVENT_BYTES, decode_event
from eventrules.models.events import Event
from eventrules.models.executions import (
    TriggeredBy,
    action_id,
    execution_id,
    execution_status,
)
from eventrules.runtime.deadletters import DeadLetterWriter, Sender
from eventrules.runtime.retries import RetryQueue, webhook_request
from eventrules.runtime.state.router import StateRouter
from eventrules.settings import TopicNames
from eventrules.workflows.engine import Engine
from eventrules.workflows.plan import Plan, PlannedWorkflow, RenderedAction

__all__ = ["ACTION_TOPICS", "WorkflowRunner"]

log = logging.getLogger(__name__)

# Action type -> the logical name of its downstream topic (see topics/actions.*.yaml).
ACTION_TOPICS: dict[str, str] = {
    "send_email": "actions.email",
    "send_sms": "actions.sms",
    "send_notification": "actions.notifications",
    "create_task": "actions.tasks",
    "update_field": "actions.entity-commands",
    "add_tag": "actions.entity-commands",
    "suspend_user": "actions.entity-commands",
}
# Plugin action types without a topic of their own are entity commands for their service.
_DEFAULT_ACTION_TOPIC = "actions.entity-commands"
# The default clock: called per run, a partial is one Python frame less than a lambda.
_utc_now = functools.partial(datetime.now, UTC)


# Names from other modules bound here once: compiled code looks a module's attribute up on
# every use (a dozen lookups per event), a name of this module's is a cheaper read.
_JSON_OPTIONS: Final = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
_dumps = orjson.dumps


def _json(value: object) -> bytes:
    try:
        return _dumps(value, option=_JSON_OPTIONS)
    except TypeError as exc:  # orjson.JSONEncodeError: read, but cannot be written back
        raise PoisonEventError("unserialisable", f"cannot be written as JSON: {exc}") from None


# compiled by mypyc (eventrules.native); the traced runner and tests extend it from Python
@mypyc_attr(allow_interpreted_subclasses=True)
class WorkflowRunner:
    def __init__(
        self,
        engine: Engine,
        *,
        topics: TopicNames,
        sender: Sender,
        metrics: Metrics,
        webhooks: WebhookExecutor | None = None,
        dead_letters: DeadLetterWriter | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        admit: Callable[[Record, Event], tuple[str, str] | None] | None = None,
        clock: Callable[[], datetime] = _utc_now,
        retries: RetryQueue | None = None,
        inline_budget_seconds: float = 5.0,
        state: StateRouter | None = None,
        copy_event: bool = False,
    ) -> None:
        self.engine = engine
        self.topics = topics
        self.sender = sender
        self.metrics = metrics
        self.webhooks = webhooks
        # a callable, not the writer's type: the traced runner wraps it in a span
        self.dead_letter: Callable[[Record, str, str], Awaitable[None]] = (
            dead_letters or DeadLetterWriter(topics.dlq, sender, metrics)
        )
        self.max_event_bytes = max_event_bytes
        self.admit = admit  # topic bindings and tick signatures (runtime/admission.py)
        self.clock = clock
        self.retries = retries
        self.inline_budget_seconds = inline_budget_seconds
        self._inline_spent = 0.0
        # where throttled, deduplicated and absence workflows and delayed actions go
        self.state = state
        # execution records copy the whole event (EVENTRULES_EXECUTION_EVENT=full) instead of
        # referencing where it was read
        self.copy_event = copy_event
        # real topic names, resolved once: per action type, and the executions topic
        self._action_topics: dict[str, str] = {}
        self._executions_topic = topics.executions

    def begin_batch(self) -> None:
        """A new batch: its webhooks get a fresh inline budget."""
        self._inline_spent = 0.0

    async def handle(self, record: Record) -> list[dict[str, Any]]:
        """Process one consumed record; poison goes to the dead-letter topic. Never raises for
        bad input: the agent must go on with the next event."""
        try:
            event = decode_event(
                record.value,
                record.headers,
                timestamp_ms=record.timestamp_ms,
                max_bytes=self.max_event_bytes,
            )
        except PoisonEventError as exc:
            await self.dead_letter(record, exc.reason, exc.detail)
            return []
        refused = self.admit(record, event) if self.admit is not None else None
        if refused is not None:
            await self.dead_letter(record, *refused)
            return []
        event_type = declared_or_other(event.type, self.engine.catalog)
        self.metrics.count(self.metrics.events_consumed, record.topic, event_type)
        try:
            plan = self._plan(event)
        except Exception as exc:  # the engine is total; this is a last line of defence
            log.exception("engine failed on event %s", event.id, extra={"event_id": event.id})
            await self.dead_letter(record, "engine_error", repr(exc))
            return []
        if not plan.workflows and not plan.answers:
            self.metrics.count(self.metrics.events_unmatched, record.topic)
            return []
        records = []
        source = (record.topic, record.partition, record.offset)
        for planned in plan.workflows:
            if planned.stateful and self.state is not None:
                await self._route(self.state, planned, event)
            else:
                records.append(await self.execute(planned, event, "event", source=source))
        if plan.answers and self.state is not None:
            for answer in plan.answers:
                await self.state.answer(answer.workflow_id, answer.watch, event)
        return records

    @staticmethod
    async def _route(state: StateRouter, planned: PlannedWorkflow, event: Event) -> None:
        """Hand a workflow whose run state decides to the state stream (runtime/state)."""
        if planned.absence is not None:
            await state.watch(planned, event)
        else:
            await state.gate(planned, event)

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
        """Run every action of one planned workflow (each isolated) and write its record.

        ``run_id`` (default: from the event and workflow) names the run the action ids derive
        from; ``record_id`` (default: ``run_id``) the execution record, which differs for a
        delayed action run later on its own. ``source`` (topic, partition, offset) is where the
        event was read: the record references it there instead of copying the event (unless
        ``copy_event``); without one (timers, manual runs) the record carries the event.

        Returns the record as written: the :class:`ExecutionRecord` fields, as a dict (built and
        serialised per event, a model instance cost more than the rest of the run)."""
        started = perf_counter()
        executed_at = self.clock()
        # read once: each goes into the log line and the record
        event_id, event_type, event_source = event.id, event.type, event.source
        if run_id is None:
            run_id = execution_id(event_source, event_id, planned.workflow_id, planned.version)
        results: list[dict[str, Any]] = []
        logs = [
            f"{triggered_by} run of {planned.workflow_id} v{planned.version}"
            f" for {event_type} {event_id}"
        ]
        for action in planned.actions:
            result = await self._run_action(action, planned, event, run_id, executed_at)
            results.append(result)
            logs.append(
                f"action {action.index} {action.type}: {result['status']}"
                + (f" ({result['error']})" if result["error"] else "")
            )
            if action.missing:
                logs.append(
                    f"action {action.index}: missing template variables {list(action.missing)}"
                )
        if len(results) == 1:  # the usual run: execution_status of one action, spelled out
            only = results[0]["status"]
            status = (
                "success"
                if only in ("success", "delayed")
                else "retrying"
                if only == "retrying"
                else "failed"
            )
        else:
            status = execution_status([result["status"] for result in results])
        failures = [result["error"] for result in results if result["error"]]
        duration_ms = round((perf_counter() - started) * 1000, 3)
        record = {
            "execution_id": record_id or run_id,
            "workflow_id": planned.workflow_id,
            "workflow_name": planned.name,
            "workflow_version": planned.version,
            "trigger_event_type": event_type,
            "trigger_event_id": event_id,
            "trigger_event_source": event_source,
            "subject": event.subject,
            "triggered_by": triggered_by,
            "status": status,
            "actions": results,
            "logs": logs,
            "error": "; ".join(failures) or None,
            "executed_at": executed_at,
            "duration_ms": duration_ms,
        }
        if source is None or self.copy_event:
            record["event"] = {**event.envelope(), "data": event.data}
        if source is not None:
            topic, partition, offset = source
            record["event_ref"] = {
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "fields": planned.reads or {},
            }
        await self._write_record(planned.workflow_id, record)
        self.metrics.ran(planned.workflow_id, status, duration_ms / 1000)
        return record

    # Hooks of the traced runner (runtime/traced_runner.py), which wraps them in spans.

    def _plan(self, event: Event) -> Plan:
        return self.engine.plan(event)

    async def _write_record(self, workflow_id: str, record: dict[str, Any]) -> None:
        await self.sender.send(self._executions_topic, workflow_id.encode(), _json(record))

    def _action_topic(self, action_type: str) -> str:
        topic = self._action_topics.get(action_type)
        if topic is None:
            logical = ACTION_TOPICS.get(action_type, _DEFAULT_ACTION_TOPIC)
            topic = self._action_topics[action_type] = self.topics(logical)
        return topic

    async def _run_action(
        self,
        action: RenderedAction,
        planned: PlannedWorkflow,
        event: Event,
        run_id: str,
        now: datetime,
    ) -> dict[str, Any]:
        this_id = action_id(run_id, action.index)
        started = perf_counter()
        topic: str | None = None
        attempts = 1
        error: str | None = action.error
        retrying = False
        if action.delay is not None and error is None:
            return await self._delay(action, action.delay, planned, event, (run_id, this_id))
        try:
            if error is not None:
                attempts = 0
            elif action.type == "call_webhook":
                attempts, error, retrying = await self._call_webhook(
                    action, planned, event, run_id, this_id
                )
            else:
                topic = self._action_topic(action.type)
                # The ActionMessage fields, as a dict: the model documents and tests the shape,
                # building and dumping it per action would double the cost of a run.
                message = {
                    "action_id": this_id,
                    "action_type": action.type,
                    "workflow_id": planned.workflow_id,
                    "workflow_version": planned.version,
                    "execution_id": run_id,
                    "event_id": event.id,
                    "event_type": event.type,
                    "subject": event.subject,
                    "params": action.params,
                    "created_at": now,
                }
                await self.sender.send(topic, this_id.encode(), _json(message))
        except Exception as exc:  # one failing action must not stop the others
            log.exception(
                "action %s of %s failed",
                action.index,
                planned.workflow_id,
                extra={
                    "event_id": event.id,
                    "workflow_id": planned.workflow_id,
                    "execution_id": run_id,
                },
            )
            error = f"{type(exc).__name__}: {exc}"
        seconds = perf_counter() - started
        status: Literal["success", "failed", "retrying"] = (
            "success" if error is None else "retrying" if retrying else "failed"
        )
        self.metrics.acted(action.type, status, seconds)
        # The ActionResult fields (see execute on why a dict).
        return {
            "action_id": this_id,
            "index": action.index,
            "type": action.type,
            "status": status,
            "error": error,
            "duration_ms": round(seconds * 1000, 3),
            "attempts": attempts,
            "topic": topic,
        }

    async def _delay(
        self,
        action: RenderedAction,
        delay: float,
        planned: PlannedWorkflow,
        event: Event,
        ids: tuple[str, str],
    ) -> dict[str, Any]:
        """Arm the durable timer of a delayed action: due ``delay`` after the event's time."""
        run_id, this_id = ids
        due_at = event.time + timedelta(seconds=delay)
        status = "delayed"
        error: str | None = None
        if self.state is None:
            status, error = "failed", "delayed actions need a worker's state stream"
        else:
            try:
                await self.state.delay(
                    planned, action, event, run_id=run_id, action_id=this_id, due=due_at.timestamp()
                )
            except Exception as exc:  # one failing action must not stop the others
                log.exception("delaying action %s of %s failed", action.index, planned.workflow_id)
                status, error = "failed", f"{type(exc).__name__}: {exc}"
        self.metrics.count(self.metrics.actions, action.type, status)
        return {
            "action_id": this_id,
            "index": action.index,
            "type": action.type,
            "status": status,
            "error": error,
            "duration_ms": 0.0,
            "attempts": 0,
            "topic": None,
            "due_at": due_at,
        }

    async def _call_webhook(
        self,
        action: RenderedAction,
        planned: PlannedWorkflow,
        event: Event,
        run_id: str,
        this_id: str,
    ) -> tuple[int, str | None, bool]:
        """``(attempts, error, retrying)`` of a ``call_webhook`` action."""
        if self.webhooks is None:
            return 0, "webhooks are not configured on this worker", False
        request = webhook_request(action.params, this_id)
        if self.retries is None:
            result = await self.webhooks.call(request)
            self.metrics.webhook_retries.inc(max(0, result.attempts - 1))
            return result.attempts, None if result.ok else result.error, False
        left = self.inline_budget_seconds - self._inline_spent
        if left < min(1.0, request.timeout_seconds):
            # too little left for a fair attempt: the retry stream makes the first one
            error = "deferred: this batch spent its inline webhook budget"
            await self._defer(self._envelope(action, planned, event, run_id, this_id), 0, error)
            return 0, error, True
        started = perf_counter()
        result = await self.webhooks.call(
            webhook_request(
                action.params,
                this_id,
                max_attempts=1,
                timeout_seconds=min(request.timeout_seconds, left),
            )
        )
        self._inline_spent += perf_counter() - started
        if result.ok:
            return result.attempts, None, False
        if result.retryable and result.attempts < request.max_attempts:
            envelope = self._envelope(action, planned, event, run_id, this_id)
            await self._defer(envelope, result.attempts, result.error)
            return result.attempts, f"{result.error}; retrying", True
        return result.attempts, result.error, False

    @staticmethod
    def _envelope(
        action: RenderedAction, planned: PlannedWorkflow, event: Event, run_id: str, this_id: str
    ) -> dict[str, Any]:
        params = action.params
        return {
            "action_id": this_id,
            "execution_id": run_id,
            "workflow_id": planned.workflow_id,
            "workflow_version": planned.version,
            "action_type": action.type,
            "event_id": event.id,
            "event_type": event.type,
            "request": {
                name: params[name]
                for name in ("url", "method", "headers", "body", "timeout_seconds", "secret")
                if name in params
            },
            "max_attempts": int(params.get("max_attempts", 3)),
        }

    async def _defer(self, envelope: dict[str, Any], attempts: int, error: str | None) -> None:
        if self.retries is not None:
            await self.retries.defer({**envelope, "attempts": attempts, "last_error": error})
            self.metrics.webhook_retries.inc()
