"""The predicate index gives exactly what testing every condition gives, in the given order."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.conftest import event, workflow

from eventrules import Engine, RulesEngine, TriggerCatalog, parse_rule
from eventrules.conditions import OPERATORS, Facts, compile_condition
from eventrules.conditions import index as index_module
from eventrules.conditions.index import ConditionIndex
from eventrules.errors import DefinitionError
from eventrules.rules import compile_rule

FIELDS = ["a", "b", "c.d", "dayOfWeek"]
# close and awkward numbers: equal int/float, adjacent floats, huge ints, infinities, zero signs
NUMBERS = st.sampled_from(
    [0, -0.0, 1, 1.0, 1.5, 2, -3, 2**53, 2**53 + 1, float(2**53), 1e308, math.inf, -math.inf]
) | st.integers(-4, 4)
STRINGS = st.sampled_from(["", "a", "a\x00", "ab", "b", "DE", "1", "true"])
SCALARS = st.one_of(NUMBERS, STRINGS, st.booleans(), st.none())
VALUES = st.one_of(
    SCALARS,
    st.just(math.nan),
    st.lists(st.one_of(NUMBERS, STRINGS), max_size=2),
    st.dictionaries(st.sampled_from(["d", "x"]), SCALARS, max_size=2),
)
ORDERABLE = st.one_of(NUMBERS, STRINGS)
OPERATOR_VALUES: dict[str, Any] = {
    "eq": st.one_of(SCALARS, st.lists(NUMBERS, max_size=2)),
    "ne": st.one_of(SCALARS, st.lists(NUMBERS, max_size=2)),
    "gt": ORDERABLE,
    "gte": ORDERABLE,
    "lt": ORDERABLE,
    "lte": ORDERABLE,
    "in": st.lists(st.one_of(SCALARS, st.lists(NUMBERS, max_size=1)), max_size=4),
    "not_in": st.lists(SCALARS, max_size=4),
    "contains": st.one_of(NUMBERS, STRINGS),
    "not_contains": STRINGS,
    "starts_with": STRINGS,
    "ends_with": STRINGS,
    "matches": st.sampled_from(["^a", "b$", r"\d"]),
    "exists": st.none(),
    "not_exists": st.none(),
    "between": st.sampled_from([[0, 2], [-1.5, 1.5], [1, 1], ["a", "b"], ["", "a"]]),
    "is_empty": st.none(),
    "is_not_empty": st.none(),
    "before": st.sampled_from(["2026-01-01"]),
    "after": st.sampled_from(["2026-01-01"]),
    "within_last": st.sampled_from(["1h", "7d"]),
    "older_than": st.sampled_from(["1s"]),
}
COMPARISONS = st.sampled_from(sorted(OPERATORS)).flatmap(
    lambda name: st.builds(
        lambda path, value: {"field": path, "operator": name, "value": value},
        st.sampled_from(FIELDS),
        OPERATOR_VALUES[name],
    )
)
# nested groups often read one field only, which the index folds into that field's masks
SAME_FIELD = st.sampled_from(FIELDS).flatmap(
    lambda path: st.lists(
        st.sampled_from(["eq", "ne", "gt", "lte", "in", "between", "exists", "is_empty"]).flatmap(
            lambda name: OPERATOR_VALUES[name].map(
                lambda value, name=name: {"field": path, "operator": name, "value": value}
            )
        ),
        min_size=1,
        max_size=3,
    )
)
CONDITIONS = st.recursive(
    COMPARISONS
    | SAME_FIELD.map(lambda members: {"any": members})
    | SAME_FIELD.map(lambda members: {"not": {"all": members}}),
    lambda children: (
        st.builds(lambda c: {"all": c}, st.lists(children, min_size=1, max_size=4))
        | st.builds(lambda c: {"any": c}, st.lists(children, min_size=1, max_size=3))
        | st.builds(lambda c: {"not": c}, children)
    ),
    max_leaves=6,
)
EVENT_DATA = st.fixed_dictionaries(
    {},
    optional={
        "a": VALUES,
        "b": VALUES,
        "c": st.one_of(st.fixed_dictionaries({}, optional={"d": VALUES}), VALUES),
        "dayOfWeek": VALUES,
    },
)


def _compiled(raw: Any) -> Any:
    try:
        return compile_condition(raw)
    except DefinitionError:  # an invalid draw (a list threshold) is simply not a member
        return None


def test_every_operator_has_a_value_strategy() -> None:
    assert set(OPERATOR_VALUES) == set(OPERATORS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    conditions=st.lists(st.one_of(st.none(), CONDITIONS), min_size=0, max_size=24),
    events=st.lists(EVENT_DATA, min_size=1, max_size=6),
)
def test_index_equals_testing_every_condition(
    conditions: list[Any], events: list[dict[str, Any]]
) -> None:
    _check_index(conditions, events)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    conditions=st.lists(st.one_of(st.none(), CONDITIONS), min_size=0, max_size=24),
    events=st.lists(EVENT_DATA, min_size=1, max_size=4),
)
def test_chunks_and_fields_too_wide_for_masks_change_nothing(
    conditions: list[Any], events: list[dict[str, Any]]
) -> None:
    # tiny limits: chunks of 7 members, and a field with a few literals is tested per member
    with patch.object(index_module, "_CHUNK", 7), patch.object(index_module, "_FIELD_BYTES", 300):
        _check_index(conditions, events)


def _check_index(conditions: list[Any], events: list[dict[str, Any]]) -> None:
    members = []
    for number, raw in enumerate(conditions):
        compiled = _compiled(raw) if raw is not None else None
        if raw is None or compiled is not None:
            members.append((number, compiled))
    index = ConditionIndex(members)
    moment = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    for data in events:
        facts = Facts(data, moment)
        naive = [n for n, c in members if c is None or c.matches(facts)]
        assert index.match(facts) == naive
        assert index.first(facts) == (naive[0] if naive else None)


def test_first_skips_members_whose_residual_fails() -> None:
    members = [
        (name, compile_condition(text))
        for name, text in [
            ("regex", 'a > 1 and b matches "^x"'),
            ("plain", "a > 1"),
            ("low", "a > 0"),
            ("none", "a > 5"),
            ("other", 'b == "y"'),
        ]
    ]
    index = ConditionIndex(members)
    assert index.first({"a": 2, "b": "y"}) == "plain"
    assert index.first({"a": 2, "b": "xy"}) == "regex"
    assert index.match({"a": 2, "b": "xy"}) == ["regex", "plain", "low"]
    assert index.match({"a": math.nan, "b": "y"}) == ["other"]


# conditions a definition accepts (ordering operators refuse lists and booleans)
VALID_CONDITIONS = CONDITIONS.filter(lambda raw: _compiled(raw) is not None)
TRIGGERS = st.sampled_from(["order.created", "order.updated", "scheduled.daily"])
_ABSENT = object()
# a tick names the scheduled workflow it is for, or none; any event may carry the field
ADDRESSED_DATA = st.tuples(
    EVENT_DATA, st.sampled_from([_ABSENT, None, "w00", "w01", "w11", "", 0, ["w00"]])
).map(lambda pair: pair[0] if pair[1] is _ABSENT else {**pair[0], "workflow_id": pair[1]})
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("upsert"),
            st.integers(0, 11),  # the definition's id: replacing and removing happen often
            st.one_of(st.none(), VALID_CONDITIONS),
            st.integers(1, 10),
            st.booleans(),
            TRIGGERS,
            st.booleans(),  # on a scheduled trigger: a schedule of its own
        ),
        st.tuples(st.just("remove"), st.integers(0, 11)),
        st.tuples(st.just("event"), ADDRESSED_DATA, TRIGGERS),
    ),
    max_size=40,
)


def _runs_on_tick(compiled: Any, data: dict[str, Any]) -> bool:
    """The scheduling rule written out: own schedule <=> addressed to this workflow."""
    target = data.get("workflow_id")
    if compiled.workflow.schedule is None:
        return target is None
    return bool(compiled.workflow.id == target)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=OPERATIONS)
def test_engine_matches_naively_through_updates_and_removals(operations: list[Any]) -> None:
    engine = Engine(TriggerCatalog.load())
    version = 0
    for operation in operations:
        if operation[0] == "upsert":
            _, number, condition, priority, enabled, trigger, own = operation
            version += 1
            engine.upsert(
                workflow(
                    id=f"w{number:02d}",
                    version=version,
                    conditions=condition,
                    priority=priority,
                    enabled=enabled,
                    trigger=trigger,
                    schedule="*/5 * * * *" if own and trigger.startswith("scheduled.") else None,
                )
            )
        elif operation[0] == "remove":
            engine.remove(f"w{operation[1]:02d}")
        else:
            _, data, trigger = operation
            subject = event(data, type=trigger)
            facts = engine.facts(subject)
            held = [engine._compiled[w.id] for w in engine.workflows()]
            naive = sorted(
                (
                    c
                    for c in held
                    if c.workflow.enabled
                    and c.workflow.trigger == trigger
                    and c.matches(facts)
                    and (not trigger.startswith("scheduled.") or _runs_on_tick(c, data))
                ),
                key=lambda c: c.order_key,
            )
            assert [c.workflow.id for c in engine.match(subject)] == [c.workflow.id for c in naive]


RULE_AT = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=OPERATIONS, expired=st.sets(st.integers(0, 11), max_size=3))
def test_rules_engine_matches_naively_through_updates_and_removals(
    operations: list[Any], expired: set[int]
) -> None:
    engine = RulesEngine()
    version = 0
    for operation in operations:
        if operation[0] == "upsert":
            _, number, condition, priority, enabled, _, _ = operation
            version += 1
            engine.upsert(
                parse_rule(
                    {
                        "id": f"r{number:02d}",
                        "version": version,
                        "name": "a rule",
                        "rule_type": "routing",
                        "conditions": condition,
                        "priority": priority,
                        "enabled": enabled,
                        "created_by": "tests",
                        "actions": [{"type": "route", "destination": f"q{number}"}],
                        # an expired window leaves the rule out, whatever its condition says
                        "valid_until": "2026-01-01T00:00:00Z" if number in expired else None,
                    }
                )
            )
        elif operation[0] == "remove":
            engine.remove(f"r{operation[1]:02d}")
        else:
            data = operation[1]
            facts = Facts(data, RULE_AT)
            live = sorted(
                (
                    compile_rule(rule)
                    for rule in engine.rules()
                    if rule.enabled and rule.window_miss(RULE_AT) is None
                ),
                key=lambda c: c.order_key,
            )
            naive = [c.rule.id for c in live if c.test is None or c.test(facts)]
            every = engine.evaluate("routing", data, at=RULE_AT, policy="collect")
            first = engine.evaluate("routing", data, at=RULE_AT, policy="first")
            assert every.matched_ids() == naive
            assert first.matched_ids() == naive[:1]
            assert first.destination == (every.destination if naive else None)
