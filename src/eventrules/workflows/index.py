"""The per-trigger index: find the matching workflows without testing every one.

Each workflow's condition is split into its top-level AND members. One equality on a scalar
(``country == "DE"``) puts the workflow in a dict keyed by (field, value); within that bucket
one numeric threshold (``total > 100``) puts it on a sorted ladder, so a bisect finds every
workflow whose threshold the event passes; a second numeric threshold is compared inline. Only
the candidates that pass both run their remaining members (the residual). Workflows with
neither go to a plain scan list. Buckets and ladders are shared by all workflows of a trigger,
so an event pays for the fields it has, not for the workflows that cannot match it.

The result is exactly what testing each workflow's whole condition would give, in plan order.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from eventrules.conditions import Compare, Conjunct
from eventrules.conditions.compiler import Predicate, all_of
from eventrules.conditions.paths import Getter, compile_path
from eventrules.conditions.values import NUMBER_TYPES, is_number
from eventrules.workflows.compiled import CompiledWorkflow

__all__ = ["TriggerIndex"]

_THRESHOLD_OPERATORS: Final = frozenset({"gt", "gte", "lt", "lte"})
# (plan position, second threshold or None, residual predicate or None)
Entry = tuple[int, Any, Predicate | None]


# how a workflow's threshold compares with the event value, threshold first
_THRESHOLD_PASSES: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "gt": operator.lt,  # total > X  <=>  X < total
    "gte": operator.le,
    "lt": operator.gt,
    "lte": operator.ge,
}


def _number(value: Any) -> bool:
    return type(value) in NUMBER_TYPES and value == value  # noqa: PLR0124 - NaN passes none


@dataclass(slots=True)
class _Ladder:
    """Workflows sharing a (field, operator) threshold, sorted by threshold.

    When a workflow also has a second numeric threshold, that one is kept beside it and
    compared inline, so most candidates are rejected without calling a predicate.
    """

    get: Getter
    operator: str
    second_get: Getter | None = None
    second_passes: Callable[[Any, Any], bool] | None = None
    pending: list[tuple[float, Entry]] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)

    def freeze(self) -> None:
        self.pending.sort(key=lambda item: item[0])
        self.thresholds = [threshold for threshold, _ in self.pending]
        self.entries = [entry for _, entry in self.pending]
        self.pending = []

    def collect(self, facts: Mapping[str, Any], hits: list[int]) -> None:
        value = self.get(facts)
        if not _number(value):
            return
        operator_name = self.operator
        if operator_name == "gt":
            passing = self.entries[: bisect.bisect_left(self.thresholds, value)]
        elif operator_name == "gte":
            passing = self.entries[: bisect.bisect_right(self.thresholds, value)]
        elif operator_name == "lt":
            passing = self.entries[bisect.bisect_right(self.thresholds, value) :]
        else:
            passing = self.entries[bisect.bisect_left(self.thresholds, value) :]
        if self.second_get is None or self.second_passes is None:
            for position, _, residual in passing:
                if residual is None or residual(facts):
                    hits.append(position)
            return
        second = self.second_get(facts)
        if not _number(second):
            return
        passes = self.second_passes
        for position, threshold, residual in passing:
            if passes(threshold, second) and (residual is None or residual(facts)):
                hits.append(position)


@dataclass(slots=True)
class _Bucket:
    ladders: dict[tuple[str, ...], _Ladder] = field(default_factory=dict)
    scan: list[tuple[int, Predicate | None]] = field(default_factory=list)

    def collect(self, facts: Mapping[str, Any], hits: list[int]) -> None:
        for ladder in self.ladders.values():
            ladder.collect(facts, hits)
        for position, residual in self.scan:
            if residual is None or residual(facts):
                hits.append(position)


@dataclass(slots=True)
class _EqualityIndex:
    """Buckets of one field keyed by value; kinds kept apart so ``1`` never finds ``true``."""

    get: Getter
    strings: dict[str, _Bucket] = field(default_factory=dict)
    numbers: dict[float, _Bucket] = field(default_factory=dict)
    booleans: dict[bool, _Bucket] = field(default_factory=dict)

    def bucket_for(self, value: Any) -> _Bucket:
        if isinstance(value, bool):
            return self.booleans.setdefault(value, _Bucket())
        if isinstance(value, str):
            return self.strings.setdefault(value, _Bucket())
        return self.numbers.setdefault(value, _Bucket())

    def lookup(self, facts: Mapping[str, Any]) -> _Bucket | None:
        value = self.get(facts)
        kind = type(value)
        if kind is str:
            return self.strings.get(value)
        if kind in NUMBER_TYPES:
            return self.numbers.get(value)
        if kind is bool:
            return self.booleans.get(value)
        return None


def _equality_key(conjunct: Conjunct) -> Compare | None:
    node = conjunct.node
    if not isinstance(node, Compare) or node.operator != "eq":
        return None
    return node if isinstance(node.value, str | bool) or is_number(node.value) else None


def _threshold(conjunct: Conjunct) -> Compare | None:
    node = conjunct.node
    if not isinstance(node, Compare) or node.operator not in _THRESHOLD_OPERATORS:
        return None
    return node if is_number(node.value) else None


def _take(conjuncts: list[Conjunct], pick: Callable[[Conjunct], Compare | None]) -> Compare | None:
    """Remove and return the first conjunct ``pick`` accepts."""
    for position, conjunct in enumerate(conjuncts):
        node = pick(conjunct)
        if node is not None:
            del conjuncts[position]
            return node
    return None


class TriggerIndex:
    """The enabled workflows of one trigger, indexed; :meth:`match` returns them in plan order."""

    __slots__ = ("_equalities", "_free", "_has_free", "_workflows")

    def __init__(self, workflows: Iterable[CompiledWorkflow]) -> None:
        self._workflows = tuple(sorted(workflows, key=lambda compiled: compiled.order_key))
        self._equalities: dict[str, _EqualityIndex] = {}
        self._free = _Bucket()
        for position, compiled in enumerate(self._workflows):
            conjuncts = list(compiled.condition.conjuncts) if compiled.condition else []
            self._place(position, conjuncts)
        for bucket in self._buckets():
            for ladder in bucket.ladders.values():
                ladder.freeze()
        self._has_free = bool(self._free.ladders or self._free.scan)

    def __len__(self) -> int:
        return len(self._workflows)

    def _place(self, position: int, conjuncts: list[Conjunct]) -> None:
        bucket = self._free
        equality = _take(conjuncts, _equality_key)
        if equality is not None:
            index = self._equalities.get(equality.field)
            if index is None:
                index = _EqualityIndex(compile_path(equality.field))
                self._equalities[equality.field] = index
            bucket = index.bucket_for(equality.value)
        node = _take(conjuncts, _threshold)
        if node is None:
            bucket.scan.append((position, _residual(conjuncts)))
            return
        second = _take(conjuncts, _threshold)
        key = (node.field, node.operator, *((second.field, second.operator) if second else ()))
        ladder = bucket.ladders.get(key)
        if ladder is None:
            ladder = _Ladder(compile_path(node.field), node.operator)
            if second is not None:
                ladder.second_get = compile_path(second.field)
                ladder.second_passes = _THRESHOLD_PASSES[second.operator]
            bucket.ladders[key] = ladder
        second_threshold = second.value if second is not None else None
        ladder.pending.append((node.value, (position, second_threshold, _residual(conjuncts))))

    def _buckets(self) -> list[_Bucket]:
        buckets = [self._free]
        for index in self._equalities.values():
            for group in (index.strings, index.numbers, index.booleans):
                buckets.extend(group.values())
        return buckets

    def match(self, facts: Mapping[str, Any]) -> list[CompiledWorkflow]:
        hits: list[int] = []
        for index in self._equalities.values():
            bucket = index.lookup(facts)
            if bucket is not None:
                bucket.collect(facts, hits)
        if self._has_free:
            self._free.collect(facts, hits)
        hits.sort()
        workflows = self._workflows
        return [workflows[position] for position in hits]


def _residual(conjuncts: list[Conjunct]) -> Predicate | None:
    return all_of([conjunct.test for conjunct in conjuncts]) if conjuncts else None
