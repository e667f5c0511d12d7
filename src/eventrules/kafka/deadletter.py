"""Dead-letter records: the original bytes, with the reason and the source in headers.

A dead letter that would not fit the dead-letter topic keeps its ``dlq.*`` headers and a
truncated value (:func:`fit_dead_letter`): ``dlq.truncated``, ``dlq.original.size`` and
``dlq.original.sha256`` say what was cut, so a dead letter is never the reason a worker stops.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from eventrules.models.cloudevents import Headers

__all__ = [
    "DEFAULT_DEAD_LETTER_MAX_BYTES",
    "DLQ_HEADER_PREFIX",
    "DeadLetterRecord",
    "dead_letter_headers",
    "fit_dead_letter",
    "read_dead_letter_headers",
]

DLQ_HEADER_PREFIX = "dlq."
# Below the producer's default message.max.bytes (1,000,000) with room for the record overhead.
DEFAULT_DEAD_LETTER_MAX_BYTES = 990_000
# What the record framing, our own headers and the key may take beyond the value.
_OVERHEAD = 512


def dead_letter_headers(
    *,
    reason: str,
    error: str,
    topic: str,
    partition: int,
    offset: int,
    original_headers: Headers | None = None,
    error_class: str | None = None,
    now: datetime | None = None,
) -> list[tuple[str, bytes]]:
    """Headers of a dead letter; the original headers are kept after ours (CloudEvents binary
    mode needs them back on replay)."""
    ours = [
        ("dlq.reason", reason),
        ("dlq.error", error[:2000]),
        ("dlq.source.topic", topic),
        ("dlq.source.partition", str(partition)),
        ("dlq.source.offset", str(offset)),
        ("dlq.timestamp", (now or datetime.now(UTC)).isoformat()),
    ]
    if error_class:
        ours.append(("dlq.error.class", error_class))
    kept = [
        (name, value)
        for name, value in original_headers or ()
        if value is not None and not name.startswith(DLQ_HEADER_PREFIX)
    ]
    return [(name, value.encode()) for name, value in ours] + kept


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    truncated: bool


def _size(headers: list[tuple[str, bytes]]) -> int:
    return sum(len(name) + len(value) + 8 for name, value in headers)


def fit_dead_letter(
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes]],
    *,
    max_bytes: int = DEFAULT_DEAD_LETTER_MAX_BYTES,
) -> DeadLetterRecord:
    """The dead letter as it can be written: unchanged when it fits ``max_bytes``; otherwise
    the ``dlq.*`` headers are kept, the original headers dropped if they alone are too large,
    and the key and value cut, with their original sizes and the value's SHA-256 in headers."""
    size = len(key or b"") + len(value or b"") + _size(headers) + _OVERHEAD
    if size <= max_bytes:
        return DeadLetterRecord(key, value, headers, truncated=False)
    ours = [(name, raw) for name, raw in headers if name.startswith(DLQ_HEADER_PREFIX)]
    theirs = [(name, raw) for name, raw in headers if not name.startswith(DLQ_HEADER_PREFIX)]
    budget = max_bytes - _OVERHEAD - _size(ours) - 200  # 200: the headers added below
    if _size(theirs) > budget // 2:
        ours.append(("dlq.original.headers.dropped", str(len(theirs)).encode()))
        theirs = []
    budget -= _size(theirs)
    added: list[tuple[str, bytes]] = [("dlq.truncated", b"true")]
    if key is not None and len(key) > budget // 4:
        added.append(("dlq.original.key.size", str(len(key)).encode()))
        key = key[: budget // 4]
    budget -= len(key or b"")
    if value is not None:
        added += [
            ("dlq.original.size", str(len(value)).encode()),
            ("dlq.original.sha256", hashlib.sha256(value).hexdigest().encode()),
        ]
        value = value[: max(0, budget)]
    return DeadLetterRecord(key, value, ours + added + theirs, truncated=True)


def read_dead_letter_headers(headers: Headers | None) -> dict[str, str]:
    """The ``dlq.*`` headers of a dead letter as text, without the prefix."""
    return {
        name.removeprefix(DLQ_HEADER_PREFIX): (value or b"").decode(errors="replace")
        for name, value in headers or ()
        if name.startswith(DLQ_HEADER_PREFIX)
    }
