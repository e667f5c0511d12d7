"""Conditions are bounded when they are validated, and total when they are evaluated."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from eventrules.conditions import (
    AllOf,
    Compare,
    Facts,
    Not,
    compile_condition,
    parse_condition,
    parse_shorthand,
)
from eventrules.errors import ConditionSyntaxError, DefinitionError, DefinitionLimitError
from eventrules.limits import Limits, limits_applied


def nested_groups(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"field": "x", "operator": "exists"}
    for level in range(depth):
        node = {"all" if level % 2 else "any": [node]}
    return node


def test_two_thousand_nots_are_a_limit_error_not_a_recursion_error() -> None:
    with pytest.raises(DefinitionLimitError) as caught:
        compile_condition("not " * 2000 + "x exists")
    # the text is longer than the shorthand limit: that is the first bound it meets
    assert caught.value.limit == "condition_max_chars"
    with pytest.raises(DefinitionLimitError) as caught:
        compile_condition("not " * 40 + "x exists")
    assert caught.value.limit == "condition_max_depth"
    assert "not" in str(caught.value)


def test_brackets_count_as_nesting_in_the_shorthand() -> None:
    with pytest.raises(DefinitionLimitError) as caught:
        parse_shorthand("(" * 33 + "x exists" + ")" * 33)
    assert caught.value.limit == "condition_max_depth"
    assert parse_shorthand("(" * 31 + "x exists" + ")" * 31) == Compare("x", "exists")


@pytest.mark.parametrize("depth", [33, 400, 5000])
def test_groups_nested_too_deep_are_a_limit_error(depth: int) -> None:
    with pytest.raises(DefinitionLimitError) as caught:
        parse_condition(nested_groups(depth))
    assert caught.value.limit == "condition_max_depth"
    (path, reason) = caught.value.problems[0]
    assert len(path.split(".")) == 2 * 32  # the path of the first node past the limit
    assert "deeper than 32" in reason


def test_the_depth_limit_is_exact() -> None:
    assert parse_condition(nested_groups(31)) is not None
    with pytest.raises(DefinitionLimitError):
        parse_condition(nested_groups(32))


def test_shorthand_inside_a_structured_tree_adds_its_depth() -> None:
    inner = "not " * 20 + "x exists"
    node: Any = inner
    for _ in range(15):
        node = {"not": node}
    with pytest.raises(DefinitionLimitError) as caught:
        parse_condition(node)
    assert caught.value.limit == "condition_max_depth"


def test_too_many_nodes_is_a_limit_error() -> None:
    wide = {"any": [{"field": f"f{i}", "operator": "exists"} for i in range(600)]}
    with pytest.raises(DefinitionLimitError) as caught:
        parse_condition(wide)
    assert caught.value.limit == "condition_max_nodes"
    chained = " or ".join(f"f{i} exists" for i in range(600))
    with (
        limits_applied(dataclasses.replace(Limits(), condition_max_chars=100_000)),
        pytest.raises(DefinitionLimitError) as caught,
    ):
        parse_condition(chained)
    assert caught.value.limit == "condition_max_nodes"


def test_limits_follow_the_active_settings() -> None:
    small = dataclasses.replace(Limits(), condition_max_depth=2, condition_max_chars=20)
    with limits_applied(small):
        with pytest.raises(DefinitionLimitError):
            parse_condition("not not not x exists")
        with pytest.raises(DefinitionLimitError) as caught:
            parse_condition("a exists and b exists and c exists")
        assert caught.value.limit == "condition_max_chars"
    assert parse_condition("not not not x exists") is not None


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        ("x within_last '99999999999w'", "100 years"),
        ({"field": "x", "operator": "older_than", "value": 1e300}, "100 years"),
        ({"field": "x", "operator": "within_last", "value": "36526d"}, "100 years"),
        ({"field": "x", "operator": "older_than", "value": float("inf")}, "finite"),
        ({"field": "x", "operator": "eq", "value": float("inf")}, "finite"),
        ({"field": "x", "operator": "in", "value": [1, float("nan")]}, "finite"),
        ({"field": "x", "operator": "gt", "value": 2**64}, "64 bits"),
        ({"field": "x", "operator": "eq", "value": {1: "a"}}, "keys must be strings"),
        ("x == 1e999", "finite"),
        ("x > " + "9" * 30, "64 bits"),
    ],
)
def test_values_out_of_range_are_definition_errors(condition: Any, reason: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        compile_condition(condition)
    assert reason in str(caught.value)


def test_numbers_python_cannot_convert_are_syntax_errors() -> None:
    with (
        limits_applied(dataclasses.replace(Limits(), condition_max_chars=100_000)),
        pytest.raises(ConditionSyntaxError, match="number out of range"),
    ):
        parse_shorthand("x == " + "9" * 5000)


def test_long_durations_up_to_the_limit_still_compile() -> None:
    compiled = compile_condition("seen within_last '36525d'")
    facts = Facts({"seen": "2000-01-01T00:00:00+00:00"}, datetime(2026, 1, 1, tzinfo=UTC))
    assert compiled.matches(facts) is True


def test_deeply_nested_values_are_refused() -> None:
    value: Any = 1
    for _ in range(100):
        value = [value]
    with pytest.raises(DefinitionError, match="deeper than 64"):
        compile_condition({"field": "x", "operator": "eq", "value": value})


def test_trees_built_in_code_are_checked_like_parsed_ones() -> None:
    deep: Any = Compare("x", "exists")
    for _ in range(3000):
        deep = Not(deep)
    with pytest.raises(DefinitionLimitError):
        compile_condition(deep)
    with pytest.raises(DefinitionError, match="unknown operator"):
        compile_condition(AllOf((Compare("x", "almost"), Compare("y", "exists"))))
    with pytest.raises(DefinitionError, match="100 years"):
        compile_condition(Compare("x", "older_than", "99999999999w"))


def test_compile_raises_only_definition_errors_for_odd_input() -> None:
    for raw in [None, 3, 2.5, b"x", object(), {"all": "x"}, {"not": None}, [[]], "", "(("]:
        with pytest.raises(DefinitionError):
            compile_condition(raw)
    with pytest.raises(ConditionSyntaxError):
        parse_shorthand("x == 1 and (")


EXTREME_MOMENTS = [
    datetime(1, 1, 1, tzinfo=UTC),
    datetime.fromisoformat("0001-01-01T00:00:00+14:00"),
    datetime.fromisoformat("9999-12-31T23:59:59-14:00"),
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
]
HOSTILE_VALUES: list[Any] = [
    float("nan"),
    float("inf"),
    -float("inf"),
    10**400,
    -(10**400),
    1e308,
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "x" * 100_000,
    [[[[[[[[[[[]]]]]]]]]]],
    {"a": {"b": {"c": [1, "2", None, True]}}},
    True,
    None,
]
CONDITIONS = [
    "x > 1",
    "x == 1",
    "x in [1, 'a', null]",
    "x contains 'a'",
    "x between 0 and 10",
    "x matches '^x+$'",
    "x within_last '7d'",
    "x older_than '52w'",
    "x before '2026-01-01'",
    "x after '2026-01-01'",
    "x is_empty",
    "dayOfWeek == 1 and hour > 3 and date == '2026-01-01'",
    {"field": "x", "operator": "eq", "value": [[1]]},
]


@pytest.mark.parametrize("condition", CONDITIONS)
def test_evaluation_is_total_on_hostile_values_and_moments(condition: Any) -> None:
    compiled = compile_condition(condition)
    for moment in EXTREME_MOMENTS:
        for zone in (None, ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Etc/GMT+12")):
            for value in HOSTILE_VALUES:
                facts = Facts({"x": value}, moment, None, zone)
                outcome = compiled.matches(facts)
                assert isinstance(outcome, bool)
                trace = compiled.explain(facts)
                assert trace.outcome is outcome
                assert all(len(leaf.reason) < 400 for leaf in trace.failing())


def test_relative_time_near_the_first_day_of_the_calendar() -> None:
    moment = datetime(1, 1, 2, tzinfo=UTC)
    facts = Facts({"x": "0001-01-01T12:00:00+00:00"}, moment)
    assert compile_condition("x within_last '30d'").matches(facts) is True
    assert compile_condition("x older_than '30d'").matches(facts) is False
    later = Facts({"x": "2000-01-01T00:00:00+00:00"}, moment + timedelta(days=800_000))
    assert compile_condition("x older_than '30d'").matches(later) is True
