"""The value kinds conditions reason about, the missing-value sentinel, and time parsing.

Values come from JSON, so a value is one of: null, boolean, number, string, array, object,
plus datetime for derived facts. ``bool`` is deliberately not a number here even though Python
makes it a subclass of ``int``: ``true > 0`` is a type mismatch, not a comparison.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

__all__ = [
    "MAX_DURATION",
    "MISSING",
    "NUMBER_TYPES",
    "Missing",
    "is_number",
    "kind_of",
    "parse_duration",
    "to_instant",
]

NUMBER_TYPES: Final = frozenset({int, float})


class Missing:
    """The single value a path resolves to when the event data has nothing there."""

    _instance: Missing | None = None

    def __new__(cls) -> Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<missing>"

    def __bool__(self) -> bool:
        return False


MISSING: Final = Missing()


def is_number(value: object) -> bool:
    """True for int and float (NaN excluded), false for bool."""
    kind = type(value)
    if kind is int:
        return True
    return kind is float and not math.isnan(value)  # type: ignore[arg-type]


def kind_of(value: object) -> str:
    """The JSON-ish kind name used in mismatch reasons and strict equality."""
    if value is MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def to_instant(value: object) -> datetime | None:
    """A tz-aware datetime from a datetime, date, ISO-8601 string or epoch-milliseconds number.

    Naive values are taken as UTC. Numbers are epoch milliseconds because the seed stores
    ``Date.now()`` values. Anything else (or an unparsable string) gives None.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    if is_number(value):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)  # type: ignore[operator]
        except (OverflowError, OSError, ValueError):
            return None
    return None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# far beyond any business window, and far inside what datetime arithmetic can represent
MAX_DURATION: Final = timedelta(days=36_525)


def parse_duration(value: Any) -> timedelta:
    """A positive duration up to 100 years (:data:`MAX_DURATION`) from seconds (a number) or
    ``"<n><unit>"`` with unit s, m, h, d or w."""
    seconds: float | None = None
    if is_number(value) and value > 0:
        seconds = float(value)
    elif isinstance(value, str):
        found = _DURATION.match(value)
        if found and float(found.group(1)) > 0:
            seconds = float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    if seconds is None:
        raise ValueError(
            "expected a positive duration such as 30m, 24h, 7d or a number of seconds, "
            f"got {value!r}"
        )
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {value!r} is longer than the maximum of 100 years (36525d)")
    return timedelta(seconds=seconds)
