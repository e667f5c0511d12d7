"""The pure rules engine: rule type + facts + evaluation time -> :class:`Decision`.

No I/O and no clock, except that :meth:`RulesEngine.evaluate` defaults ``at`` to now when the
caller passes none (it is the outermost Python API). Rules are compiled once per version;
an evaluation walks the enabled rules of one type in priority order (higher first, ties by
id), skips those outside their validity window, and lets the policy pick which matches apply.

The facts conditions see are the request's facts plus the time facts of ``at`` (``dayOfWeek``,
``hour``, ``eventTime``...) in the engine's timezone; a fact in the request wins.

Replacing a rule follows :class:`eventrules.workflows.engine.Engine`: a higher version
replaces, an equal identical one is a no-op, an equal different one replaces (the topic's
latest record wins), a lower one is stale; a rule that fails to compile changes nothing.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, NamedTuple

from pydantic import JsonValue

from eventrules.conditions import CompiledCondition, Facts, compile_condition
from eventrules.conditions.compiler import Predicate
from eventrules.conditions.index import ConditionIndex, reads_derived_facts
from eventrules.conditions.paths import Getter, compile_path
from eventrules.definitions.records import UpsertOutcome
from eventrules.errors import RuleEvaluationError
from eventrules.rules.decisions import (
    DEFAULT_POLICIES,
    POLICIES,
    AppliedAction,
    BlockReason,
    Decision,
    Discount,
    MatchedRule,
    Policy,
    PriceOutcome,
    WindowMiss,
)
from eventrules.rules.models import (
    MAX_MONEY,
    RULE_TYPES,
    AddToSegment,
    Block,
    FixedDiscount,
    PercentageDiscount,
    Route,
    Rule,
    RuleType,
    SetField,
    TagFacts,
)

__all__ = ["DEFAULT_PRICE_FIELD", "CompiledRule", "RulesEngine", "compile_rule"]

log = logging.getLogger(__name__)

DEFAULT_PRICE_FIELD: Final = "total"
# with MAX_MONEY's 16 digits, up to 9 decimals stay within decimal's 28 digits
_MAX_MONEY_PLACES: Final = 9
_HUNDRED: Final = Decimal(100)


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    """A rule compiled once per version, with what a decision needs from it precomputed."""

    rule: Rule
    condition: CompiledCondition | None
    test: Predicate | None
    windowed: bool
    # (action type, percent or amount) in the rule's order
    discounts: tuple[tuple[str, Decimal], ...]
    actions: tuple[AppliedAction, ...]
    # whether any action besides a discount needs folding into the decision
    has_effects: bool
    as_applied: MatchedRule
    as_passed_over: MatchedRule

    @property
    def order_key(self) -> tuple[int, str]:
        """Evaluation order: highest priority first, then rule id."""
        return (-self.rule.priority, self.rule.id)


def compile_rule(rule: Rule) -> CompiledRule:
    condition = compile_condition(rule.conditions) if rule.conditions is not None else None
    discounts = tuple(
        (action.type, action.percent if isinstance(action, PercentageDiscount) else action.amount)
        for action in rule.actions
        if isinstance(action, PercentageDiscount | FixedDiscount)
    )
    return CompiledRule(
        rule,
        condition,
        condition.matches if condition is not None else None,
        rule.valid_from is not None or rule.valid_until is not None,
        discounts,
        tuple(AppliedAction(rule.id, rule.version, action) for action in rule.actions),
        len(discounts) < len(rule.actions),
        MatchedRule(rule.id, rule.version, rule.priority, applied=True),
        MatchedRule(rule.id, rule.version, rule.priority, applied=False),
    )


@dataclass(frozen=True, slots=True)
class _TypeView:
    """The enabled rules of one type: indexed for matching, and those with a window."""

    index: ConditionIndex[CompiledRule]
    windowed: tuple[CompiledRule, ...]
    # whether a condition reads a time fact (dayOfWeek, eventTime...): only then are the
    # request's facts wrapped in Facts, which derives them from the evaluation time
    reads_time: bool


def _view_of(rules: list[CompiledRule]) -> _TypeView:
    index = ConditionIndex([(compiled, compiled.condition) for compiled in rules])
    windowed = tuple(compiled for compiled in rules if compiled.windowed)
    reads_time = any(
        compiled.condition is not None and reads_derived_facts(compiled.condition.tree)
        for compiled in rules
    )
    return _TypeView(index, windowed, reads_time)


@functools.lru_cache(maxsize=64)
def _price_getter(path: str) -> Getter:
    return compile_path(path)


class RulesEngine:
    """Holds compiled rules; single-threaded like the worker that calls it.

    ``policies`` overrides the default policy of a rule type (``{"pricing": "stack"}``);
    a request may override it again. ``money_places`` is the number of decimals prices are
    rounded to (2 for cents; 0 for currencies without minor units).
    """

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        *,
        timezone: tzinfo = UTC,
        policies: Mapping[str, str] | None = None,
        money_places: int = 2,
    ) -> None:
        if not 0 <= money_places <= _MAX_MONEY_PLACES:
            raise ValueError(f"money_places must be between 0 and {_MAX_MONEY_PLACES}")
        self.timezone = timezone
        self.policies: dict[str, Policy] = dict(DEFAULT_POLICIES)
        for rule_type, policy in (policies or {}).items():
            self.policies[rule_type] = _check_policy(_check_type(rule_type), policy)
        self._quantum = Decimal(1).scaleb(-money_places)
        self._compiled: dict[str, CompiledRule] = {}
        self._views: dict[str, _TypeView] = {}
        for rule in rules:
            self.upsert(rule)

    def __len__(self) -> int:
        return len(self._compiled)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._compiled

    def get(self, rule_id: str) -> Rule | None:
        compiled = self._compiled.get(rule_id)
        return compiled.rule if compiled is not None else None

    def rules(self) -> list[Rule]:
        return [compiled.rule for compiled in self._compiled.values()]

    def upsert(self, rule: Rule) -> UpsertOutcome:
        """Compile and install ``rule``; raises DefinitionError and changes nothing if bad."""
        current = self._compiled.get(rule.id)
        if current is not None:
            if rule.version < current.rule.version:
                return UpsertOutcome.STALE
            if rule.version == current.rule.version and rule == current.rule:
                return UpsertOutcome.UNCHANGED
        compiled = compile_rule(rule)
        self._compiled[rule.id] = compiled
        self._views.pop(rule.rule_type, None)
        if current is not None:
            self._views.pop(current.rule.rule_type, None)
        return UpsertOutcome.ADDED if current is None else UpsertOutcome.REPLACED

    def remove(self, rule_id: str) -> bool:
        current = self._compiled.pop(rule_id, None)
        if current is None:
            return False
        self._views.pop(current.rule.rule_type, None)
        return True

    def _view(self, rule_type: str) -> _TypeView:
        view = self._views.get(rule_type)
        if view is None:
            members = [
                compiled
                for compiled in self._compiled.values()
                if compiled.rule.rule_type == rule_type and compiled.rule.enabled
            ]
            members.sort(key=lambda compiled: compiled.order_key)
            view = self._views[rule_type] = _view_of(members)
        return view

    def evaluate(
        self,
        rule_type: str,
        facts: Mapping[str, Any],
        *,
        at: datetime | None = None,
        policy: str | None = None,
        price_field: str = DEFAULT_PRICE_FIELD,
    ) -> Decision:
        """The decision for ``facts``; raises RuleEvaluationError when the request is unusable.

        ``at`` (timezone-aware) is the evaluation time: it decides validity windows and the
        time facts; it defaults to now. ``price_field`` is the dotted path of the price that
        pricing rules discount.
        """
        kind = _check_type(rule_type)
        chosen = _check_policy(kind, policy) if policy is not None else self.policies[kind]
        if at is None:
            at = datetime.now(UTC)
        else:
            _check_time(at, self.timezone)
        if type(facts) is not dict and not isinstance(facts, Mapping):  # the ABC check is slow
            raise RuleEvaluationError("facts must be a JSON object", field="facts")
        try:
            return self._evaluate(kind, chosen, at, facts, price_field)
        except ArithmeticError as exc:  # prices are bounded; this is a last line of defence
            raise RuleEvaluationError(
                f"the decision cannot be computed: {type(exc).__name__}", field=price_field
            ) from None

    def _evaluate(
        self,
        kind: RuleType,
        chosen: Policy,
        at: datetime,
        facts: Mapping[str, Any],
        price_field: str,
    ) -> Decision:
        original = self._price(facts, price_field) if kind == "pricing" else None
        view = self._view(kind)
        misses: tuple[WindowMiss, ...] = ()
        skipped: frozenset[str] = frozenset()
        if view.windowed:
            misses = tuple(
                WindowMiss(compiled.rule.id, compiled.rule.version, reason)
                for compiled in view.windowed
                if (reason := compiled.rule.window_miss(at)) is not None
            )
            skipped = frozenset(miss.rule_id for miss in misses)
        data = Facts(facts, at, None, self.timezone) if view.reads_time else facts
        if chosen == "first" and not skipped:
            # a first-hit decision lists only the rule that applied, as if evaluation stopped
            hit = view.index.first(data)
            if hit is None:
                unchanged = (
                    PriceOutcome(price_field, original, original, ())
                    if original is not None
                    else None
                )
                return Decision(kind, chosen, at, (), misses, (), unchanged)
            matched = [hit]
        else:
            matched = view.index.match(data)
            if skipped:
                matched = [compiled for compiled in matched if compiled.rule.id not in skipped]
            if chosen == "first":
                matched = matched[:1]
        applied = self._best(matched, original) if chosen == "best" else matched
        return self._decide(
            kind,
            chosen,
            at,
            matched=matched,
            applied=applied,
            misses=misses,
            original=original,
            price_field=price_field,
        )

    def _price(self, facts: Mapping[str, Any], price_field: str) -> Decimal:
        value = _price_getter(price_field)(facts)
        if type(value) is float and value - value == 0:  # finite: inf - inf and nan are nan
            price = Decimal(repr(value))
        elif type(value) is int or (isinstance(value, Decimal) and value.is_finite()):
            price = Decimal(value)
        else:
            raise RuleEvaluationError(
                f"pricing needs a number at {price_field!r}, got {value!r}", field=price_field
            )
        if price < 0:
            raise RuleEvaluationError(f"the price {price_field!r} is negative", field=price_field)
        if price > MAX_MONEY:
            raise RuleEvaluationError(
                f"the price {price_field!r} is out of range (at most {MAX_MONEY:,})",
                field=price_field,
            )
        return price.quantize(self._quantum, rounding=ROUND_HALF_UP)

    def _discounts(self, compiled: CompiledRule, price: Decimal) -> list[Discount]:
        rule = compiled.rule
        quantum = self._quantum
        discounts = []
        for action_type, value in compiled.discounts:
            if action_type == "percentage_discount":
                amount = (price * value / _HUNDRED).quantize(quantum, rounding=ROUND_HALF_UP)
            else:
                amount = value.quantize(quantum, rounding=ROUND_HALF_UP)
            amount = min(amount, price)  # a price never goes below zero
            price -= amount
            discounts.append(Discount(rule.id, rule.version, action_type, amount, price))
        return discounts

    def _best(self, matched: list[CompiledRule], original: Decimal | None) -> list[CompiledRule]:
        if not matched or original is None:
            return matched[:1]
        # min() keeps the first of equal prices, which is the higher-priority rule
        return [min(matched, key=lambda c: self._final(c, original))]

    def _final(self, compiled: CompiledRule, original: Decimal) -> Decimal:
        discounts = self._discounts(compiled, original)
        return discounts[-1].price_after if discounts else original

    def _decide(
        self,
        rule_type: RuleType,
        policy: Policy,
        at: datetime,
        *,
        matched: list[CompiledRule],
        applied: list[CompiledRule],
        misses: tuple[WindowMiss, ...],
        original: Decimal | None,
        price_field: str,
    ) -> Decision:
        price = original
        discounts: list[Discount] = []
        if price is not None:
            for compiled in applied:
                steps = self._discounts(compiled, price)
                if steps:
                    price = steps[-1].price_after
                    discounts.extend(steps)
        if len(applied) == len(matched):  # first, collect and stack apply every listed match
            listed = tuple([compiled.as_applied for compiled in matched])
        else:
            chosen = {id(compiled) for compiled in applied}
            listed = tuple(
                compiled.as_applied if id(compiled) in chosen else compiled.as_passed_over
                for compiled in matched
            )
        if len(applied) == 1:
            actions = applied[0].actions
            has_effects = applied[0].has_effects
        else:
            actions = tuple([action for compiled in applied for action in compiled.actions])
            has_effects = any(compiled.has_effects for compiled in applied)
        outcome = (
            PriceOutcome(price_field, original, price, tuple(discounts))
            if original is not None and price is not None
            else None
        )
        if not has_effects:  # positional: a dozen keywords cost more than the rest of a decision
            return Decision(rule_type, policy, at, listed, misses, actions, outcome)
        effects = _effects(applied)
        return Decision(
            rule_type,
            policy,
            at,
            listed,
            misses,
            actions,
            outcome,
            effects.blocks,
            effects.destinations,
            effects.segments,
            effects.tags,
            dict(effects.fields),
        )


class _Effects(NamedTuple):
    blocks: tuple[BlockReason, ...] = ()
    destinations: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    fields: dict[str, JsonValue] = {}  # noqa: RUF012 - never mutated: decisions get a copy


def _effects(applied: list[CompiledRule]) -> _Effects:
    """Blocks, destinations, segments, tags and fields from the applied rules' actions."""
    blocks: list[BlockReason] = []
    destinations: dict[str, None] = {}  # ordered sets
    segments: dict[str, None] = {}
    tags: dict[str, None] = {}
    fields: dict[str, JsonValue] = {}
    for compiled in applied:
        rule = compiled.rule
        for action in rule.actions:
            if isinstance(action, Block):
                blocks.append(BlockReason(rule.id, rule.version, action.reason))
            elif isinstance(action, Route):
                destinations[action.destination] = None
            elif isinstance(action, AddToSegment):
                segments[action.segment] = None
            elif isinstance(action, TagFacts):
                tags[action.tag] = None
            elif isinstance(action, SetField):
                # rules apply highest priority first, and the first to set a field wins
                fields.setdefault(action.field, action.value)
    return _Effects(tuple(blocks), tuple(destinations), tuple(segments), tuple(tags), fields)


