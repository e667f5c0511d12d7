"""Decode Kafka records into events: CloudEvents 1.0 over the Kafka protocol binding.

Structured mode: the value is the JSON envelope (``specversion``, ``id``, ``source``, ``type``,
optional ``time``, ``subject``, ``data``). Binary mode: the attributes travel as ``ce_*``
headers and the value is the data. Anything else is a poison event with a reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from eventrules.errors import PoisonEventError
from eventrules.models.events import Event

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "Headers", "decode_event", "encode_structured"]

DEFAULT_MAX_EVENT_BYTES = 1_048_576
_REQUIRED = ("id", "source", "type")

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


def _parse_time(raw: Any, fallback: datetime) -> datetime:
    if raw is None:
        return fallback
    if not isinstance(raw, str):
        raise PoisonEventError("invalid_attribute", "time must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise PoisonEventError("invalid_attribute", f"time {raw!r} is not RFC 3339") from None
    if parsed.tzinfo is None:
        raise PoisonEventError("invalid_attribute", f"time {raw!r} has no timezone offset")
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


def _build(attributes: dict[str, Any], data: Any, fallback_time: datetime) -> Event:
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
    return Event(
        id=attributes["id"],
        type=attributes["type"],
        source=attributes["source"],
        time=_parse_time(attributes.get("time"), fallback_time),
        subject=subject,
        data=_data(data),
    )


def decode_event(
    value: bytes | None,
    headers: Headers | None = None,
    *,
    timestamp_ms: int | None = None,
    max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> Event:
    """The event a record carries; raises :class:`PoisonEventError` with a reason otherwise.

    An event without ``time`` takes the record's timestamp, so time facts stay meaningful.
    """
    size = len(value or b"")
    if size > max_bytes:
        raise PoisonEventError(
            "oversized", f"event of {size} bytes exceeds the {max_bytes}-byte limit"
        )
    fallback = (
        datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC) if timestamp_ms else datetime.now(UTC)
    )
    meta = _header_map(headers)
    if "ce_specversion" in meta:
        attributes = {
            key.removeprefix("ce_"): item for key, item in meta.items() if key.startswith("ce_")
        }
        data: Any = None
        if value:
            try:
                data = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise PoisonEventError("not_json", "binary-mode data is not JSON") from None
        return _build(attributes, data, fallback)
    if not value:
        raise PoisonEventError("not_cloudevent", "empty value and no ce_* headers")
    try:
        envelope = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise PoisonEventError("not_json", f"value is not JSON: {exc}") from None
    if not isinstance(envelope, dict):
        raise PoisonEventError("not_cloudevent", "value is JSON but not a CloudEvents object")
    if "data_base64" in envelope and "data" not in envelope:
        raise PoisonEventError("data_not_object", "data_base64 is not supported; send JSON data")
    return _build(envelope, envelope.get("data"), fallback)


def encode_structured(event: Event) -> bytes:
    """The structured-mode JSON of an event (used for manual runs, ticks and replays)."""
    return orjson.dumps({"specversion": "1.0", **event.envelope(), "data": event.data})
