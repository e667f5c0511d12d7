"""Workflows with memory: the ``throttle``, ``dedupe`` and ``absence`` blocks and action ``delay``.

Durations are written the way people say them: ``6h``, ``24h``, ``30m``, ``1h30m``, ``2d``,
``45s`` (also ``500ms`` and ``1w``), or a number of seconds. Every window is measured on the
events' own ``time`` (the CloudEvents time, else the record timestamp), so a replay or a
simulation over past events reaches the decisions the live run reached.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, field_validator

__all__ = [
    "MAX_DURATION",
    "Absence",
    "Dedupe",
    "Duration",
    "Throttle",
    "format_duration",
    "parse_duration",
]

# Timers and windows longer than a year are a typo more often than a wish.
MAX_DURATION: Final = timedelta(days=366)
_UNITS: Final = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE: Final = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$")
_MATCH_PATH: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")


def parse_duration(raw: Any) -> timedelta:
    """``"1h30m"`` -> 90 minutes; a number is seconds. Raises ValueError naming the problem."""
    if isinstance(raw, timedelta):
        seconds = raw.total_seconds()
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        seconds = float(raw)
    elif isinstance(raw, str) and _WHOLE.match(raw.strip().lower()):
        text = raw.strip().lower()
        seconds = sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(text))
    else:
        raise ValueError(f"not a duration: {raw!r} (e.g. 30s, 15m, 6h, 1h30m, 2d)")
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {raw!r}")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"a duration must be at most {MAX_DURATION.days} days, got {raw!r}")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest spelling ``parse_duration`` reads back: ``6h``, ``1h30m``, ``2.5s``."""
    remaining = value.total_seconds()
    parts = []
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{int(count)}{unit}")
    if remaining or not parts:
        parts.append(f"{remaining:g}s")
    return "".join(parts)


def _validate_duration(raw: Any) -> timedelta:
    return parse_duration(raw)


Duration = Annotated[
    timedelta,
    PlainValidator(_validate_duration, json_schema_input_type=str),
    PlainSerializer(format_duration, return_type=str),
]


class _Block(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Throttle(_Block):
    """At most ``limit`` runs per rendered ``key`` in any window of length ``per``."""

    key: str = Field(
        min_length=1, description='What is counted: a template, e.g. `"{{ productId }}"`.'
    )
    limit: int = Field(default=1, ge=1, le=10_000, description="Runs allowed per window.")
    per: Duration = Field(description="The window's length.")


class Dedupe(_Block):
    """One run per rendered ``key`` within ``within`` of the first; later ones are duplicates."""

    key: str = Field(
        min_length=1, description='What identifies a duplicate: a template, e.g. `"{{ orderId }}"`.'
    )
    within: Duration = Field(description="How long after the first run a key is a duplicate.")


class Absence(_Block):
    """Fires with the ``after`` event when no ``expect`` event with the same ``match_on`` value
    follows within ``within``."""

    after: str = Field(min_length=1, description="The event type that starts the wait.")
    expect: str = Field(min_length=1, description="The event type that ends it.")
    match_on: str = Field(
        min_length=1,
        description="Dotted path into both events' data whose values must be equal.",
    )
    within: Duration = Field(description="How long to wait before running.")

    @field_validator("match_on")
    @classmethod
    def _dotted_path(cls, value: str) -> str:
        if not _MATCH_PATH.match(value):
            raise ValueError(f"match_on must be a dotted path into the data, got {value!r}")
        return value
