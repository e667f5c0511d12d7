"""The pure workflow engine: event + current definitions -> ordered plan, or a trace.

No I/O and no clock: time facts come from the event's own ``time``. The engine keeps one
compiled form per workflow id and a :class:`TriggerIndex` per trigger, rebuilt lazily on the
first event after a change, so workflows on other triggers cost an event nothing.

Replacing a definition (:meth:`Engine.upsert`):

* a higher ``version`` replaces the current one;
* the same version with identical content is a no-op (replaying a compacted topic);
* the same version with different content also replaces it: the definitions topic is ordered,
  so its latest record wins; versions only stop a definition going backwards;
* a lower version is ignored as stale.

The new definition is compiled before anything changes, so a bad one leaves the old in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, tzinfo
from typing import Any

from eventrules.conditions import Facts
from eventrules.definitions.records import UpsertOutcome
from eventrules.errors import NotFoundError
from eventrules.models.events import Event
from eventrules.models.workflows import Workflow
from eventrules.workflows.catalog import TriggerCatalog
from eventrules.workflows.compiled import CompiledWorkflow, compile_workflow
from eventrules.workflows.index import TriggerIndex
from eventrules.workflows.memory import human
from eventrules.workflows.plan import (
    Answer,
    Plan,
    PlannedWorkflow,
    RenderedAction,
    WorkflowTrace,
)
from eventrules.workflows.templating import render_budget

__all__ = ["Engine", "UpsertOutcome", "event_facts", "template_context"]


def event_facts(event: Event, timezone: tzinfo = UTC) -> Facts:
    """Facts for conditions: the event data plus time facts in ``timezone``."""
    return Facts(event.data, event.time, event.envelope, timezone)


def template_context(event: Event) -> dict[str, Any]:
    """Variables for action templates: the data's keys, and ``event`` unless the data has one."""
    return {"event": event.envelope(), **event.data}


