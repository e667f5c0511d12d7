"""Every operator, including kind mismatches and missing fields, plus groups and paths."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from eventrules.conditions import (
    MISSING,
    OPERATORS,
    Facts,
    canonical_operator,
    compile_condition,
    parse_condition,
)
from eventrules.errors import DefinitionError

NOW = datetime(2026, 1, 10, 14, 30, tzinfo=UTC)

# (actual value or MISSING, operator, definition value, expected outcome)
CASES: list[tuple[Any, str, Any, bool]] = [
    (5, "eq", 5, True),
    (5.0, "eq", 5, True),
    ("5", "eq", 5, False),
    (True, "eq", 1, False),
    (1, "eq", True, False),
    (None, "eq", None, True),
    ([1, 2], "eq", [1, 2], True),
    ([1, True], "eq", [1, 1], False),
    ({"a": 1}, "eq", {"a": 1}, True),
    (MISSING, "eq", None, False),
    ("DE", "ne", "FR", True),
    ("DE", "ne", "DE", False),
    (5, "ne", "5", True),
    (MISSING, "ne", "x", False),
    (11, "gt", 10, True),
    (10, "gt", 10, False),
    ("11", "gt", 10, False),
    (True, "gt", 0, False),
    (None, "gt", 0, False),
    ("b", "gt", "a", True),
    (10, "gte", 10, True),
    (9.5, "gte", 10, False),
    (9, "lt", 10, True),
    ("9", "lt", 10, False),
    (10, "lte", 10, True),
    (MISSING, "lte", 10, False),
    (6, "in", [6, 0], True),
    ("6", "in", [6, 0], False),
    (True, "in", [1], False),
    (None, "in", [None], True),
    ([1], "in", [[1], 2], True),
    (MISSING, "in", [1], False),
    (3, "not_in", [6, 0], True),
    (6, "not_in", [6, 0], False),
    ("6", "not_in", [6, 0], True),
    (MISSING, "not_in", [1], False),
    ("hello world", "contains", "lo w", True),
    (["a", "b"], "contains", "b", True),
    ([1, 2], "contains", True, False),
    (12345, "contains", "23", False),
    (MISSING, "contains", "x", False),
    ("hello", "not_contains", "z", True),
    (["a"], "not_contains", "a", False),
    (12345, "not_contains", "9", False),
    ("hello", "starts_with", "he", True),
    ("hello", "starts_with", "lo", False),
    (123, "starts_with", "1", False),
    ("hello", "ends_with", "lo", True),
    (["lo"], "ends_with", "lo", False),
    ("order-1234", "matches", r"^order-\d+$", True),
    ("order-x", "matches", r"^order-\d+$", False),
    (1234, "matches", r"\d+", False),
    ("a" * 5000 + "!", "matches", r"(a+)+$", False),
    (0, "exists", None, True),
    (None, "exists", None, False),
    (MISSING, "exists", None, False),
    (MISSING, "not_exists", None, True),
    (None, "not_exists", None, True),
    ("", "not_exists", None, False),
    (5, "between", [1, 10], True),
    (10, "between", [1, 10], True),
    (11, "between", [1, 10], False),
    ("5", "between", [1, 10], False),
    ("10:30", "between", ["09:00", "17:00"], True),
    (MISSING, "is_empty", None, True),
    ("", "is_empty", None, True),
    ([], "is_empty", None, True),
    ({}, "is_empty", None, True),
    (0, "is_empty", None, False),
    ("x", "is_empty", None, False),
    ([0], "is_not_empty", None, True),
    (None, "is_not_empty", None, False),
    ("2026-01-01T00:00:00Z", "before", "2026-01-02", True),
    ("2026-01-03", "before", "2026-01-02", False),
    (1767225600000, "before", "2026-01-02", True),  # epoch ms for 2026-01-01
    ("not a date", "before", "2026-01-02", False),
    (True, "before", "2026-01-02", False),
    ("2026-01-03T10:00:00+02:00", "after", "2026-01-03T07:00:00Z", True),
    (MISSING, "after", "2026-01-01", False),
    ("2026-01-09T15:00:00Z", "within_last", "24h", True),
    ("2026-01-08T15:00:00Z", "within_last", "24h", False),
    ("2026-01-11T00:00:00Z", "within_last", "7d", False),  # the future is not "last"
    ("2026-01-01T00:00:00Z", "older_than", "7d", True),
    ("2026-01-09T00:00:00Z", "older_than", "7d", False),
    (42, "older_than", "7d", True),  # epoch ms near 1970
    ("soon", "older_than", "1d", False),
]


@pytest.mark.parametrize(("actual", "operator", "value", "expected"), CASES)
def test_operator_outcome(actual: Any, operator: str, value: Any, expected: bool) -> None:
    condition = compile_condition({"field": "x", "operator": operator, "value": value})
    data = {} if actual is MISSING else {"x": actual}
    facts = Facts(data, NOW)
    assert condition.matches(facts) is expected
    trace = condition.explain(facts)
    assert trace.outcome is expected
    assert trace.actual == actual


def test_cases_cover_every_operator() -> None:
    assert {operator for _, operator, _, _ in CASES} == set(OPERATORS)
    assert len(OPERATORS) >= 15


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({}, "field is missing"),
        ({"x": "10"}, "type mismatch: string value"),
        ({"x": True}, "type mismatch: boolean value"),
        ({"x": None}, "type mismatch: null value"),
    ],
)
def test_mismatch_reason_is_named(data: dict[str, Any], fragment: str) -> None:
    trace = compile_condition("x > 5").explain(data)
    assert trace.outcome is False
    assert fragment in trace.reason


def test_matching_reason_shows_operand_value() -> None:
    trace = compile_condition("x > 5").explain({"x": 7})
    assert trace.outcome is True
    assert trace.reason == "x = 7, so 'x > 5' is true"
    assert trace.to_dict()["actual"] == 7


def test_relative_operator_without_reference_time_is_a_non_match() -> None:
    condition = compile_condition("seen within_last '1d'")
    facts = {"seen": "2026-01-10T00:00:00Z"}
    assert condition.matches(facts) is False
    assert "no usable eventTime" in condition.explain(facts).reason


def test_regex_must_be_valid_re2() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_condition({"field": "x", "operator": "matches", "value": r"(a)\1"})
    assert caught.value.problems[0][0] == "value"
    assert "invalid RE2" in caught.value.problems[0][1]


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        ({"field": "x", "operator": "between", "value": [5, 1]}, "value", "greater than high"),
        ({"field": "x", "operator": "in", "value": 3}, "value", "expected a list"),
        ({"field": "x", "operator": "exists", "value": 3}, "value", "takes no value"),
        ({"field": "x", "operator": "gt"}, "value", "required by operator gt"),
        ({"field": "x", "operator": "gt", "value": [1]}, "value", "number or a string"),
        ({"field": "x", "operator": "within_last", "value": "soon"}, "value", "duration"),
        ({"field": "x", "operator": "before", "value": "tomorrow"}, "value", "ISO-8601"),
        ({"field": "a..b", "operator": "eq", "value": 1}, "field", "dotted path"),
        ({"operator": "eq", "value": 1}, "field", "required"),
        ({"field": "x", "operator": "~", "value": 1}, "operator", "unknown operator"),
        ({"field": "x", "operator": "eq", "value": 1, "extra": 1}, "", "unknown keys"),
        ({"all": []}, "all", "empty group"),
        ({"any": [{"field": "x", "operator": "nope"}]}, "any.0.operator", "unknown operator"),
        ({"all": [], "any": []}, "", "takes no other keys"),
        (42, "", "expected a condition"),
    ],
)
def test_invalid_structured_condition_names_the_path(raw: Any, path: str, fragment: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_condition(raw)
    paths = [problem_path for problem_path, _ in caught.value.problems]
    assert path in paths
    assert any(fragment in reason for _, reason in caught.value.problems)


def test_operator_spellings_are_aliases() -> None:
    assert canonical_operator(">=") == "gte"
    assert canonical_operator("greater_than") == "gt"
    assert canonical_operator("EQUALS") == "eq"
    with pytest.raises(ValueError, match="unknown operator"):
        canonical_operator("≈")


def test_nested_groups_of_any_depth() -> None:
    condition = compile_condition(
        {
            "any": [
                {"all": ["a == 1", {"not": {"any": ["b == 1", "c == 1"]}}]},
                {"not": {"not": {"field": "d", "operator": "exists"}}},
            ]
        }
    )
    assert condition.matches({"a": 1}) is True
    assert condition.matches({"a": 1, "b": 1}) is False
    assert condition.matches({"a": 2, "d": 0}) is True
    assert condition.matches({}) is False


def test_list_is_an_implicit_all() -> None:
    condition = compile_condition(["a > 1", {"field": "b", "operator": "==", "value": "x"}])
    assert condition.matches({"a": 2, "b": "x"}) is True
    assert condition.matches({"a": 2, "b": "y"}) is False


def test_explain_evaluates_every_child_and_lists_failures() -> None:
    trace = compile_condition("a > 1 and b == 'x' and c exists").explain({"a": 0, "c": 1})
    assert trace.kind == "all"
    assert [child.outcome for child in trace.children] == [False, False, True]
    assert [leaf.text for leaf in trace.failing()] == ["a > 1", 'b == "x"']
    assert trace.to_dict()["children"][1]["missing"] is True


@pytest.mark.parametrize(
    ("path", "data", "expected"),
    [
        ("user.orderCount", {"user": {"orderCount": 0}}, 0),
        ("items.0.sku", {"items": [{"sku": "A1"}]}, "A1"),
        ("items.1.sku", {"items": [{"sku": "A1"}]}, MISSING),
        ("items.x", {"items": [1]}, MISSING),
        ("name.first", {"name": "Ada"}, MISSING),
        ("codes.7", {"codes": {"7": "seven"}}, "seven"),
    ],
)
def test_dotted_paths(path: str, data: dict[str, Any], expected: Any) -> None:
    trace = compile_condition({"field": path, "operator": "exists"}).explain(data)
    assert trace.actual == expected


def test_derived_time_facts_follow_javascript_day_numbering() -> None:
    saturday = Facts({}, datetime(2026, 1, 10, 9, 5, tzinfo=UTC))
    sunday = Facts({}, datetime(2026, 1, 11, 23, 59, tzinfo=UTC))
    monday = Facts({}, datetime(2026, 1, 12, 0, 0, tzinfo=UTC))
    weekend = compile_condition("dayOfWeek in [6, 0]")
    assert [weekend.matches(f) for f in (saturday, sunday, monday)] == [True, True, False]
    assert (saturday["dayOfWeek"], sunday["dayOfWeek"], monday["dayOfWeek"]) == (6, 0, 1)
    assert saturday["date"] == "2026-01-10"
    assert saturday["time"] == "09:05"
    assert saturday["hour"] == 9
    assert saturday["isWeekend"] is True
    assert compile_condition("time between ['09:00', '17:00']").matches(saturday)


def test_event_data_wins_over_a_derived_fact() -> None:
    facts = Facts({"hour": "lunch"}, NOW)
    assert facts["hour"] == "lunch"
    assert compile_condition("dayOfWeek == 6").matches(facts)


def test_unknown_fact_is_missing_not_an_error() -> None:
    assert compile_condition("nothing not_exists").matches(Facts({}, NOW))
    with pytest.raises(KeyError):
        Facts({}, None)["hour"]


def test_compiled_condition_reports_its_conjuncts() -> None:
    condition = compile_condition("a == 1 and (b > 2 and c < 3) and (d == 1 or e == 1)")
    assert [type(c.node).__name__ for c in condition.conjuncts] == [
        "Compare",
        "Compare",
        "Compare",
        "AnyOf",
    ]
