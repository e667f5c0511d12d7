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
_WEBHOOK: Final = "call_webhook"
# The default clock: called per run, a partial is one Python frame less than a lambda.
_utc_now = functools.partial(datetime.now, UTC)


# Names from other modules bound here once: compiled code looks a module's attribute up on
# every use (a dozen lookups per event), a name of this module's is a cheaper read.
_JSON_OPTIONS: Final = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
_dumps = orjson.dumps


def _milliseconds(seconds: float) -> float:
    """``seconds`` (not negative) in milliseconds to the microsecond: ``round(ms, 3)`` without
    its cost (rounding to digits goes through a decimal string, twice per run)."""
    return int(seconds * 1_000_000 + 0.5) / 1000


def _json(value: object) -> bytes:
    try:
        return _dumps(value, option=_JSON_OPTIONS)
    except TypeError as exc:  # orjson.JSONEncodeError: read, but cannot be written back
        raise PoisonEventError("unserialisable", f"cannot be written as JSON: {exc}") from None


class _Pending:
    """What :meth:`WorkflowRunner.handle_now` leaves to the event loop: a dead letter
    (``refusal``: reason and detail), or an event's plan that waits on something."""

    def __init__(
        self,
        record: Record,
        event: Event | None,
        plan: Plan | None,
        refusal: tuple[str, str] | None,
    ) -> None:
        self.record = record
        self.event = event
        self.plan = plan
        self.refusal = refusal


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
        # the synchronous send handle_now runs plans through (a stream's KafkaSender); without
        # one (the CLI's, tests' and the traced runner's senders) every run is awaited
        self._send_now: Callable[[str, bytes | None, bytes | None], None] | None = getattr(
            sender, "send_now", None
        )

    def begin_batch(self) -> None:
        """A new batch: its webhooks get a fresh inline budget."""
        self._inline_spent = 0.0

    async def handle(self, record: Record) -> list[dict[str, Any]]:
        """Process one consumed record; poison goes to the dead-letter topic. Never raises for
        bad input: the agent must go on with the next event."""
        begun = self._begin(record)
        if isinstance(begun, _Pending):
            return await self._finish(begun)
        return begun

    def handle_now(self, record: Record) -> Awaitable[list[dict[str, Any]]] | None:
        """:meth:`handle` without the event loop where nothing waits: None once the record is
        handled, or the awaitable that finishes it (a dead letter, a webhook, a delayed action,
        run state). The stream's per-record path: a coroutine per record, run and action cost
        a fifth of a run."""
        begun = self._begin(record)
        return self._finish(begun) if isinstance(begun, _Pending) else None

    def _begin(self, record: Record) -> list[dict[str, Any]] | _Pending:
        """Decode, admit and plan; run the plan when all of it can run at once (actions to
        topics, no run state) and a synchronous sender is at hand; else what is left to do."""
        try:
            event = decode_event(
                record.value,
                record.headers,
                timestamp_ms=record.timestamp_ms,
                max_bytes=self.max_event_bytes,
            )
        except PoisonEventError as exc:
            return _Pending(record, None, None, (exc.reason, exc.detail))
        refused = self.admit(record, event) if self.admit is not None else None
        if refused is not None:
            return _Pending(record, None, None, refused)
        event_type = declared_or_other(event.type, self.engine.catalog)
        self.metrics.count(self.metrics.events_consumed, record.topic, event_type)
        try:
            plan = self._plan(event)
        except Exception as exc:  # the engine is total; this is a last line of defence
            log.exception("engine failed on event %s", event.id, extra={"event_id": event.id})
            return _Pending(record, None, None, ("engine_error", repr(exc)))
        if not plan.workflows and not plan.answers:
            self.metrics.count(self.metrics.events_unmatched, record.topic)
            return []
        send_now = self._send_now
        if send_now is None or (plan.answers and self.state is not None):
            return _Pending(record, event, plan, None)
        for planned in plan.workflows:
            if not self._runs_now(planned):
                return _Pending(record, event, plan, None)
        source = (record.topic, record.partition, record.offset)
        return [self._execute_now(planned, event, source, send_now) for planned in plan.workflows]

    def _runs_now(self, planned: PlannedWorkflow) -> bool:
        """Whether a planned run needs nothing but topics: no run state, webhook or delay."""
        if planned.stateful and self.state is not None:
            return False
        for action in planned.actions:
            if action.error is None and (action.delay is not None or action.type == _WEBHOOK):
                return False
        return True

    async def _finish(self, pending: _Pending) -> list[dict[str, Any]]:
        """What :meth:`_begin` left: a dead letter, or a plan that waits on something."""
        record, event, plan = pending.record, pending.event, pending.plan
        if pending.refusal is not None or event is None or plan is None:
            reason, detail = pending.refusal or ("engine_error", "no plan")
            await self.dead_letter(record, reason, detail)
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
        if run_id is None:
            run_id = execution_id(event.source, event.id, planned.workflow_id, planned.version)
        results = [
            await self._run_action(action, planned, event, run_id, executed_at)
            for action in planned.actions
        ]
        record = self._record(
            planned,
            event,
            triggered_by,
            results,
            record_id=record_id or run_id,
            times=(started, executed_at),
        )
        record = self._with_source(record, planned, event, source)
        await self._write_record(planned.workflow_id, record)
        self.metrics.ran(planned.workflow_id, record["status"], record["duration_ms"] / 1000)
        return record

    def _execute_now(
        self,
        planned: PlannedWorkflow,
        event: Event,
        source: tuple[str, int, int],
        send_now: Callable[[str, bytes | None, bytes | None], None],
    ) -> dict[str, Any]:
        """:meth:`execute` of an event's run whose actions all go to topics, without awaiting."""
        started = perf_counter()
        executed_at = self.clock()
        run_id = execution_id(event.source, event.id, planned.workflow_id, planned.version)
        results = [
            self._act_now(action, planned, event, (run_id, executed_at), send_now)
            for action in planned.actions
        ]
        record = self._record(
            planned, event, "event", results, record_id=run_id, times=(started, executed_at)
        )
        record = self._with_source(record, planned, event, source)
        send_now(self._executions_topic, planned.workflow_id.encode(), _json(record))
        self.metrics.ran(planned.workflow_id, record["status"], record["duration_ms"] / 1000)
        return record

    @staticmethod
    def _record(
        planned: PlannedWorkflow,
        event: Event,
        triggered_by: TriggeredBy,
        results: list[dict[str, Any]],
        *,
        record_id: str,
        times: tuple[float, datetime],
    ) -> dict[str, Any]:
        """The execution record of a run whose actions gave ``results``; ``times`` is when it
        started (``perf_counter``) and its ``executed_at``."""
        started, executed_at = times
        # read once: each goes into the log line and the record
        event_id, event_type = event.id, event.type
        logs = [
            f"{triggered_by} run of {planned.workflow_id} v{planned.version}"
            f" for {event_type} {event_id}"
        ]
        actions = planned.actions
        for index in range(len(results)):  # one result per action, in order
            action, result = actions[index], results[index]
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
        return {
            "execution_id": record_id,
            "workflow_id": planned.workflow_id,
            "workflow_name": planned.name,
            "workflow_version": planned.version,
            "trigger_event_type": event_type,
            "trigger_event_id": event_id,
            "trigger_event_source": event.source,
            "subject": event.subject,
            "triggered_by": triggered_by,
            "status": status,
            "actions": results,
            "logs": logs,
            "error": "; ".join(failures) or None,
            "executed_at": executed_at,
            "duration_ms": _milliseconds(perf_counter() - started),
        }

    def _with_source(
        self,
        record: dict[str, Any],
        planned: PlannedWorkflow,
        event: Event,
        source: tuple[str, int, int] | None,
    ) -> dict[str, Any]:
        """The record with the event: referenced where it was read, copied where it was not
        read from a topic (timers, manual runs) or ``copy_event`` asks for the copy."""
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
            elif action.type == _WEBHOOK:
                attempts, error, retrying = await self._call_webhook(
                    action, planned, event, run_id, this_id
                )
            else:
                topic = self._action_topic(action.type)
                message = self._message(action, planned, event, (run_id, this_id), now)
                await self.sender.send(topic, this_id.encode(), message)
        except Exception as exc:  # one failing action must not stop the others
            error = self._action_failed(exc, action, planned, event, run_id)
        return self._result(
            action, this_id, started, (error, retrying), attempts=attempts, topic=topic
        )

    def _act_now(
        self,
        action: RenderedAction,
        planned: PlannedWorkflow,
        event: Event,
        ids: tuple[str, datetime],
        send_now: Callable[[str, bytes | None, bytes | None], None],
    ) -> dict[str, Any]:
        """:meth:`_run_action` of an action to a topic (or failed to render), not awaiting."""
        run_id, now = ids
        this_id = action_id(run_id, action.index)
        started = perf_counter()
        topic: str | None = None
        attempts = 1
        error: str | None = action.error
        try:
            if error is not None:
                attempts = 0
            else:
                topic = self._action_topic(action.type)
                message = self._message(action, planned, event, (run_id, this_id), now)
                send_now(topic, this_id.encode(), message)
        except Exception as exc:  # one failing action must not stop the others
            error = self._action_failed(exc, action, planned, event, run_id)
        return self._result(
            action, this_id, started, (error, False), attempts=attempts, topic=topic
        )

    @staticmethod
    def _message(
        action: RenderedAction,
        planned: PlannedWorkflow,
        event: Event,
        ids: tuple[str, str],
        now: datetime,
    ) -> bytes:
        """The action message: the ActionMessage fields as a dict (the model documents and
        tests the shape; building and dumping it per action would double the cost of a run)."""
        run_id, this_id = ids
        return _json(
            {
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
        )

    @staticmethod
    def _action_failed(
        exc: Exception, action: RenderedAction, planned: PlannedWorkflow, event: Event, run_id: str
    ) -> str:
        """Log an action that raised; its error as the record says it."""
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
        return f"{type(exc).__name__}: {exc}"

    def _result(
        self,
        action: RenderedAction,
        this_id: str,
        started: float,
        outcome: tuple[str | None, bool],
        *,
        attempts: int,
        topic: str | None,
    ) -> dict[str, Any]:
        """The ActionResult fields (see :meth:`execute` on why a dict), counted in the metrics;
        ``outcome`` is the action's error and whether it is retrying."""
        error, retrying = outcome
        seconds = perf_counter() - started
        status: Literal["success", "failed", "retrying"] = (
            "success" if error is None else "retrying" if retrying else "failed"
        )
        self.metrics.acted(action.type, status, seconds)
        return {
            "action_id": this_id,
            "index": action.index,
            "type": action.type,
            "status": status,
            "error": error,
            "duration_ms": _milliseconds(seconds),
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
