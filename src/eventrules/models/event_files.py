"""Events given as files (``eventrules test --event``, ``workflows run --event``), decoded by the
worker's decoder (:func:`~eventrules.models.cloudevents.decode_event`), so a file is accepted
exactly when the same bytes on the topic would be.

A file is one of:

* **structured**: the CloudEvents JSON envelope, as the record value of structured mode
  (``specversion``, ``id``, ``source``, ``type``, ``time``, ``datacontenttype``, extension
  attributes, ``data``);
* **binary, in one file**: ``{"headers": {"ce_specversion": "1.0", "ce_type": ..., ...},
  "data": {...}}``: the record's headers and its value (the data, as JSON);
* **binary, split**: the file is the record value (the data) and the headers are given apart
  (``--header ce_type=order.created ...``).

With ``fill_defaults`` (the dry run), a structured envelope may omit ``specversion``, ``id`` and
``source``; the names filled in are returned so the caller can say that the worker would
dead-letter the event as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson

from eventrules.errors import PoisonEventError
from eventrules.models.cloudevents import DEFAULT_MAX_EVENT_BYTES, Headers, decode_event
from eventrules.models.events import Event

__all__ = ["event_from_file", "parse_header_options"]

_BINARY_KEYS = frozenset({"headers", "data"})


def parse_header_options(values: Iterable[str]) -> list[tuple[str, str]]:
    """``NAME=VALUE`` strings (``--header ce_type=order.created``) as header pairs."""
    pairs = []
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name.strip():
            raise PoisonEventError("invalid_header", f"header {value!r} is not NAME=VALUE")
        pairs.append((name.strip(), text))
    return pairs


def _encoded(pairs: Iterable[tuple[str, Any]]) -> list[tuple[str, bytes | None]]:
    headers: list[tuple[str, bytes | None]] = []
    for name, value in pairs:
        if value is not None and not isinstance(value, str):
            raise PoisonEventError("invalid_header", f"header {name!r} must be a string")
        headers.append((str(name), None if value is None else value.encode()))
    return headers


def _binary_document(document: dict[str, Any]) -> tuple[bytes | None, Headers]:
    raw = document["headers"]
    if isinstance(raw, dict):
        pairs: list[tuple[str, Any]] = list(raw.items())
    elif isinstance(raw, list) and all(isinstance(p, list) and len(p) == 2 for p in raw):
        pairs = [(p[0], p[1]) for p in raw]
    else:
        raise PoisonEventError(
            "invalid_header", "headers must be an object (or a list of [name, value] pairs)"
        )
    data = document.get("data")
    return (None if data is None else orjson.dumps(data)), _encoded(pairs)


def _filled(value: bytes, fill_id: str) -> tuple[bytes, list[str]]:
    try:
        envelope = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value, []  # the decoder says what is wrong with it
    if not isinstance(envelope, dict):
        return value, []
    defaults = {"specversion": "1.0", "id": fill_id, "source": "eventrules/cli"}
    missing = [name for name in defaults if name not in envelope]
    if not missing:
        return value, []
    return orjson.dumps({**{name: defaults[name] for name in missing}, **envelope}), missing


def event_from_file(
    content: bytes,
    headers: Sequence[tuple[str, str]] = (),
    *,
    now: datetime,
    fill_defaults: bool = False,
    fill_id: str = "dry-run",
    max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> tuple[Event, list[str]]:
    """The event a file describes, and the attributes filled in by ``fill_defaults``.

    ``now`` stands in for the record timestamp (the time of an event without ``time``).
    Raises :class:`PoisonEventError` with the decoder's reason when the worker would refuse it.
    """
    value: bytes | None = content
    record_headers: Headers = _encoded(headers)
    filled: list[str] = []
    if not headers:
        try:
            document = orjson.loads(content)
        except orjson.JSONDecodeError:
            document = None
        if isinstance(document, dict) and "headers" in document and document.keys() <= _BINARY_KEYS:
            value, record_headers = _binary_document(document)
    binary = any(name.lower().startswith("ce_") for name, _ in record_headers)
    if fill_defaults and not binary and value:
        value, filled = _filled(value, fill_id)
    timestamp_ms = int(now.timestamp() * 1000)
    event = decode_event(value, record_headers, timestamp_ms=timestamp_ms, max_bytes=max_bytes)
    return event, filled
