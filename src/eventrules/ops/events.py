"""Recent events on the event topics: what the console's test button offers as samples."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

from confluent_kafka import Consumer, KafkaException, TopicPartition

from eventrules.errors import KafkaError, PoisonEventError
from eventrules.kafka.clients import consumer_config, private_group, watermarks
from eventrules.kafka.records import Headers
from eventrules.models.cloudevents import decode_event
from eventrules.models.events import Event
from eventrules.ops.workers import event_topics
from eventrules.settings import Settings

__all__ = ["RecentEvent", "recent_events"]


@dataclass(frozen=True)
class RecentEvent:
    topic: str
    partition: int
    offset: int
    event: Event


def recent_events(
    settings: Settings, trigger: str, *, limit: int = 10, scan: int = 200, timeout: float = 10.0
) -> list[RecentEvent]:
    """The newest events of type ``trigger`` among the last ``scan`` records of every partition
    of the event topics, newest first; records that are not usable events are skipped."""
    consumer = Consumer(
        consumer_config(settings.kafka_client_config(), private_group("recent-events"))
    )
    found: list[RecentEvent] = []
    try:
        metadata = consumer.list_topics(timeout=timeout).topics
        ends: dict[tuple[str, int], int] = {}
        assignment: list[TopicPartition] = []
        for topic in event_topics(settings):
            if topic not in metadata:
                continue
            for partition in metadata[topic].partitions:
                tp = TopicPartition(topic, partition)
                low, high = watermarks(consumer, tp, timeout=timeout)
                if high > low:
                    ends[(topic, partition)] = high
                    assignment.append(TopicPartition(topic, partition, max(low, high - scan)))
        if not assignment:
            return []
        consumer.assign(assignment)
        pending = set(ends)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.2):
                if message.error() is not None:
                    continue
                place = (str(message.topic()), int(message.partition() or 0))
                try:
                    event = decode_event(
                        message.value(),
                        cast(Headers, message.headers() or []),
                        timestamp_ms=message.timestamp()[1],
                        max_bytes=settings.max_event_bytes,
                    )
                except PoisonEventError:
                    continue
                if event.type == trigger:
                    found.append(RecentEvent(place[0], place[1], int(message.offset() or 0), event))
            # positions, not offsets seen: a transaction marker may be the last record
            positions = consumer.position([TopicPartition(t, p) for t, p in pending])
            pending -= {
                (tp.topic, tp.partition)
                for tp in positions
                if tp.offset >= ends[(tp.topic, tp.partition)]
            }
    except KafkaException as exc:
        raise KafkaError(f"reading the event topics: {exc.args[0]}") from None
    finally:
        consumer.close()
    found.sort(key=lambda recent: recent.event.time, reverse=True)
    return found[:limit]
