"""The operator registry: what each operator accepts, how its value is checked, how it tests.

Every test is total: it takes any JSON value (or :data:`MISSING`) and returns a bool. A value of
the wrong kind is a non-match; :func:`mismatch_reason` says why when a trace is asked for.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import re2

from eventrules.conditions.values import (
    MISSING,
    NUMBER_TYPES,
    is_number,
    kind_of,
    parse_duration,
    to_instant,
)

__all__ = [
    "OPERATORS",
    "Operator",
    "canonical_operator",
    "mismatch_reason",
    "strict_equal",
]

Test = Callable[[Any], bool]
RelativeTest = Callable[[Any, datetime | None], bool]


@dataclass(frozen=True, slots=True)
class Operator:
    """One comparison operator.

    ``prepare`` validates and normalises the definition's value (raising ValueError with the
    reason); ``make_test`` turns the prepared value into a one-argument test on the actual value.
    Relative time operators take the reference time as a second argument instead. ``accepts``
    tells a trace whether a false outcome is a real "no" or a kind mismatch.
    """

    name: str
    aliases: tuple[str, ...]
    summary: str
    takes_value: bool
    prepare: Callable[[Any], Any]
    make_test: Callable[[Any], Test] | None = None
    make_relative_test: Callable[[Any], RelativeTest] | None = None
    accepts: Callable[[Any, Any], bool] = field(kw_only=True)


def strict_equal(left: Any, right: Any) -> bool:
    """JSON equality without Python's coercions: ``1 != True``, ``"1" != 1``, ``1 == 1.0``."""
    left_kind, right_kind = kind_of(left), kind_of(right)
    if left_kind != right_kind:
        return False
    if left_kind == "array":
        return len(left) == len(right) and all(
            strict_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    if left_kind == "object":
        return left.keys() == right.keys() and all(strict_equal(left[k], right[k]) for k in left)
    if left_kind == "number" and (math.isnan(left) or math.isnan(right)):
        return False
    return bool(left == right)


def _any_value(value: Any) -> Any:
    return value


def _no_value(value: Any) -> None:
    if value is not None:
        raise ValueError("this operator takes no value")


def _scalar(value: Any) -> Any:
    if value is None or is_number(value) or isinstance(value, str | bool):
        return value
    raise ValueError(f"expected a string, number, boolean or null, got {kind_of(value)}")


def _orderable(value: Any) -> Any:
    if is_number(value) or isinstance(value, str):
        return value
    raise ValueError(f"expected a number or a string, got {kind_of(value)}")


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a string, got {kind_of(value)}")


def _array(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    raise ValueError(f"expected a list of values, got {kind_of(value)}")


def _range(value: Any) -> tuple[Any, Any]:
    items = _array(value)
    if len(items) != 2:
        raise ValueError("expected [low, high], two values")
    low, high = items
    if not (
        (is_number(low) and is_number(high)) or (isinstance(low, str) and isinstance(high, str))
    ):
        raise ValueError("low and high must both be numbers or both be strings")
    if low > high:
        raise ValueError(f"low {low!r} is greater than high {high!r}")
    return low, high


def _instant(value: Any) -> datetime:
    if isinstance(value, str):
        instant = to_instant(value)
        if instant is not None:
            return instant
    raise ValueError(f"expected an ISO-8601 date or date-time string, got {value!r}")


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def _pattern(value: Any) -> Any:
    text = _string(value)
    try:
        return re2.compile(text, _RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(f"invalid RE2 regular expression {text!r}: {detail}") from None


def _same_kind(actual: Any, expected: Any) -> bool:
    if is_number(expected):
        return is_number(actual)
    return type(actual) is type(expected)


def _eq(expected: Any) -> Test:
    if isinstance(expected, str):
        return lambda actual: type(actual) is str and actual == expected
    if isinstance(expected, bool) or expected is None:
        return lambda actual: actual is expected
    if is_number(expected):
        return lambda actual: type(actual) in NUMBER_TYPES and actual == expected
    return lambda actual: strict_equal(actual, expected)


def _ne(expected: Any) -> Test:
    equal = _eq(expected)
    return lambda actual: actual is not MISSING and not equal(actual)


def _ordering(compare: Callable[[Any, Any], bool]) -> Callable[[Any], Test]:
    def make(expected: Any) -> Test:
        if isinstance(expected, str):
            return lambda actual: type(actual) is str and compare(actual, expected)
        return lambda actual: type(actual) in NUMBER_TYPES and compare(actual, expected)

    return make


def _membership(expected: list[Any]) -> Test:
    # one pass by exact type: lists of a hundred values are common and compiled per definition
    by_kind: dict[type, list[Any]] = {}
    for value in expected:
        by_kind.setdefault(type(value), []).append(value)
    strings = frozenset(by_kind.get(str, ()))
    numbers = frozenset(v for kind in NUMBER_TYPES for v in by_kind.get(kind, ()) if is_number(v))
    booleans = frozenset(by_kind.get(bool, ()))
    has_null = type(None) in by_kind
    others = [v for v in expected if isinstance(v, list | tuple | Mapping)]

    def member(actual: Any) -> bool:
        kind = type(actual)
        if kind is str:
            return actual in strings
        if kind in NUMBER_TYPES:
            return actual in numbers
        if kind is bool:
            return actual in booleans
        if actual is None:
            return has_null
        return any(strict_equal(actual, other) for other in others)

    return member


def _not_membership(expected: list[Any]) -> Test:
    member = _membership(expected)
    return lambda actual: actual is not MISSING and not member(actual)


def _contains(expected: Any) -> Test:
    def contains(actual: Any) -> bool:
        if type(actual) is str:
            return isinstance(expected, str) and expected in actual
        if type(actual) is list:
            return any(strict_equal(item, expected) for item in actual)
        return False

    return contains


def _contains_accepts(actual: Any, expected: Any) -> bool:
    return type(actual) is list or (type(actual) is str and isinstance(expected, str))


def _not_contains(expected: Any) -> Test:
    contains = _contains(expected)
    return lambda actual: _contains_accepts(actual, expected) and not contains(actual)


def _starts_with(expected: str) -> Test:
    return lambda actual: type(actual) is str and actual.startswith(expected)


def _ends_with(expected: str) -> Test:
    return lambda actual: type(actual) is str and actual.endswith(expected)


def _matches(pattern: Any) -> Test:
    return lambda actual: type(actual) is str and pattern.search(actual) is not None


def _exists(_: None) -> Test:
    return lambda actual: actual is not MISSING and actual is not None


def _not_exists(_: None) -> Test:
    return lambda actual: actual is MISSING or actual is None


def _is_empty_value(actual: Any) -> bool:
    if actual is MISSING or actual is None:
        return True
    if type(actual) in (str, list, dict):
        return len(actual) == 0
    return False


def _is_empty(_: None) -> Test:
    return _is_empty_value


def _is_not_empty(_: None) -> Test:
    return lambda actual: not _is_empty_value(actual)


def _between(bounds: tuple[Any, Any]) -> Test:
    low, high = bounds
    if isinstance(low, str):
        return lambda actual: type(actual) is str and low <= actual <= high
    return lambda actual: type(actual) in NUMBER_TYPES and low <= actual <= high


def _instant_comparison(compare: Callable[[datetime, datetime], bool]) -> Callable[[Any], Test]:
    def make(expected: datetime) -> Test:
        def test(actual: Any) -> bool:
            instant = to_instant(actual) if actual is not MISSING else None
            return instant is not None and compare(instant, expected)

        return test

    return make


def _window_start(reference: datetime, duration: timedelta) -> datetime | None:
    try:
        return reference - duration
    except OverflowError:  # a reference time near year 1: nothing can be that old
        return None


def _within_last(duration: timedelta) -> RelativeTest:
    def within(actual: Any, reference: datetime | None) -> bool:
        instant = to_instant(actual) if actual is not MISSING else None
        if instant is None or reference is None:
            return False
        start = _window_start(reference, duration)
        return (start is None or start <= instant) and instant <= reference

    return within


def _older_than(duration: timedelta) -> RelativeTest:
    def older(actual: Any, reference: datetime | None) -> bool:
        instant = to_instant(actual) if actual is not MISSING else None
        if instant is None or reference is None:
            return False
        start = _window_start(reference, duration)
        return start is not None and instant < start

    return older


def _is_instant(actual: Any, _: Any) -> bool:
    return actual is not MISSING and to_instant(actual) is not None


def _is_string(actual: Any, _: Any) -> bool:
    return type(actual) is str


def _always(actual: Any, _: Any) -> bool:
    return True


def _present(actual: Any, _: Any) -> bool:
    return actual is not MISSING


def _between_accepts(actual: Any, bounds: tuple[Any, Any]) -> bool:
    return _same_kind(actual, bounds[0])


def _member_accepts(actual: Any, _: Any) -> bool:
    return actual is not MISSING


def _eq_accepts(actual: Any, expected: Any) -> bool:
    return kind_of(actual) == kind_of(expected)


def _ordering_accepts(actual: Any, expected: Any) -> bool:
    return _same_kind(actual, expected)


_ORDER_SUMMARY = "numbers with numbers, strings with strings (lexicographic)"

OPERATORS: Final[Mapping[str, Operator]] = {
    op.name: op
    for op in (
        Operator(
            "eq",
            ("==", "=", "equals"),
            "equal, same kind (1 == 1.0, 1 != true)",
            True,
            _any_value,
            _eq,
            accepts=_eq_accepts,
        ),
        Operator(
            "ne",
            ("!=", "not_equals"),
            "present and not equal (other kinds are unequal)",
            True,
            _any_value,
            _ne,
            accepts=_present,
        ),
        Operator(
            "gt",
            (">", "greater_than"),
            _ORDER_SUMMARY,
            True,
            _orderable,
            _ordering(lambda a, b: a > b),
            accepts=_ordering_accepts,
        ),
        Operator(
            "gte",
            (">=", "greater_than_or_equal"),
            _ORDER_SUMMARY,
            True,
            _orderable,
            _ordering(lambda a, b: a >= b),
            accepts=_ordering_accepts,
        ),
        Operator(
            "lt",
            ("<", "less_than"),
            _ORDER_SUMMARY,
            True,
            _orderable,
            _ordering(lambda a, b: a < b),
            accepts=_ordering_accepts,
        ),
        Operator(
            "lte",
            ("<=", "less_than_or_equal"),
            _ORDER_SUMMARY,
            True,
            _orderable,
            _ordering(lambda a, b: a <= b),
            accepts=_ordering_accepts,
        ),
        Operator(
            "in",
            ("one_of",),
            "equal (same kind) to one of the listed values",
            True,
            _array,
            _membership,
            accepts=_member_accepts,
        ),
        Operator(
            "not_in",
            ("none_of",),
            "present and equal to none of the listed values",
            True,
            _array,
            _not_membership,
            accepts=_member_accepts,
        ),
        Operator(
            "contains",
            (),
            "substring of a string, or element of an array",
            True,
            _scalar,
            _contains,
            accepts=_contains_accepts,
        ),
        Operator(
            "not_contains",
            (),
            "string or array that does not contain the value",
            True,
            _scalar,
            _not_contains,
            accepts=_contains_accepts,
        ),
        Operator(
            "starts_with", (), "string prefix", True, _string, _starts_with, accepts=_is_string
        ),
        Operator("ends_with", (), "string suffix", True, _string, _ends_with, accepts=_is_string),
        Operator(
            "matches",
            ("regex",),
            "RE2 regular expression found in the string",
            True,
            _pattern,
            _matches,
            accepts=_is_string,
        ),
        Operator("exists", (), "present and not null", False, _no_value, _exists, accepts=_always),
        Operator(
            "not_exists", (), "missing or null", False, _no_value, _not_exists, accepts=_always
        ),
        Operator(
            "between",
            (),
            "low <= value <= high, same kind as the bounds",
            True,
            _range,
            _between,
            accepts=_between_accepts,
        ),
        Operator(
            "is_empty",
            ("empty",),
            'missing, null, "", [] or {}',
            False,
            _no_value,
            _is_empty,
            accepts=_always,
        ),
        Operator(
            "is_not_empty",
            ("not_empty",),
            "anything is_empty is not",
            False,
            _no_value,
            _is_not_empty,
            accepts=_always,
        ),
        Operator(
            "before",
            (),
            "date-time earlier than the given ISO-8601 instant",
            True,
            _instant,
            _instant_comparison(operator.lt),
            accepts=_is_instant,
        ),
        Operator(
            "after",
            (),
            "date-time later than the given ISO-8601 instant",
            True,
            _instant,
            _instant_comparison(operator.gt),
            accepts=_is_instant,
        ),
        Operator(
            "within_last",
            (),
            "date-time in [eventTime - duration, eventTime]",
            True,
            parse_duration,
            make_relative_test=_within_last,
            accepts=_is_instant,
        ),
        Operator(
            "older_than",
            (),
            "date-time earlier than eventTime - duration",
            True,
            parse_duration,
            make_relative_test=_older_than,
            accepts=_is_instant,
        ),
    )
}

_BY_SPELLING: Final = {
    spelling: op.name for op in OPERATORS.values() for spelling in (op.name, *op.aliases)
}


def canonical_operator(spelling: str) -> str:
    """The canonical name of an operator given any of its spellings (``>=``, ``gte``, ...)."""
    try:
        return _BY_SPELLING[spelling.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(OPERATORS))
        raise ValueError(f"unknown operator {spelling!r}; known operators: {known}") from None


def mismatch_reason(operator: Operator, actual: Any, prepared: Any) -> str | None:
    """Why ``actual`` cannot satisfy ``operator`` at all, or None when the kinds fit."""
    if actual is MISSING and operator.accepts is not _always:
        return "field is missing"
    if operator.accepts(actual, prepared):
        return None
    return (
        f"type mismatch: {kind_of(actual)} value, operator {operator.name} needs {operator.summary}"
    )
