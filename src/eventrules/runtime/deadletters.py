"""Sending a record that cannot be processed to the dead-letter topic: its original bytes, with
the reason and its source in ``dlq.*`` headers (:mod:`eventrules.kafka.deadletter`)."""

from __future__ import annotations

import logging
from typing import Protocol

from eventrules.kafka.deadletter import dead_letter_headers
from eventrules.kafka.records import Headers, Record
from eventrules.metrics import Metrics

__all__ = ["DeadLetterWriter", "Sender"]

log = logging.getLogger(__name__)


class Sender(Protocol):
    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> None:
        """Hand a record to the producer; delivery is confirmed before the source is committed."""


class DeadLetterWriter:
    """Dead-letters through a stream's sender, so the dead letter joins the batch (committed
    only once delivered, or inside the batch's transaction)."""

    def __init__(self, topic: str, sender: Sender, metrics: Metrics) -> None:
        self.topic = topic
        self.sender = sender
        self.metrics = metrics

    async def __call__(self, record: Record, reason: str, detail: str) -> None:
        log.warning(
            "dead-lettered %s[%d]@%d: %s: %s",
            record.topic,
            record.partition,
            record.offset,
            reason,
            detail,
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
        )
        await self.sender.send(self.topic, record.key, record.value, list(headers))
        self.metrics.events_dead_lettered.labels(reason).inc()
