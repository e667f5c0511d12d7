"""Compile a condition tree once into closures; evaluate it per event without re-parsing."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from eventrules.conditions.explain import ConditionTrace
from eventrules.conditions.operators import OPERATORS, mismatch_reason
from eventrules.conditions.parsing import check_tree_shape, parse_condition
from eventrules.conditions.paths import Getter, compile_path
from eventrules.conditions.tree import (
    AllOf,
    AnyOf,
    Compare,
    ConditionNode,
    Not,
    make_compare,
    node_to_text,
)
from eventrules.conditions.values import MISSING, kind_of, to_instant
from eventrules.errors import DefinitionError

__all__ = ["REFERENCE_TIME_FACT", "CompiledCondition", "Conjunct", "all_of", "compile_condition"]

Predicate = Callable[[Mapping[str, Any]], bool]

# relative time operators measure against this fact so replaying an event gives the same answer
REFERENCE_TIME_FACT = "eventTime"
_reference_time = compile_path(REFERENCE_TIME_FACT)


@dataclass(frozen=True, slots=True)
class Conjunct:
    """One member of the top-level AND; the matcher indexes the comparisons among them.

    ``value_test`` is the operator's test on the field's value when ``node`` is a comparison
    with one (not the relative time operators), so the index need not compile it again."""

    node: ConditionNode
    test: Predicate
    value_test: Callable[[Any], bool] | None = None


class CompiledCondition:
    """A compiled tree: ``matches(facts)`` is a plain closure call, ``explain`` a full trace.

    ``facts`` is any mapping (a dict of rule facts, or :class:`Facts` for an event).
    Evaluation never raises on JSON data: a kind mismatch or a missing field is a non-match.
    """

    __slots__ = ("conjuncts", "matches", "tree")

    matches: Predicate

    def __init__(self, tree: ConditionNode) -> None:
        self.tree = tree
        self.conjuncts = tuple(_conjunct(node) for node in _top_level_and(tree))
        self.matches = all_of([conjunct.test for conjunct in self.conjuncts])

    def also(self, node: ConditionNode) -> CompiledCondition:
        """This condition AND ``node`` (a valid tree), reusing the members already compiled."""
        joined = CompiledCondition.__new__(CompiledCondition)
        joined.tree = AllOf((self.tree, node))
        joined.conjuncts = (*self.conjuncts, *map(_conjunct, _top_level_and(node)))
        joined.matches = all_of([conjunct.test for conjunct in joined.conjuncts])
        return joined

    def explain(self, facts: Mapping[str, Any]) -> ConditionTrace:
        return _explain(self.tree, facts)

    def __repr__(self) -> str:
        return f"CompiledCondition({node_to_text(self.tree)!r})"


def compile_condition(condition: ConditionNode | object) -> CompiledCondition:
    """Compile a tree, or parse then compile a structured mapping / shorthand string.

    Raises only DefinitionError (and its subclasses): a tree built in code is checked like a
    parsed one (limits, operators, values) before anything recurses into it.
    """
    if isinstance(condition, Compare | AllOf | AnyOf | Not):
        check_tree_shape(condition)
        _check_comparisons(condition)
        return CompiledCondition(condition)
    return CompiledCondition(parse_condition(condition))


def _check_comparisons(tree: ConditionNode) -> None:
    problems: list[tuple[str, str]] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Not):
            stack.append(node.child)
        elif isinstance(node, AllOf | AnyOf):
            stack.extend(node.children)
        else:
            try:
                make_compare(node.field, node.operator, node.value)
            except (ValueError, TypeError) as exc:
                problems.append((node.field if isinstance(node.field, str) else "", str(exc)))
    if problems:
        raise DefinitionError("invalid condition", problems=problems)


def _top_level_and(tree: ConditionNode) -> list[ConditionNode]:
    if isinstance(tree, AllOf):
        return [leaf for child in tree.children for leaf in _top_level_and(child)]
    return [tree]


def _compile(node: ConditionNode) -> Predicate:
    match node:
        case Compare():
            return _compile_compare(node)
        case AllOf(children):
            return all_of([_compile(child) for child in children])
        case AnyOf(children):
            return _any([_compile(child) for child in children])
        case Not(child):
            negated = _compile(child)
            return lambda facts: not negated(facts)


def _conjunct(node: ConditionNode) -> Conjunct:
    if isinstance(node, Compare):
        return Conjunct(node, *_compare_tests(node))
    return Conjunct(node, _compile(node))


def _compile_compare(node: Compare) -> Predicate:
    return _compare_tests(node)[0]


def _compare_tests(node: Compare) -> tuple[Predicate, Callable[[Any], bool] | None]:
    """The comparison as a predicate on facts, and as a test on the value when it has one."""
    operator = OPERATORS[node.operator]
    prepared = operator.prepare(node.value)
    get = compile_path(node.field)
    if operator.make_relative_test is not None:
        relative = operator.make_relative_test(prepared)
        return lambda facts: relative(get(facts), to_instant(_reference_time(facts))), None
    if operator.make_test is None:
        raise TypeError(f"operator {operator.name} defines no test")
    test = operator.make_test(prepared)
    return lambda facts: test(get(facts)), test


def all_of(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda facts: first(facts) and second(facts)

    def every(facts: Mapping[str, Any]) -> bool:
        for predicate in predicates:  # noqa: SIM110 - a loop beats all(<genexpr>) on the hot path
            if not predicate(facts):
                return False
        return True

    return every


def _any(predicates: list[Predicate]) -> Predicate:
    def some(facts: Mapping[str, Any]) -> bool:
        for predicate in predicates:  # noqa: SIM110 - a loop beats any(<genexpr>) on the hot path
            if predicate(facts):
                return True
        return False

    return some


_SHOWN_CHARS: Final = 200


def _show(value: Any) -> str:
    """A value for a trace's reason: JSON, cut short (event data may be large or deep)."""
    if value is MISSING:
        return "<missing>"
    try:
        text = json.dumps(value, default=str)
    except (ValueError, RecursionError):
        text = f"<{kind_of(value)}>"
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


