"""What the engine answers for one event: the ordered plan, and the trace of one workflow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventrules.conditions import ConditionTrace
from eventrules.workflows.memory import AbsenceWatch, Gate

__all__ = ["Answer", "Plan", "PlannedWorkflow", "RenderedAction", "WorkflowTrace"]

# RenderedAction, PlannedWorkflow and Plan are built for every matched event and never changed
# after: treat them as values. They are not frozen because a frozen dataclass sets each field
# through object.__setattr__, which made building them three times as costly (1.8 against
# 0.5 us for six fields), several microseconds of every run. Their __init__ is written out
# (init=False): the one the dataclass decorator generates is Python that mypyc cannot compile,
# an interpreted call per object (eventrules.native compiles this module).


@dataclass(slots=True, init=False)  # not frozen, __init__ written out: see the note above
class RenderedAction:
    """One action with its templates filled in, or ``error`` when rendering it failed.

    ``missing`` names template variables the event did not have (rendered as empty);
    ``delay`` (seconds) defers the action that long after the event.
    """

    index: int
    type: str
    params: dict[str, Any]
    missing: tuple[str, ...]
    error: str | None
    delay: float | None

    def __init__(  # noqa: PLR0917 - the dataclass's signature, which callers use positionally
        self,
        index: int,
        type: str,
        params: dict[str, Any],
        missing: tuple[str, ...] = (),
        error: str | None = None,
        delay: float | None = None,
    ) -> None:
        self.index = index
        self.type = type
        self.params = params
        self.missing = missing
        self.error = error
        self.delay = delay

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        rendered = {
            "index": self.index,
            "type": self.type,
            "status": "ok" if self.ok else "failed",
            "params": self.params,
            "missing": list(self.missing),
            "error": self.error,
        }
        if self.delay is not None:
            rendered["delay_seconds"] = self.delay
        return rendered

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RenderedAction:
        delay = raw.get("delay_seconds")
        return cls(
            int(raw["index"]),
            str(raw["type"]),
            dict(raw["params"]),
            tuple(raw.get("missing") or ()),
            raw.get("error"),
            float(delay) if delay is not None else None,
        )


@dataclass(slots=True, init=False)  # not frozen, __init__ written out: see the note above
class PlannedWorkflow:
    """A matched workflow, its actions rendered; ``gates`` (throttle, dedupe) and ``absence``
    say that state decides whether, or when, it runs."""

    workflow_id: str
    name: str
    version: int
    priority: int
    actions: tuple[RenderedAction, ...]
    gates: tuple[Gate, ...]
    absence: AbsenceWatch | None
    # the values its conditions read from the event (an execution record's ``event_ref``)
    reads: dict[str, Any] | None

    def __init__(  # noqa: PLR0917 - the dataclass's signature, which callers use positionally
        self,
        workflow_id: str,
        name: str,
        version: int,
        priority: int,
        actions: tuple[RenderedAction, ...],
        gates: tuple[Gate, ...] = (),
        absence: AbsenceWatch | None = None,
        reads: dict[str, Any] | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        self.name = name
        self.version = version
        self.priority = priority
        self.actions = actions
        self.gates = gates
        self.absence = absence
        self.reads = reads

    @property
    def stateful(self) -> bool:
        return bool(self.gates) or self.absence is not None

    def to_dict(self) -> dict[str, Any]:
        planned: dict[str, Any] = {
            "workflow_id": self.workflow_id,
            "name": self.name,
            "version": self.version,
            "priority": self.priority,
            "actions": [action.to_dict() for action in self.actions],
        }
        if self.gates:
            planned["gates"] = [gate.to_dict() for gate in self.gates]
        if self.absence is not None:
            planned["absence"] = self.absence.to_dict()
        if self.reads:
            planned["reads"] = self.reads
        return planned

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PlannedWorkflow:
        absence = raw.get("absence")
        return cls(
            str(raw["workflow_id"]),
            str(raw["name"]),
            int(raw["version"]),
            int(raw["priority"]),
            tuple(RenderedAction.from_dict(action) for action in raw["actions"]),
            tuple(Gate.from_dict(gate) for gate in raw.get("gates") or ()),
            AbsenceWatch.from_dict(absence) if absence else None,
            dict(raw["reads"]) if isinstance(raw.get("reads"), dict) else None,
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """The event is what ``workflow_id``'s absence watch on ``watch.match`` waits for."""

    workflow_id: str
    watch: AbsenceWatch


@dataclass(slots=True, init=False)  # not frozen, __init__ written out: see the note above
class Plan:
    """The matching enabled workflows, highest priority first (ties by id), actions rendered."""

    event_id: str
    event_type: str
    workflows: tuple[PlannedWorkflow, ...]
    answers: tuple[Answer, ...]

    def __init__(
        self,
        event_id: str,
        event_type: str,
        workflows: tuple[PlannedWorkflow, ...],
        answers: tuple[Answer, ...] = (),
    ) -> None:
        self.event_id = event_id
        self.event_type = event_type
        self.workflows = workflows
        self.answers = answers

    def workflow_ids(self) -> list[str]:
        return [planned.workflow_id for planned in self.workflows]

    def to_dict(self) -> dict[str, Any]:
        plan: dict[str, Any] = {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "workflows": [planned.to_dict() for planned in self.workflows],
        }
        if self.answers:
            plan["answers"] = [
                {"workflow_id": answer.workflow_id, **answer.watch.to_dict()}
                for answer in self.answers
            ]
        return plan


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
    # what state would decide for a run: throttle/dedupe keys, the absence watch, delays
    memory: tuple[str, ...] = ()

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
            "memory": list(self.memory),
        }
