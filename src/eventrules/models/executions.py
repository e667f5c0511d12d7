"""Execution records and action messages: what a workflow run writes to Kafka.

Ids are deterministic so a run repeated after a crash (at-least-once delivery) produces records
and messages with the same ids, which downstream consumers use to drop duplicates.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# the ids are computed on the event path, compiled (eventrules.native): kept apart from the models
from eventrules.models.ids import action_id, execution_id

__all__ = [
    "ActionMessage",
    "ActionResult",
    "EventReference",
    "ExecutionRecord",
    "ExecutionStatus",
    "TriggeredBy",
    "action_id",
    "execution_id",
    "execution_status",
]

ExecutionStatus = Literal["success", "failed", "partial", "retrying"]
# timer: a run a state timer started (an absence that was not answered, a delayed action)
TriggeredBy = Literal["event", "manual", "replay", "schedule", "timer"]


class ActionResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action_id: str
    index: int = Field(ge=0)
    type: str
    # retrying: the first attempt failed and the action waits on a retry tier (see
    # runtime/retries.py); its outcome is an action result record. delayed: a durable timer
    # runs it at due_at, recorded then as an execution of its own (runtime/state)
    status: Literal["success", "failed", "skipped", "retrying", "delayed"]
    error: str | None = None
    duration_ms: float = Field(ge=0)
    attempts: int = Field(default=1, ge=0)
    topic: str | None = None
    due_at: AwareDatetime | None = None


def execution_status(action_statuses: list[str]) -> ExecutionStatus:
    """success when every action succeeded (a delayed one counts: its own run records how it
    went), retrying when none failed but some wait on a retry, failed when none succeeded or
    waits, partial in between."""
    succeeded = sum(1 for status in action_statuses if status in ("success", "delayed"))
    retrying = sum(1 for status in action_statuses if status == "retrying")
    if succeeded == len(action_statuses):
        return "success"
    if retrying and succeeded + retrying == len(action_statuses):
        return "retrying"
    return "failed" if succeeded == 0 and retrying == 0 else "partial"


class EventReference(BaseModel):
    """Where a run's event was read, and the fields its conditions read: what an execution
    record carries instead of a copy of the event (``EVENTRULES_EXECUTION_EVENT=reference``).
    `executions replay` reads the event back from there while retention keeps it."""

    model_config = ConfigDict(extra="forbid")

    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    # the values the workflow's conditions read (derived time facts included), by field path
    fields: dict[str, Any] = Field(default_factory=dict)


class ExecutionRecord(BaseModel):
    """One workflow run, as written to the executions topic (keyed by workflow id)."""

    model_config = ConfigDict(extra="forbid")

    execution_id: str
    workflow_id: str
    workflow_name: str
    workflow_version: int
    trigger_event_type: str
    trigger_event_id: str
    trigger_event_source: str
    subject: str | None = None
    triggered_by: TriggeredBy
    status: ExecutionStatus
    actions: list[ActionResult]
    logs: list[str] = Field(default_factory=list)
    error: str | None = None
    executed_at: AwareDatetime
    duration_ms: float = Field(ge=0)
    # The event as processed (EVENTRULES_EXECUTION_EVENT=full, or a run with no source record:
    # timers, manual runs), so `executions replay` can re-run it without the source topic.
    event: dict[str, Any] | None = None
    # Where the event was read (the default): replay fetches it from there.
    event_ref: EventReference | None = None
    # W3C traceparent of the run's span when the worker traces (EVENTRULES_OTEL_ENABLED).
    traceparent: str | None = None


class ActionMessage(BaseModel):
    """A rendered action for a downstream service (email, SMS, tasks, ...), keyed by action id."""

    model_config = ConfigDict(extra="forbid")

    action_id: str
    action_type: str
    workflow_id: str
    workflow_version: int
    execution_id: str
    event_id: str
    event_type: str
    subject: str | None = None
    params: dict[str, Any]
    created_at: datetime
