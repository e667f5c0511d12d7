"""Producing with delivery accounting: every record sent counts against the current batch's
:class:`DeliveryReports`, so a stream commits a batch only once all of its outputs are
acknowledged (and manual runs know whether what they published arrived).

Each output is attributed to the input record being handled when it was sent
(:attr:`KafkaSender.source`), so a stream can tell which input an undeliverable output came
from. Failures are sorted into *permanent* ones (the broker will never take this record: too
large, an illegal or unknown topic, no authorisation), which retrying cannot cure, and
*transient* ones (the broker is away), which a retry will.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError as LibKafkaError
from confluent_kafka import KafkaException, Message, Producer

from eventrules.errors import OutputRejectedError
from eventrules.kafka.records import Headers

__all__ = [
    "PERMANENT_ERRORS",
    "Delivery",
    "DeliveryFailure",
    "DeliveryReports",
    "KafkaSender",
    "Source",
    "is_permanent",
]

# Where an input record was read: (topic, partition, offset).
Source = tuple[str, int, int]

# Errors no retry can cure: the record or its topic is refused for good. UNKNOWN_TOPIC_OR_PART
# can be transient (a topic being created), so the stream gives it a few attempts first.
PERMANENT_ERRORS = frozenset(
    {
        LibKafkaError.MSG_SIZE_TOO_LARGE,
        LibKafkaError.RECORD_LIST_TOO_LARGE,
        LibKafkaError.INVALID_MSG_SIZE,
        LibKafkaError.INVALID_RECORD,
        LibKafkaError.TOPIC_EXCEPTION,
        LibKafkaError.TOPIC_AUTHORIZATION_FAILED,
        LibKafkaError.CLUSTER_AUTHORIZATION_FAILED,
        LibKafkaError.POLICY_VIOLATION,
        LibKafkaError.UNKNOWN_TOPIC_OR_PART,
        LibKafkaError._UNKNOWN_TOPIC,
        LibKafkaError._UNKNOWN_PARTITION,
        LibKafkaError._INVALID_ARG,
    }
)


def is_permanent(error: Any) -> bool:
    """Whether a librdkafka error refuses the record for good (see :data:`PERMANENT_ERRORS`)."""
    try:
        code = error.code()
    except AttributeError:
        return False
    return code in PERMANENT_ERRORS


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    """One output the broker did not take."""

    topic: str
    error: str
    permanent: bool
    source: Source | None

    def __str__(self) -> str:
        return f"{self.topic}: {self.error}"


class DeliveryReports:
    """The broker's answers for one batch's outputs (delivery callbacks run in poll/flush)."""

    __slots__ = ("failures", "outstanding")

    def __init__(self) -> None:
        self.outstanding = 0
        self.failures: list[DeliveryFailure] = []

    def on_delivery(self, error: Any, message: Message, source: Source | None = None) -> None:
        self.outstanding -= 1
        if error is not None:
            self.failures.append(
                DeliveryFailure(message.topic() or "?", str(error), is_permanent(error), source)
            )

    @property
    def settled(self) -> bool:
        return self.outstanding == 0


class Delivery:
    """The delivery callback of one output: the reports of its batch and the input it came
    from. A compiled class, not a ``functools.partial``: built and called per output, a
    partial's keyword dict cost twice what this does."""

    def __init__(self, reports: DeliveryReports, source: Source | None) -> None:
        self.reports = reports
        self.source = source

    def __call__(self, error: Any, message: Message) -> None:
        self.reports.on_delivery(error, message, self.source)


class KafkaSender:
    """The runner's :class:`~eventrules.runtime.deadletters.Sender` over a confluent-kafka
    producer.

    ``send`` only enqueues, counting the record against the current :class:`DeliveryReports`
    (:meth:`next_batch` starts a new one); :meth:`flush` waits for every acknowledgement. A
    record the client refuses at once (an illegal topic name, larger than
    ``message.max.bytes``) raises :class:`OutputRejectedError`. ``producer`` may be replaced
    (a fenced transactional producer is): everything goes through the current one.
    """

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.reports = DeliveryReports()
        # the input record being handled (per asyncio task): outputs sent are attributed to it
        self._source: ContextVar[Source | None] = ContextVar("source", default=None)

    def attribute_to(self, source: Source | None) -> None:
        """Attribute what the current task sends from now on to the input ``source``."""
        self._source.set(source)

    def next_batch(self) -> DeliveryReports:
        """Count the records sent from now on separately; returns their reports."""
        self.reports = DeliveryReports()
        return self.reports

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
        *,
        partition: int | None = None,
    ) -> None:
        """``partition`` pins the record (a state changelog follows its input's partition);
        otherwise the key chooses it."""
        while not self._produce(topic, key, value, headers, partition):
            # The local queue is full: let librdkafka send some before queueing more.
            await asyncio.to_thread(self.producer.poll, 0.1)

    def send_now(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> None:
        """:meth:`send` without the event loop, for the synchronous path of a stream's handler
        (a coroutine per output cost more than the produce): with the local queue full it
        waits for room in place. The stream keeps that rare (``StreamLoop.handle_now``)."""
        while not self._produce(topic, key, value, headers, None):
            self.producer.poll(0.1)

    def _produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None,
        partition: int | None,
    ) -> bool:
        """Queue one record, counted against the current batch; False when the queue is full."""
        reports = self.reports
        delivered = Delivery(reports, self._source.get())
        try:
            if partition is None:
                self.producer.produce(
                    topic,
                    value=value,
                    key=key,
                    headers=headers or None,  # type: ignore[arg-type]  # cast() is a call
                    on_delivery=delivered,
                )
            else:
                self.producer.produce(
                    topic,
                    value=value,
                    key=key,
                    partition=partition,
                    headers=headers or None,  # type: ignore[arg-type]  # cast() is a call
                    on_delivery=delivered,
                )
        except BufferError:
            return False
        except KafkaException as exc:
            error = exc.args[0]
            raise OutputRejectedError(
                f"{topic}: {error}", topic=topic, permanent=is_permanent(error)
            ) from None
        reports.outstanding += 1
        return True

    def flush(self, timeout: float) -> list[str]:
        """Wait for every queued record; returns the current batch's delivery failures."""
        remaining = self.producer.flush(timeout)
        failures = [str(failure) for failure in self.reports.failures]
        self.reports.failures.clear()
        if remaining:
            failures.append(f"{remaining} record(s) still undelivered after {timeout}s")
        return failures
