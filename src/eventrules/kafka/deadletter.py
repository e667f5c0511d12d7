"""Dead-letter records: the original bytes, with the reason and the source in headers."""

from __future__ import annotations

from datetime import UTC, datetime

from eventrules.models.cloudevents import Headers

__all__ = ["DLQ_HEADER_PREFIX", "dead_letter_headers", "read_dead_letter_headers"]

DLQ_HEADER_PREFIX = "dlq."


def dead_letter_headers(
    *,
    reason: str,
    error: str,
    topic: str,
    partition: int,
    offset: int,
    original_headers: Headers | None = None,
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
    kept = [
        (name, value)
        for name, value in original_headers or ()
        if value is not None and not name.startswith(DLQ_HEADER_PREFIX)
    ]
    return [(name, value.encode()) for name, value in ours] + kept


def read_dead_letter_headers(headers: Headers | None) -> dict[str, str]:
    """The ``dlq.*`` headers of a dead letter as text, without the prefix."""
    return {
        name.removeprefix(DLQ_HEADER_PREFIX): (value or b"").decode(errors="replace")
        for name, value in headers or ()
        if name.startswith(DLQ_HEADER_PREFIX)
    }
