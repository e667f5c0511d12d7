"""The workers as Kafka sees them: the members of their consumer group and its lag on the event
topics (committed offsets against the end offsets), for the console's overview."""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from eventrules.errors import KafkaError
from eventrules.kafka.topics import load_topic_specs
from eventrules.settings import Settings

__all__ = ["GroupMember", "GroupStatus", "event_topics", "worker_group_status"]

# confluent-kafka leaves these factories untyped
_LATEST = OffsetSpec.latest()  # type: ignore[no-untyped-call]
_EARLIEST = OffsetSpec.earliest()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class GroupMember:
    client_id: str
    host: str
    partitions: tuple[str, ...]


@dataclass(frozen=True)
class GroupStatus:
    """``lag`` per event topic: end offset minus committed offset, summed over partitions (a
    partition the group never committed counts from its start)."""

    group: str
    state: str
    members: tuple[GroupMember, ...]
    lag: dict[str, int] = field(default_factory=dict)

    @property
    def total_lag(self) -> int:
        return sum(self.lag.values())


def event_topics(settings: Settings) -> list[str]:
    """The real names of the declared ``events.*`` topics (what the workers consume)."""
    specs = load_topic_specs(settings.resolved_topics_dir(), prefix=settings.topic_prefix)
    return [spec.topic for spec in specs if spec.name.startswith("events.")]


def worker_group_status(settings: Settings, *, timeout: float = 10.0) -> GroupStatus:
    """Members and lag of the workers' consumer group (``EVENTRULES_APP_ID``)."""
    admin = AdminClient(settings.kafka_client_config())
    group = settings.app_id
    topics = event_topics(settings)
    try:
        description = admin.describe_consumer_groups([group], request_timeout=timeout)[
            group
        ].result(timeout)
        members = tuple(
            GroupMember(
                member.client_id,
                member.host,
                tuple(
                    sorted(
                        f"{tp.topic}:{tp.partition}"
                        for tp in (member.assignment.topic_partitions if member.assignment else [])
                    )
                ),
            )
            for member in description.members
        )
        state = str(getattr(description.state, "name", description.state)).lower()
        committed_request = [ConsumerGroupTopicPartitions(group)]
        committed = {
            (tp.topic, tp.partition): tp.offset
            for tp in admin.list_consumer_group_offsets(committed_request, request_timeout=timeout)[
                group
            ]
            .result(timeout)
            .topic_partitions
            or []
        }
        metadata = admin.list_topics(timeout=timeout).topics
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            if topic in metadata
            for partition in metadata[topic].partitions
        ]
        ends = admin.list_offsets(dict.fromkeys(partitions, _LATEST), request_timeout=timeout)
        starts = admin.list_offsets(dict.fromkeys(partitions, _EARLIEST), request_timeout=timeout)
        lag: dict[str, int] = dict.fromkeys(topics, 0)
        for tp in partitions:
            end = ends[tp].result(timeout).offset
            position = committed.get((tp.topic, tp.partition), -1)
            if position < 0:
                position = starts[tp].result(timeout).offset
            lag[tp.topic] += max(0, end - position)
    except KafkaException as exc:
        raise KafkaError(f"describing consumer group {group}: {exc.args[0]}") from None
    return GroupStatus(group, state, members, lag)
