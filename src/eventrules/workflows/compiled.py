"""A workflow compiled once per version: trigger checked, condition and templates compiled."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal

import orjson

from eventrules.conditions import (
    AllOf,
    AnyOf,
    Compare,
    CompiledCondition,
    ConditionNode,
    Not,
    compile_condition,
)
from eventrules.conditions.paths import Getter, compile_path
from eventrules.conditions.values import MISSING
from eventrules.errors import DefinitionError, DefinitionLimitError, TemplateError
from eventrules.models.workflows import Workflow
from eventrules.workflows.catalog import TriggerCatalog
from eventrules.workflows.memory import AbsenceWatch, Gate
from eventrules.workflows.plan import RenderedAction
from eventrules.workflows.templating import TemplatedParams, compile_params

# A state key longer than this (hostile or careless data) is stored as its digest.
MAX_STATE_KEY_CHARS: Final = 256


def state_key(text: str) -> str:
    """``text`` as a state key: itself, or its SHA-256 when it is too long to be a Kafka key."""
    if len(text) <= MAX_STATE_KEY_CHARS:
        return text
    return "sha256:" + hashlib.sha256(text.encode(errors="replace")).hexdigest()


def match_value(value: Any) -> str | None:
    """The key an absence watch is matched by: strings as they are, other values as JSON."""
    if value is MISSING or value is None:
        return None
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return state_key(text) if text else None


__all__ = [
    "CompiledAction",
    "CompiledWorkflow",
    "compile_actions",
    "compile_workflow",
    "fields_read",
]


@dataclass(frozen=True, slots=True)
class CompiledAction:
    index: int
    type: str
    params: TemplatedParams
    delay: float | None = None

    def render(self, context: Mapping[str, Any]) -> RenderedAction:
        """Never raises: a template failure comes back as a failed action carrying the error."""
        try:
            params, missing = self.params.render(context)
        except TemplateError as exc:
            return RenderedAction(self.index, self.type, {}, error=str(exc), delay=self.delay)
        return RenderedAction(self.index, self.type, params, tuple(missing), delay=self.delay)


@dataclass(frozen=True, slots=True)
class CompiledGate:
    """A throttle or dedupe with its key template compiled."""

    kind: Literal["throttle", "dedupe"]
    key: TemplatedParams
    limit: int
    window: float

    def render(self, context: Mapping[str, Any]) -> tuple[Gate, list[str]]:
        """The gate for one event, and the key's missing variables. An event without the key's
        fields (or whose key fails to render) shares the empty key."""
        try:
            rendered, missing = self.key.render(context)
        except TemplateError as exc:
            return Gate(self.kind, "", self.limit, self.window), [str(exc)]
        return Gate(self.kind, state_key(str(rendered["key"])), self.limit, self.window), missing


@dataclass(frozen=True, slots=True)
class CompiledAbsence:
    expect: str
    match_on: str
    getter: Getter
    within: float

    def watch(self, data: Mapping[str, Any]) -> AbsenceWatch | None:
        """The watch for an event's data; None when the data has no ``match_on`` value."""
        match = match_value(self.getter(data))
        if match is None:
            return None
        return AbsenceWatch(self.expect, self.match_on, match, self.within)


@dataclass(frozen=True, slots=True, eq=False)
class CompiledWorkflow:
    workflow: Workflow
    condition: CompiledCondition | None
    actions: tuple[CompiledAction, ...]
    gates: tuple[CompiledGate, ...] = ()
    absence: CompiledAbsence | None = None
    # whether a template of its actions or gates runs jinja (a render budget is needed)
    uses_jinja: bool = True
    # the field paths its conditions read, with their getters: an execution record that
    # references its event carries these values (what the decision rested on)
    reads: tuple[tuple[str, Getter], ...] = ()
    # whether a template of its actions or gates may read ``event`` (the envelope)
    reads_event: bool = True

    @property
    def order_key(self) -> tuple[int, str]:
        """Plan order: priority 10 first, then workflow id."""
        return (-self.workflow.priority, self.workflow.id)

    def matches(self, facts: Mapping[str, Any]) -> bool:
        return self.condition is None or self.condition.matches(facts)

    def render(self, context: Mapping[str, Any]) -> tuple[RenderedAction, ...]:
        return tuple([action.render(context) for action in self.actions])

    def read(self, facts: Mapping[str, Any]) -> dict[str, Any]:
        """The values its conditions read from ``facts`` (absent fields left out)."""
        return {path: value for path, get in self.reads if (value := get(facts)) is not MISSING}

    def render_gates(self, context: Mapping[str, Any]) -> tuple[tuple[Gate, ...], list[str]]:
        gates: list[Gate] = []
        missing: list[str] = []
        for compiled in self.gates:
            gate, absent = compiled.render(context)
            gates.append(gate)
            missing.extend(absent)
        return tuple(gates), missing