def _check_time(at: datetime, timezone: tzinfo) -> None:
    if at.utcoffset() is None:
        raise RuleEvaluationError("the evaluation time must be timezone-aware", field="at")
    try:
        # the first and last hours of the calendar cannot be moved to UTC or another zone
        at.astimezone(UTC)
        at.astimezone(timezone)
    except OverflowError:
        raise RuleEvaluationError(
            f"the evaluation time {at.isoformat()} is out of range", field="at"
        ) from None


_TYPE_NAMES: Final[dict[str, RuleType]] = {
    **{known: known for known in RULE_TYPES},
    "order_validation": "validation",
}


def _check_type(rule_type: str) -> RuleType:
    known = _TYPE_NAMES.get(rule_type) if type(rule_type) is str else None
    if known is not None:
        return known
    raise RuleEvaluationError(
        f"unknown rule type {rule_type!r}; expected one of {', '.join(RULE_TYPES)}",
        field="rule_type",
    )


def _check_policy(rule_type: str, policy: str) -> Policy:
    for allowed in POLICIES[rule_type]:
        if policy == allowed:
            return allowed
    raise RuleEvaluationError(
        f"policy {policy!r} does not apply to {rule_type} rules; "
        f"expected one of {', '.join(POLICIES[rule_type])}",
        field="policy",
    )
