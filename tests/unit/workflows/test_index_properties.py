"""Property-based: compiling raises only DefinitionError, evaluation is total on any data."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eventrules.conditions import OPERATORS, Facts, compile_condition, parse_shorthand
from eventrules.errors import ConditionSyntaxError, DefinitionError

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


HOSTILE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # far beyond 64 bits: in-process callers pass Python ints
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "x" * 5000]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "0", "x"]), children, max_size=3)
    ),
    max_leaves=40,
)
EXTREME_MOMENTS = st.one_of(
    st.none(),
    st.datetimes(timezones=st.just(UTC)),
    st.sampled_from(
        [
            datetime.fromisoformat("0001-01-01T00:00:00+14:00"),
            datetime.fromisoformat("9999-12-31T23:59:59-14:00"),
        ]
    ),
)


def deep(value: Any, depth: int) -> Any:
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


@settings(max_examples=300, deadline=None)
@given(
    condition=CONDITIONS,
    data=st.dictionaries(st.sampled_from(["a", "b", "x", "dayOfWeek", "eventTime"]), HOSTILE),
    moment=EXTREME_MOMENTS,
    depth=st.integers(min_value=0, max_value=300),
)
def test_evaluation_is_total_on_hostile_data(
    condition: dict[str, Any], data: dict[str, Any], moment: datetime | None, depth: int
) -> None:
    compiled = compile_condition(condition)
    facts = Facts({**data, "a": deep(data.get("a"), depth)}, moment)
    outcome = compiled.matches(facts)
    assert isinstance(outcome, bool)
    assert compiled.explain(facts).outcome is outcome


RAW_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=6),
    st.sampled_from(["99999999999w", "7d", "1e300", "-1s", "0s"]),
    st.lists(st.integers(), max_size=2),
)
RAW_LEAVES = st.one_of(
    st.fixed_dictionaries(
        {
            "field": st.sampled_from(["a", "a.b", "", "a..b", 3]),
            "operator": st.sampled_from([*sorted(OPERATORS), ">=", "nope", 1]),
        },
        optional={"value": RAW_VALUES, "extra": st.none()},
    ),
    st.text(alphabet="ab1 ()'=<>!notandorexists", max_size=20),
    st.none(),
    st.integers(),
)
RAW_TREES = st.recursive(
    RAW_LEAVES,
    lambda children: (
        st.builds(lambda c: {"all": c}, st.lists(children, max_size=3))
        | st.builds(lambda c: {"any": c}, children)
        | st.builds(lambda c: {"not": c}, children)
        | st.lists(children, max_size=3)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(raw=RAW_TREES, depth=st.integers(min_value=0, max_value=600))
def test_compiling_any_input_raises_only_definition_errors(raw: Any, depth: int) -> None:
    wrapped = raw
    for level in range(depth):
        wrapped = {"not": wrapped} if level % 3 else {"all": [wrapped]}
    try:
        compiled = compile_condition(wrapped)
    except DefinitionError:
        return
    assert isinstance(compiled.matches(Facts({"a": 1})), bool)


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet="ab01 .()[]'\"=<>!,andortin-xe", max_size=40),
    nots=st.integers(min_value=0, max_value=3000),
    brackets=st.integers(min_value=0, max_value=300),
)
def test_shorthand_of_any_depth_parses_or_raises_a_definition_error(
    text: str, nots: int, brackets: int
) -> None:
    source = "not " * nots + "(" * brackets + text + ")" * brackets
    with contextlib.suppress(DefinitionError):
        parse_shorthand(source)