def _compile_gates(workflow: Workflow, problems: list[tuple[str, str]]) -> list[CompiledGate]:
    blocks: list[tuple[Literal["throttle", "dedupe"], str, int, timedelta]] = []
    if workflow.dedupe is not None:
        blocks.append(("dedupe", workflow.dedupe.key, 1, workflow.dedupe.within))
    if workflow.throttle is not None:
        throttle = workflow.throttle
        blocks.append(("throttle", throttle.key, throttle.limit, throttle.per))
    gates = []
    for kind, template, limit, window in blocks:
        try:
            key = compile_params({"key": template}, untemplated=frozenset(), path=kind)
        except DefinitionError as exc:
            problems.extend(exc.problems)
            continue
        gates.append(CompiledGate(kind, key, limit, window.total_seconds()))
    return gates


def compile_workflow(workflow: Workflow, catalog: TriggerCatalog) -> CompiledWorkflow:
    """Raises DefinitionError (UnknownTriggerError for the trigger) naming every field path."""
    catalog.require(workflow.trigger, definition_id=workflow.id)
    problems: list[tuple[str, str]] = []
    exceeded: list[DefinitionLimitError] = []
    actions = _compile_actions(workflow, problems, exceeded)
    gates = _compile_gates(workflow, problems)
    absence = None
    if workflow.absence is not None:
        expect = workflow.absence.expect
        if expect not in catalog:
            problems.append(("absence.expect", f"unknown trigger {expect!r}"))
        absence = CompiledAbsence(
            expect,
            workflow.absence.match_on,
            compile_path(workflow.absence.match_on),
            workflow.absence.within.total_seconds(),
        )
    _raise_problems(workflow, problems, exceeded)
    condition = compile_condition(workflow.conditions) if workflow.conditions is not None else None
    uses_jinja = any(action.params.uses_jinja for action in actions) or any(
        gate.key.uses_jinja for gate in gates
    )
    reads = (
        tuple((path, compile_path(path)) for path in fields_read(condition.tree))
        if condition is not None
        else ()
    )
    reads_event = any(action.params.reads_event for action in actions) or any(
        gate.key.reads_event for gate in gates
    )
    return CompiledWorkflow(
        workflow, condition, actions, tuple(gates), absence, uses_jinja, reads, reads_event
    )


def fields_read(node: ConditionNode) -> list[str]:
    """Every field path a condition tree reads, once each, in order of appearance."""
    found: dict[str, None] = {}
    pending = [node]
    while pending:  # iterative: a tree's depth is bounded, but recursion need not be trusted
        match pending.pop():
            case Compare(field):
                found.setdefault(field)
            case AllOf(children) | AnyOf(children):
                pending.extend(reversed(children))
            case Not(child):
                pending.append(child)
    return list(found)


def compile_actions(workflow: Workflow) -> tuple[CompiledAction, ...]:
    """The actions with their templates compiled, which checks them (syntax, the static check,
    the limits): what publishing a workflow must pass, as the workers will compile it too.

    Raises DefinitionError naming every failing parameter (DefinitionLimitError when one went
    past a limit)."""
    problems: list[tuple[str, str]] = []
    exceeded: list[DefinitionLimitError] = []
    actions = _compile_actions(workflow, problems, exceeded)
    _raise_problems(workflow, problems, exceeded)
    return actions


def _compile_actions(
    workflow: Workflow, problems: list[tuple[str, str]], exceeded: list[DefinitionLimitError]
) -> tuple[CompiledAction, ...]:
    actions = []
    for index, action in enumerate(workflow.actions):
        params = action.model_dump(mode="json", exclude={"type", "delay"})
        try:
            templated = compile_params(
                params, untemplated=type(action).untemplated, path=f"actions.{index}"
            )
        except DefinitionError as exc:
            problems.extend(exc.problems)
            if isinstance(exc, DefinitionLimitError):
                exceeded.append(exc)
            continue
        delay = action.delay.total_seconds() if action.delay is not None else None
        actions.append(CompiledAction(index, action.type, templated, delay))
    return tuple(actions)


def _raise_problems(
    workflow: Workflow, problems: list[tuple[str, str]], exceeded: list[DefinitionLimitError]
) -> None:
    label = f"invalid workflow {workflow.id!r}"
    if exceeded:
        raise DefinitionLimitError(
            label,
            limit=exceeded[0].limit,
            maximum=exceeded[0].maximum,
            definition_id=workflow.id,
            problems=problems,
        )
    if problems:
        raise DefinitionError(label, definition_id=workflow.id, problems=problems)
