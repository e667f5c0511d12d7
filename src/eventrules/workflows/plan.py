"""What the engine answers for one event: the ordered plan, and the trace of one workflow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventrules.conditions import ConditionTrace

__all__ = ["Plan", "PlannedWorkflow", "RenderedAction", "WorkflowTrace"]


@dataclass(frozen=True, slots=True)
class RenderedAction:
    """One action with its templates filled in, or ``error`` when rendering it failed.

    ``missing`` names template variables the event did not have (rendered as empty).
    """

    index: int
    type: str
    params: dict[str, Any]
    missing: tuple[str, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "type": self.type,
            "status": "ok" if self.ok else "failed",
            "params": self.params,
            "missing": list(self.missing),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class PlannedWorkflow:
    workflow_id: str
    name: str
    version: int
    priority: int
    actions: tuple[RenderedAction, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id,
            "name": self.name,
            "version": self.version,
            "priority": self.priority,
            "actions": [action.to_dict() for action in self.actions],
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """The matching enabled workflows, highest priority first (ties by id), actions rendered."""

    event_id: str
    event_type: str
    workflows: tuple[PlannedWorkflow, ...]

    def workflow_ids(self) -> list[str]:
        return [planned.workflow_id for planned in self.workflows]

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "workflows": [planned.to_dict() for planned in self.workflows],
        }


@dataclass(frozen=True, slots=True)
class WorkflowTrace:
    """Why a workflow did or did not fire for an event; ``reasons`` says it in sentences."""

    workflow_id: str
    workflow_version: int
    event_id: str
    event_type: str
    fired: bool
    enabled: bool
    trigger: str
    trigger_matched: bool
    condition: ConditionTrace | None
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id,
            "workflow_version": self.workflow_version,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "fired": self.fired,
            "enabled": self.enabled,
            "trigger": self.trigger,
            "trigger_matched": self.trigger_matched,
            "condition": self.condition.to_dict() if self.condition is not None else None,
            "reasons": list(self.reasons),
        }
