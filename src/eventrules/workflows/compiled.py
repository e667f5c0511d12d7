"""A workflow compiled once per version: trigger checked, condition and templates compiled."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eventrules.conditions import CompiledCondition, compile_condition
from eventrules.errors import DefinitionError, DefinitionLimitError, TemplateError
from eventrules.models.workflows import Workflow
from eventrules.workflows.catalog import TriggerCatalog
from eventrules.workflows.plan import RenderedAction
from eventrules.workflows.templating import TemplatedParams, compile_params

__all__ = ["CompiledAction", "CompiledWorkflow", "compile_actions", "compile_workflow"]


@dataclass(frozen=True, slots=True)
class CompiledAction:
    index: int
    type: str
    params: TemplatedParams

    def render(self, context: Mapping[str, Any]) -> RenderedAction:
        """Never raises: a template failure comes back as a failed action carrying the error."""
        try:
            params, missing = self.params.render(context)
        except TemplateError as exc:
            return RenderedAction(self.index, self.type, {}, error=str(exc))
        return RenderedAction(self.index, self.type, params, tuple(missing))


@dataclass(frozen=True, slots=True, eq=False)
class CompiledWorkflow:
    workflow: Workflow
    condition: CompiledCondition | None
    actions: tuple[CompiledAction, ...]

    @property
    def order_key(self) -> tuple[int, str]:
        """Plan order: priority 10 first, then workflow id."""
        return (-self.workflow.priority, self.workflow.id)

    def matches(self, facts: Mapping[str, Any]) -> bool:
        return self.condition is None or self.condition.matches(facts)

    def render(self, context: Mapping[str, Any]) -> tuple[RenderedAction, ...]:
        return tuple(action.render(context) for action in self.actions)


def compile_workflow(workflow: Workflow, catalog: TriggerCatalog) -> CompiledWorkflow:
    """Raises DefinitionError (UnknownTriggerError for the trigger) naming every field path."""
    catalog.require(workflow.trigger, definition_id=workflow.id)
    actions = compile_actions(workflow)
    condition = compile_condition(workflow.conditions) if workflow.conditions is not None else None
    return CompiledWorkflow(workflow, condition, actions)


def compile_actions(workflow: Workflow) -> tuple[CompiledAction, ...]:
    """The actions with their templates compiled, which checks them (syntax, the static check,
    the limits): what publishing a workflow must pass, as the workers will compile it too.

    Raises DefinitionError naming every failing parameter (DefinitionLimitError when one went
    past a limit)."""
    problems: list[tuple[str, str]] = []
    exceeded: list[DefinitionLimitError] = []
    actions = []
    for index, action in enumerate(workflow.actions):
        params = action.model_dump(mode="json", exclude={"type"})
        try:
            templated = compile_params(
                params, untemplated=type(action).untemplated, path=f"actions.{index}"
            )
        except DefinitionError as exc:
            problems.extend(exc.problems)
            if isinstance(exc, DefinitionLimitError):
                exceeded.append(exc)
            continue
        actions.append(CompiledAction(index, action.type, templated))
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
    return tuple(actions)