def _explain(node: ConditionNode, facts: Mapping[str, Any]) -> ConditionTrace:
    text = node_to_text(node)
    if isinstance(node, Compare):
        return _explain_compare(node, facts, text)
    children = (
        (_explain(node.child, facts),)
        if isinstance(node, Not)
        else tuple(_explain(child, facts) for child in node.children)
    )
    if isinstance(node, Not):
        outcome = not children[0].outcome
        reason = "negated condition " + ("did not match" if outcome else "matched")
        return ConditionTrace("not", outcome, reason, text, children)
    passed = sum(child.outcome for child in children)
    if isinstance(node, AllOf):
        outcome = passed == len(children)
        reason = f"{passed} of {len(children)} conditions matched; all are needed"
        return ConditionTrace("all", outcome, reason, text, children)
    outcome = passed > 0
    reason = f"{passed} of {len(children)} conditions matched; one is enough"
    return ConditionTrace("any", outcome, reason, text, children)


def _explain_compare(node: Compare, facts: Mapping[str, Any], text: str) -> ConditionTrace:
    operator = OPERATORS[node.operator]
    getter: Getter = compile_path(node.field)
    actual = getter(facts)
    outcome = _compile_compare(node)(facts)
    prepared = operator.prepare(node.value)
    reason = mismatch_reason(operator, actual, prepared)
    if reason is None:
        reason = f"{node.field} = {_show(actual)}, so {text!r} is {str(outcome).lower()}"
        if operator.make_relative_test is not None:
            reference = _reference_time(facts)
            if to_instant(reference) is None:
                reason = f"no usable {REFERENCE_TIME_FACT} to measure against ({_show(reference)})"
            else:
                reason += f" ({REFERENCE_TIME_FACT} = {_show(reference)})"
    return ConditionTrace(
        "compare",
        outcome,
        reason,
        text,
        field=node.field,
        operator=node.operator,
        expected=node.value,
        actual=actual,
    )
