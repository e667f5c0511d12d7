"""The per-trigger index: the enabled workflows of one trigger, matched without testing each.

A thin layer over :class:`eventrules.conditions.index.ConditionIndex` (see there how it works):
it puts the workflows in plan order (priority 10 first, ties by id) and indexes their
conditions. The result is exactly what testing each workflow's whole condition would give.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from eventrules.conditions.index import ConditionIndex
from eventrules.workflows.compiled import CompiledWorkflow

__all__ = ["TriggerIndex"]


class TriggerIndex:
    """The enabled workflows of one trigger, indexed; :meth:`match` returns them in plan order."""

    __slots__ = ("_index", "match")

    match: Callable[[Mapping[str, Any]], list[CompiledWorkflow]]

    def __init__(self, workflows: Iterable[CompiledWorkflow]) -> None:
        ordered = sorted(workflows, key=lambda compiled: compiled.order_key)
        self._index = ConditionIndex([(compiled, compiled.condition) for compiled in ordered])
        # the index's own method: one call less per event on the hot path
        self.match = self._index.match

    def __len__(self) -> int:
        return len(self._index)
