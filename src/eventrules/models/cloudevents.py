"""Decode Kafka records into events: CloudEvents 1.0 over the Kafka protocol binding.

Structured mode: the value is the JSON envelope (``specversion``, ``id``, ``source``, ``type``,
optional ``time``, ``subject``, ``data``). Binary mode: the attributes travel as ``ce_*``
headers and the value is the data. Anything else is a poison event with a reason.

Bounds (so that nothing decoded here can fail later, when the execution record that carries
the event is written back): the value is at most ``max_bytes``, it nests at most
``max_json_depth`` levels (orjson reads 1024 but writes 254), and the event's time can be
converted to UTC. orjson itself refuses NaN, infinities and lone surrogates, and reads integers
beyond 64 bits as floats, so every decoded value can be written back as JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from eventrules.errors import EventLimitError, PoisonEventError
from eventrules.limits import active_limits, nesting_exceeds
from eventrules.models.events import Event

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "Headers", "decode_event", "encode_structured"]

DEFAULT_MAX_EVENT_BYTES = 1_048_576
_REQUIRED = ("id", "source", "type")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# what a record without headers has: shared, only ever read
_NO_HEADERS: dict[str, str] = {}

# Kafka record headers as the clients give them: the value of a header may be null.
Headers = Sequence[tuple[str, bytes | None]]


def _header_map(headers: Headers | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, raw in headers or ():
        if raw is None:
            continue
        try:
            found[name.lower()] = raw.decode()
        except UnicodeDecodeError:
            raise PoisonEventError("invalid_header", f"header {name!r} is not UTF-8") from None
    return found


def _record_time(timestamp_ms: int | None) -> datetime:
    if not timestamp_ms:
        return datetime.now(UTC)
    try:
        # exact to the millisecond (a float of seconds is not), and cheaper than fromtimestamp
        return _EPOCH + timedelta(0, 0, 0, timestamp_ms)
    except (OverflowError, OSError, ValueError):
        raise PoisonEventError(
            "invalid_attribute",
            f"no time attribute, and the record timestamp {timestamp_ms} is out of range",
        ) from None


def _parse_time(raw: Any, timestamp_ms: int | None) -> datetime:
    if raw is None:
        return _record_time(timestamp_ms)
    if not isinstance(raw, str):
        raise PoisonEventError("invalid_attribute", "time must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise PoisonEventError("invalid_attribute", f"time {raw!r} is not RFC 3339") from None
    if parsed.tzinfo is None:
        raise PoisonEventError("invalid_attribute", f"time {raw!r} has no timezone offset")
    if parsed.year in (1, 9999):
        try:
            # the first and last hours of the calendar cannot be moved to UTC (or any zone)
            parsed.astimezone(UTC)
        except OverflowError:
            raise PoisonEventError("invalid_attribute", f"time {raw!r} is out of range") from None
    return parsed


def _data(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return raw
    raise PoisonEventError(
        "data_not_object",
        f"data must be a JSON object for conditions to read, got {type(raw).__name__}",
    )


def _build(attributes: dict[str, Any], data: Any, timestamp_ms: int | None) -> Event:
    if attributes.get("specversion") != "1.0":
        raise PoisonEventError(
            "not_cloudevent", f"specversion must be '1.0', got {attributes.get('specversion')!r}"
        )
    for name in _REQUIRED:
        value = attributes.get(name)
        if not isinstance(value, str) or not value:
            reason = "missing_type" if name == "type" else "missing_attribute"
            raise PoisonEventError(reason, f"CloudEvents attribute {name!r} is missing or empty")
    subject = attributes.get("subject")
    if subject is not None and not isinstance(subject, str):
        raise PoisonEventError("invalid_attribute", "subject must be a string")
    # every field is checked above as the model would (tests/unit/models hold it to that)
    return Event(
        id=attributes["id"],
        type=attributes["type"],
        source=attributes["source"],
        time=_parse_time(attributes.get("time"), timestamp_ms),
        subject=subject,
        data=_data(data),
    )


def decode_event(
    value: bytes | None,
    headers: Headers | None = None,
    *,
    timestamp_ms: int | None = None,
    max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    max_depth: int | None = None,
) -> Event:
    """The event a record carries; raises :class:`PoisonEventError` with a reason otherwise
    (:class:`EventLimitError`, reason ``oversized`` or ``too_deep``, for a limit).

    An event without ``time`` takes the record's timestamp, so time facts stay meaningful.
    ``max_depth`` defaults to the active ``max_json_depth`` limit.
    """
    size = len(value or b"")
    if size > max_bytes:
        raise EventLimitError(
            "oversized",
            f"event of {size} bytes exceeds the {max_bytes}-byte limit",
            limit="max_event_bytes",
            maximum=max_bytes,
        )
    depth = max_depth if max_depth is not None else active_limits().max_json_depth
    meta = _header_map(headers) if headers else _NO_HEADERS
    if "ce_specversion" in meta:
        attributes = {
            key.removeprefix("ce_"): item for key, item in meta.items() if key.startswith("ce_")
        }
        data: Any = None
        if value:
            data = _loads(value, depth, "binary-mode data is not JSON")
        return _build(attributes, data, timestamp_ms)
    if not value:
        raise PoisonEventError("not_cloudevent", "empty value and no ce_* headers")
    envelope = _loads(value, depth, "value is not JSON")
    if not isinstance(envelope, dict):
        raise PoisonEventError("not_cloudevent", "value is JSON but not a CloudEvents object")
    if "data_base64" in envelope and "data" not in envelope:
        raise PoisonEventError("data_not_object", "data_base64 is not supported; send JSON data")
    return _build(envelope, envelope.get("data"), timestamp_ms)


def _loads(value: bytes, max_depth: int, what: str) -> Any:
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise PoisonEventError("not_json", f"{what}: {exc}") from None
    if nesting_exceeds(decoded, max_depth, raw=value):
        raise EventLimitError(
            "too_deep",
            f"the value nests deeper than {max_depth} levels",
            limit="max_json_depth",
            maximum=max_depth,
        )
    return decoded


def encode_structured(event: Event) -> bytes:
    """The structured-mode JSON of an event (used for manual runs, ticks and replays)."""
    return orjson.dumps({"specversion": "1.0", **event.envelope(), "data": event.data})
