"""Property-based: compiling any condition raises only DefinitionError, and evaluating a
compiled one is total on any data, at any moment (deep, huge, NaN, calendar edges)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eventrules.conditions import OPERATORS, Facts, compile_condition, parse_shorthand
from eventrules.errors import DefinitionError

SHORTHANDS = st.sampled_from(
    ["a > 1", "a == 'x'", "a in [1, 'a', null]", "a contains 'a'", "a between 0 and 10",
     "a.b matches '^x+$'", "a within_last '7d'", "a older_than '52w'", "a before '2026-01-01'",
     "a after '2026-01-01'", "a is_empty", "a.0.b exists", "x != 3", "dayOfWeek in [0, 6]",
     "hour > 3 and date == '2026-01-01'", "eventTime within_last '1d'", "a == [[1]]"]
)  # fmt: skip
CONDITIONS = st.recursive(
    SHORTHANDS,
    lambda children: (
        st.builds(lambda c: {"all": c}, st.lists(children, min_size=1, max_size=3))
        | st.builds(lambda c: {"any": c}, st.lists(children, min_size=1, max_size=3))
        | st.builds(lambda c: {"not": c}, children)
    ),
    max_leaves=6,
)

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
