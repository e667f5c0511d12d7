"""Reading hostile form fields and query parameters: every value bounded, checked against what
it may be, and refused with an :class:`InputError` naming the field."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, Final

import orjson

from eventrules.errors import InputError

__all__ = [
    "DEFINITION_ID",
    "MAX_DOCUMENT_BYTES",
    "MAX_FIELD",
    "choice",
    "definition_id",
    "json_object",
    "json_or_text",
    "optional_text",
    "page_size",
    "safe_int",
    "text",
    "text_value",
    "timestamp_ms",
    "whole_number",
]

MAX_FIELD: Final = 2000
# a definition or an event typed into a form; the worker's event limit is 1 MiB
MAX_DOCUMENT_BYTES: Final = 256 * 1024
DEFINITION_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_PAGE_SIZES: Final = (25, 50, 100, 200)


def _raw(form: Mapping[str, Any], name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(name, "expected text")
    return value


def text(form: Mapping[str, Any], name: str, *, max_length: int = MAX_FIELD) -> str:
    """A required field, stripped; empty or too long is refused."""
    value = optional_text(form, name, max_length=max_length)
    if value is None:
        raise InputError(name, "required")
    return value


def optional_text(form: Mapping[str, Any], name: str, *, max_length: int = MAX_FIELD) -> str | None:
    """A field that may be absent or empty (None), stripped; too long is refused."""
    value = _raw(form, name)
    if value is None:
        return None
    value = value.strip()
    if len(value) > max_length:
        raise InputError(name, f"at most {max_length} characters")
    if "\x00" in value:
        raise InputError(name, "contains a NUL character")
    return value or None


def choice(form: Mapping[str, Any], name: str, allowed: Collection[str]) -> str | None:
    """One of ``allowed``, or None when absent or empty."""
    value = optional_text(form, name, max_length=200)
    if value is not None and value not in allowed:
        raise InputError(name, "not one of the offered values")
    return value


def definition_id(value: str, name: str = "id") -> str:
    if not DEFINITION_ID.match(value):
        raise InputError(name, "letters, digits and _ . : - (at most 128), starting with one")
    return value


def whole_number(
    form: Mapping[str, Any], name: str, *, low: int, high: int, default: int | None = None
) -> int:
    value = optional_text(form, name, max_length=20)
    if value is None:
        if default is None:
            raise InputError(name, "required")
        return default
    try:
        number = int(value)
    except ValueError:
        raise InputError(name, "expected a whole number") from None
    if not low <= number <= high:
        raise InputError(name, f"expected {low} to {high}")
    return number


def safe_int(form: Any, name: str, *, low: int, high: int = 2**62) -> int:
    """A required whole number between ``low`` and ``high``."""
    return whole_number(form, name, low=low, high=high)


def page_size(form: Mapping[str, Any], name: str = "limit") -> int:
    value = whole_number(form, name, low=1, high=max(_PAGE_SIZES), default=_PAGE_SIZES[1])
    if value not in _PAGE_SIZES:
        raise InputError(name, f"one of {', '.join(map(str, _PAGE_SIZES))}")
    return value


def timestamp_ms(form: Mapping[str, Any], name: str, zone: tzinfo = UTC) -> int | None:
    """An ISO-8601 date or date-time (a ``datetime-local`` input gives one without an offset:
    read in ``zone``) as epoch milliseconds."""
    value = optional_text(form, name, max_length=40)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(name, "expected a date and time, e.g. 2026-01-10T08:00") from None
    if moment.utcoffset() is None:
        moment = moment.replace(tzinfo=zone)
    if not 1970 <= moment.year <= 9999:
        raise InputError(name, "out of range")
    return int(moment.timestamp() * 1000)


def json_object(value: str | None, name: str) -> dict[str, Any]:
    """A JSON object typed into a textarea (at most MAX_DOCUMENT_BYTES)."""
    if value is None or not value.strip():
        raise InputError(name, "required: a JSON object")
    if len(value.encode()) > MAX_DOCUMENT_BYTES:
        raise InputError(name, f"at most {MAX_DOCUMENT_BYTES // 1024} KiB")
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InputError(name, f"not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise InputError(name, "expected a JSON object {...}")
    return parsed


def json_or_text(value: str) -> Any:
    """A value typed into one field: JSON when it parses (``100``, ``[6, 0]``, ``true``,
    ``"100"``), else the text itself (``gold``)."""
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


def text_value(value: Any) -> str:
    """How :func:`json_or_text` would read back ``value`` typed into a field."""
    if isinstance(value, str) and not isinstance(json_or_text(value), str):
        return orjson.dumps(value).decode()
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()
