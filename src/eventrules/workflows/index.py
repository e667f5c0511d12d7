"""The per-trigger index: the enabled workflows of one trigger, matched without testing each.

A thin layer over :class:`eventrules.conditions.index.ConditionIndex` (see there how it works):
it puts the workflows in plan order (priority 10 first, ties by id) and indexes their
conditions. The result is exactly what testing each workflow's whole condition would give.

On a ``scheduled.*`` trigger a workflow with its own schedule runs on the ticks addressed to it
(``data.workflow_id``) and only on those; the others run on the unaddressed daily/weekly/monthly
ticks. That rule is one more indexed comparison per workflow (``workflow_id == <its id>`` or
``workflow_id not_exists``), so a tick costs no pass over the matched workflows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from eventrules.conditions import Compare, CompiledCondition, compile_condition
from eventrules.conditions.index import ConditionIndex
from eventrules.workflows.compiled import CompiledWorkflow

__all__ = ["TriggerIndex"]

# the tick's field naming the one scheduled workflow it is for (runtime/scheduler.py)
_ADDRESSEE: Final = "workflow_id"
_UNADDRESSED: Final = Compare(_ADDRESSEE, "not_exists")


class TriggerIndex:
    """The enabled workflows of one trigger, indexed; :meth:`match` returns them in plan order."""

    __slots__ = ("_index", "match")

    match: Callable[[Mapping[str, Any]], list[CompiledWorkflow]]

    def __init__(self, workflows: Iterable[CompiledWorkflow], *, scheduled: bool = False) -> None:
        ordered = sorted(workflows, key=lambda compiled: compiled.order_key)
        conditions = [_ticked(c) if scheduled else c.condition for c in ordered]
        self._index = ConditionIndex(list(zip(ordered, conditions, strict=True)))
        # the index's own method: one call less per event on the hot path
        self.match = self._index.match

    def __len__(self) -> int:
        return len(self._index)


def _ticked(compiled: CompiledWorkflow) -> CompiledCondition:
    """The workflow's condition AND the ticks it runs on (see the module's docstring)."""
    workflow = compiled.workflow
    tick = _UNADDRESSED if workflow.schedule is None else Compare(_ADDRESSEE, "eq", workflow.id)
    condition = compiled.condition
    return compile_condition(tick) if condition is None else condition.also(tick)