class Engine:
    """Holds compiled workflows; single-threaded like the stream worker that calls it."""

    def __init__(self, catalog: TriggerCatalog | None = None, *, timezone: tzinfo = UTC) -> None:
        self.catalog = catalog if catalog is not None else TriggerCatalog.load()
        self.timezone = timezone
        self._compiled: dict[str, CompiledWorkflow] = {}
        self._by_trigger: dict[str, dict[str, CompiledWorkflow]] = {}
        self._indexes: dict[str, TriggerIndex] = {}
        # absence workflows by the event type they wait for
        self._expecting: dict[str, dict[str, CompiledWorkflow]] = {}

    def __len__(self) -> int:
        return len(self._compiled)

    def __contains__(self, workflow_id: object) -> bool:
        return workflow_id in self._compiled

    def get(self, workflow_id: str) -> Workflow | None:
        compiled = self._compiled.get(workflow_id)
        return compiled.workflow if compiled is not None else None

    def workflows(self) -> list[Workflow]:
        return [compiled.workflow for compiled in self._compiled.values()]

    def upsert(self, workflow: Workflow) -> UpsertOutcome:
        """Compile and install ``workflow``; raises DefinitionError and changes nothing if bad."""
        current = self._compiled.get(workflow.id)
        if current is not None:
            if workflow.version < current.workflow.version:
                return UpsertOutcome.STALE
            if workflow.version == current.workflow.version and workflow == current.workflow:
                return UpsertOutcome.UNCHANGED
        compiled = compile_workflow(workflow, self.catalog)
        if current is not None:
            self._discard(current)
        self._compiled[workflow.id] = compiled
        self._by_trigger.setdefault(workflow.trigger, {})[workflow.id] = compiled
        self._indexes.pop(workflow.trigger, None)
        if compiled.absence is not None:
            self._expecting.setdefault(compiled.absence.expect, {})[workflow.id] = compiled
        return UpsertOutcome.ADDED if current is None else UpsertOutcome.REPLACED

    def remove(self, workflow_id: str) -> bool:
        current = self._compiled.pop(workflow_id, None)
        if current is None:
            return False
        self._discard(current)
        return True

    def _discard(self, compiled: CompiledWorkflow) -> None:
        trigger = compiled.workflow.trigger
        self._by_trigger.get(trigger, {}).pop(compiled.workflow.id, None)
        self._indexes.pop(trigger, None)
        if compiled.absence is not None:
            self._expecting.get(compiled.absence.expect, {}).pop(compiled.workflow.id, None)

    def _index(self, trigger: str) -> TriggerIndex | None:
        index = self._indexes.get(trigger)
        if index is None:
            members = self._by_trigger.get(trigger)
            if not members:
                return None
            enabled = [c for c in members.values() if c.workflow.enabled]
            scheduled = trigger.startswith("scheduled.")
            index = self._indexes[trigger] = TriggerIndex(enabled, scheduled=scheduled)
        return index

    def facts(self, event: Event) -> Facts:
        return event_facts(event, self.timezone)

    def match(self, event: Event, facts: Mapping[str, Any] | None = None) -> list[CompiledWorkflow]:
        """The enabled workflows whose trigger and conditions match, in plan order."""
        trigger = event.type
        index = self._indexes.get(trigger)
        if index is None:
            index = self._index(trigger)
            if index is None:
                return []
        if facts is None:
            facts = Facts(event.data, event.time, event.envelope, self.timezone)
        # on a scheduled.* trigger the index also checks which ticks a workflow runs on
        return index.match(facts)

    def plan(self, event: Event) -> Plan:
        """The ordered plan; an action whose template fails is marked failed, others still run.

        A workflow with a throttle or dedupe carries its rendered gates; an absence workflow
        its watch (left out when the event has no value to match on); and ``answers`` lists the
        absence watches this event is the expected event of."""
        facts = Facts(event.data, event.time, event.envelope, self.timezone)
        matched = self.match(event, facts)
        answers = self.answers(event) if event.type in self._expecting else ()
        if not matched:
            return Plan(event.id, event.type, (), answers)
        # templates that never name ``event`` read the data itself: no envelope, no copy
        context = (
            template_context(event)
            if any(compiled.reads_event for compiled in matched)
            else event.data
        )
        if any(compiled.uses_jinja for compiled in matched):
            # one render budget (time, loop iterations) for every template this event renders
            with render_budget():
                planned = self._planned(matched, context, event, facts)
        else:
            planned = self._planned(matched, context, event, facts)
        return Plan(event.id, event.type, planned, answers)

    @staticmethod
    def _planned(
        matched: list[CompiledWorkflow],
        context: dict[str, Any],
        event: Event,
        facts: Mapping[str, Any],
    ) -> tuple[PlannedWorkflow, ...]:
        planned: list[PlannedWorkflow] = []
        for compiled in matched:
            gates = compiled.render_gates(context)[0] if compiled.gates else ()
            absence = compiled.absence.watch(event.data) if compiled.absence else None
            if compiled.absence is not None and absence is None:
                continue
            workflow = compiled.workflow
            planned.append(
                PlannedWorkflow(
                    workflow.id,
                    workflow.name,
                    workflow.version,
                    workflow.priority,
                    compiled.render(context),
                    gates,
                    absence,
                    compiled.read(facts) if compiled.reads else None,
                )
            )
        return tuple(planned)

    def answers(self, event: Event) -> tuple[Answer, ...]:
        """The enabled absence watches ``event`` answers (its type is their ``expect``)."""
        waiting = self._expecting.get(event.type)
        if not waiting:
            return ()
        found = []
        for workflow_id in sorted(waiting):
            compiled = waiting[workflow_id]
            watch = compiled.absence.watch(event.data) if compiled.absence else None
            if watch is not None and compiled.workflow.enabled:
                found.append(Answer(workflow_id, watch))
        return tuple(found)

    def render_actions(self, workflow_id: str, event: Event) -> tuple[RenderedAction, ...]:
        """The workflow's actions rendered for ``event`` whether or not it would fire (dry run)."""
        return self._require(workflow_id).render(template_context(event))

    def trace(self, workflow_id: str, event: Event) -> WorkflowTrace:
        """Why ``workflow_id`` would or would not fire for ``event``; NotFoundError if unknown."""
        compiled = self._require(workflow_id)
        workflow = compiled.workflow
        facts = self.facts(event)
        condition = compiled.condition.explain(facts) if compiled.condition is not None else None
        trigger_matched = workflow.trigger == event.type
        reasons = []
        if not workflow.enabled:
            reasons.append("the workflow is disabled")
        if not trigger_matched:
            reasons.append(f"its trigger is {workflow.trigger}, the event is {event.type}")
        if condition is not None and not condition.outcome:
            reasons.extend(
                f"condition {leaf.text!r} failed: {leaf.reason}" for leaf in condition.failing()
            )
        memory = self._memory_trace(compiled, event)
        if compiled.absence is not None and compiled.absence.watch(event.data) is None:
            reasons.append(f"the event has no {compiled.absence.match_on} to watch for")
        fired = not reasons
        if fired:
            reasons.append(
                "conditions matched" if condition is not None else "no conditions: always fires"
            )
        return WorkflowTrace(
            workflow_id=workflow.id,
            workflow_version=workflow.version,
            event_id=event.id,
            event_type=event.type,
            fired=fired,
            enabled=workflow.enabled,
            trigger=workflow.trigger,
            trigger_matched=trigger_matched,
            condition=condition,
            reasons=tuple(reasons),
            memory=memory,
        )

    def _memory_trace(self, compiled: CompiledWorkflow, event: Event) -> tuple[str, ...]:
        """What state decides for a run on ``event``, in sentences (a dry run has no state:
        it shows the keys and what an empty state would answer)."""
        lines: list[str] = []
        context = template_context(event)
        gates, missing = compiled.render_gates(context)
        for gate in gates:
            lines.append(f"{gate.describe()}; the first such run passes")
        if missing:
            lines.append(f"state key variables missing (the empty key is shared): {missing}")
        if compiled.absence is not None:
            watch = compiled.absence.watch(event.data)
            if watch is not None:
                lines.append(
                    f"absence: waits {human(watch.within)} for {watch.expect} with"
                    f" {watch.match_on} == {watch.match!r}; runs with this event if none comes"
                )
        lines.extend(
            f"action {action.index} ({action.type}) runs {human(action.delay)} after the event"
            for action in compiled.actions
            if action.delay is not None
        )
        if event.type in self._expecting:
            lines.extend(
                f"answers absence watch of {answer.workflow_id} on"
                f" {answer.watch.match_on} == {answer.watch.match!r}"
                for answer in self.answers(event)
            )
        return tuple(lines)

    def _require(self, workflow_id: str) -> CompiledWorkflow:
        compiled = self._compiled.get(workflow_id)
        if compiled is None:
            raise NotFoundError(f"no workflow {workflow_id!r} in the engine")
        return compiled
