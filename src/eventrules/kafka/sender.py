"""Producing with delivery accounting: every record sent counts against the current batch's
:class:`DeliveryReports`, so a stream commits a batch only once all of its outputs are
acknowledged (and manual runs know whether what they published arrived)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from confluent_kafka import Message, Producer

from eventrules.kafka.records import Headers

__all__ = ["DeliveryReports", "KafkaSender"]


class DeliveryReports:
    """The broker's answers for one batch's outputs (delivery callbacks run in poll/flush)."""

    __slots__ = ("failures", "outstanding")

    def __init__(self) -> None:
        self.outstanding = 0
        self.failures: list[str] = []

    def on_delivery(self, error: Any, message: Message) -> None:
        self.outstanding -= 1
        if error is not None:
            self.failures.append(f"{message.topic()}: {error}")

    @property
    def settled(self) -> bool:
        return self.outstanding == 0


class KafkaSender:
    """The runner's :class:`~eventrules.runtime.runner.Sender` over a confluent-kafka producer.

    ``send`` only enqueues, counting the record against the current :class:`DeliveryReports`
    (:meth:`next_batch` starts a new one); :meth:`flush` waits for every acknowledgement.
    """

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.reports = DeliveryReports()

    def next_batch(self) -> DeliveryReports:
        """Count the records sent from now on separately; returns their reports."""
        self.reports = DeliveryReports()
        return self.reports

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> None:
        reports = self.reports
        while True:
            try:
                self.producer.produce(
                    topic,
                    value=value,
                    key=key,
                    headers=cast(Any, headers) or None,
                    on_delivery=reports.on_delivery,
                )
                reports.outstanding += 1
                return
            except BufferError:
                # The local queue is full: let librdkafka send some before queueing more.
                await asyncio.to_thread(self.producer.poll, 0.1)

    def flush(self, timeout: float) -> list[str]:
        """Wait for every queued record; returns the current batch's delivery failures."""
        remaining = self.producer.flush(timeout)
        failures = list(self.reports.failures)
        self.reports.failures.clear()
        if remaining:
            failures.append(f"{remaining} record(s) still undelivered after {timeout}s")
        return failures
