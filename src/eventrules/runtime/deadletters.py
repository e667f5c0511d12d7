"""Sending a record that cannot be processed to the dead-letter topic: its original bytes, with
the reason and its source in ``dlq.*`` headers (:mod:`eventrules.kafka.deadletter`).

:func:`failure_reason` turns whatever went wrong with one record into the reason code of its
dead letter, so every stream names the same failure the same way.
"""

from __future__ import annotations

import logging
from typing import Protocol

from eventrules.errors import OutputRejectedError, PoisonEventError
from eventrules.kafka.deadletter import (
    DEFAULT_DEAD_LETTER_MAX_BYTES,
    dead_letter_headers,
    fit_dead_letter,
)
from eventrules.kafka.records import Headers, Record
from eventrules.metrics import Metrics

__all__ = ["DeadLetterWriter", "Sender", "failure_reason"]

log = logging.getLogger(__name__)

_DETAIL_CHARS = 500


class Sender(Protocol):
    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> None:
        """Hand a record to the producer; delivery is confirmed before the source is committed."""


def failure_reason(error: BaseException) -> tuple[str, str]:
    """``(reason, detail)`` for the dead letter of a record whose handling raised ``error``:
    the poison reason of a bad event (``unserialisable`` for data that could be read but not
    written back), ``output_rejected`` for an output the producer refused, ``too_deep`` for
    input nested past Python's recursion limit, ``processing_error`` for anything else (a bug:
    the record is kept for replay once it is fixed)."""
    if isinstance(error, PoisonEventError):
        return error.reason, error.detail
    detail = f"{type(error).__name__}: {error}"[:_DETAIL_CHARS]
    if isinstance(error, OutputRejectedError):
        return "output_rejected", detail
    if isinstance(error, RecursionError):
        return "too_deep", detail
    return "processing_error", detail


class DeadLetterWriter:
    """Dead-letters through a stream's sender, so the dead letter joins the batch (committed
    only once delivered, or inside the batch's transaction)."""

    def __init__(
        self,
        topic: str,
        sender: Sender,
        metrics: Metrics,
        *,
        max_bytes: int = DEFAULT_DEAD_LETTER_MAX_BYTES,
    ) -> None:
        self.topic = topic
        self.sender = sender
        self.metrics = metrics
        self.max_bytes = max_bytes

    async def __call__(
        self, record: Record, reason: str, detail: str, *, error_class: str | None = None
    ) -> None:
        log.warning(
            "dead-lettered %s[%d]@%d: %s: %s",
            record.topic,
            record.partition,
            record.offset,
            reason,
            detail[:_DETAIL_CHARS],
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": reason,
            },
        )
        headers = dead_letter_headers(
            reason=reason,
            error=detail,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            original_headers=record.headers,
            error_class=error_class,
        )
        letter = fit_dead_letter(record.key, record.value, headers, max_bytes=self.max_bytes)
        await self.sender.send(self.topic, letter.key, letter.value, letter.headers)
        self.metrics.events_dead_lettered.labels(reason).inc()

    async def failed(self, record: Record, error: BaseException) -> None:
        """Dead-letter ``record`` because handling it raised ``error``."""
        reason, detail = failure_reason(error)
        await self(record, reason, detail, error_class=type(error).__name__)
