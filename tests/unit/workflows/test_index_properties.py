"""Property-based: evaluation is total on arbitrary JSON event data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eventrules.conditions import OPERATORS, Facts, compile_condition, parse_shorthand
from eventrules.errors import ConditionSyntaxError

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "0", "x"]), children, max_size=4)
    ),
    max_leaves=12,
)
PATHS = st.sampled_from(["a", "b", "a.b", "a.0", "a.0.b", "x.x.x", "dayOfWeek", "eventTime"])
OPERATOR_VALUES: dict[str, Any] = {
    "eq": st.one_of(
        st.none(),
        st.booleans(),
        INT64,
        st.text(max_size=3),
        st.lists(INT64, max_size=2),
    ),
    "ne": st.one_of(st.none(), INT64, st.text(max_size=3)),
    "gt": st.one_of(INT64, st.text(max_size=3)),
    "gte": st.floats(allow_nan=False, allow_infinity=False),
    "lt": INT64,
    "lte": st.text(max_size=3),
    "in": st.lists(
        st.one_of(st.none(), INT64, st.text(max_size=2), st.lists(INT64, max_size=2)),
        max_size=3,
    ),
    "not_in": st.lists(INT64, max_size=3),
    "contains": st.one_of(INT64, st.text(max_size=3), st.none()),
    "not_contains": st.text(max_size=3),
    "starts_with": st.text(max_size=3),
    "ends_with": st.text(max_size=3),
    "matches": st.sampled_from([".*", "^a", r"\d+$", "(a|b)+"]),
    "exists": st.none(),
    "not_exists": st.none(),
    "between": st.sampled_from([[0, 10], [-1.5, 2], ["a", "m"]]),
    "is_empty": st.none(),
    "is_not_empty": st.none(),
    "before": st.sampled_from(["2026-01-01", "1970-01-01T00:00:00+05:00"]),
    "after": st.sampled_from(["2026-01-01", "9999-12-31T00:00:00Z"]),
    "within_last": st.sampled_from(["1h", "7d", 30]),
    "older_than": st.sampled_from(["1s", "52w", 0.5]),
}
COMPARISONS = st.sampled_from(sorted(OPERATORS)).flatmap(
    lambda name: st.builds(
        lambda path, value: {"field": path, "operator": name, "value": value},
        PATHS,
        OPERATOR_VALUES[name],
    )
)
CONDITIONS = st.recursive(
    COMPARISONS,
    lambda children: (
        st.builds(lambda c: {"all": c}, st.lists(children, min_size=1, max_size=3))
        | st.builds(lambda c: {"any": c}, st.lists(children, min_size=1, max_size=3))
        | st.builds(lambda c: {"not": c}, children)
    ),
    max_leaves=5,
)


def test_every_operator_has_a_value_strategy() -> None:
    assert set(OPERATOR_VALUES) == set(OPERATORS)


@settings(max_examples=400, deadline=None)
@given(
    condition=CONDITIONS,
    data=st.dictionaries(st.sampled_from(["a", "b", "x", "dayOfWeek", "eventTime"]), JSON),
    moment=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
)
def test_evaluation_never_raises_and_explain_agrees(
    condition: dict[str, Any], data: dict[str, Any], moment: datetime | None
) -> None:
    compiled = compile_condition(condition)
    facts = Facts(data, moment)
    outcome = compiled.matches(facts)
    assert isinstance(outcome, bool)
    trace = compiled.explain(facts)
    assert trace.outcome is outcome
    assert isinstance(trace.to_dict(), dict)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab01 .()[]'\"=<>!,andortin-xe", max_size=30))
def test_shorthand_parser_either_parses_or_raises_syntax_error(text: str) -> None:
    try:
        parse_shorthand(text)
    except ConditionSyntaxError as exc:
        column = exc.column
    else:
        return
    assert 0 <= column <= len(text)
