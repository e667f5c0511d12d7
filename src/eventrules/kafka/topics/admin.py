"""Apply declared topics to a cluster: create what is missing, report drift, never delete data."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError as _ClientError
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from eventrules.errors import TopicError
from eventrules.kafka.clients import admin_config
from eventrules.kafka.topics.spec import TopicSpec

__all__ = ["ApplyReport", "Drift", "TopicState", "apply_topics", "describe_topics"]

_TIMEOUT = 30.0


@dataclass(frozen=True)
class Drift:
    """One way an existing topic differs from its declaration."""

    topic: str
    setting: str
    declared: str
    actual: str
    # Partitions can grow and configs can be set in place; shrinking or re-replicating cannot.
    fixable: bool

    def __str__(self) -> str:
        return f"{self.topic}: {self.setting} declared {self.declared}, actual {self.actual}"


@dataclass(frozen=True)
class TopicState:
    """A declared topic next to what the cluster has (``exists`` False when it is missing)."""

    spec: TopicSpec
    exists: bool
    partitions: int | None = None
    replication_factor: int | None = None
    configs: dict[str, str] = field(default_factory=dict)

    def drift(self) -> list[Drift]:
        if not self.exists:
            return []
        name = self.spec.topic
        found: list[Drift] = []
        if self.partitions != self.spec.partitions:
            found.append(
                Drift(
                    name,
                    "partitions",
                    str(self.spec.partitions),
                    str(self.partitions),
                    fixable=(self.partitions or 0) < self.spec.partitions,
                )
            )
        if self.replication_factor != self.spec.replication_factor:
            found.append(
                Drift(
                    name,
                    "replication_factor",
                    str(self.spec.replication_factor),
                    str(self.replication_factor),
                    fixable=False,
                )
            )
        for key, declared in sorted(self.spec.configs.items()):
            actual = self.configs.get(key)
            if actual != declared:
                found.append(Drift(name, key, declared, str(actual), fixable=True))
        return found


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    fixed: list[Drift] = field(default_factory=list)

    @property
    def changed_anything(self) -> bool:
        return bool(self.created or self.fixed)


def _admin(client_config: dict[str, Any]) -> AdminClient:
    return AdminClient(admin_config(client_config))


def _result(future: Any, topic: str, doing: str) -> Any:
    try:
        return future.result(timeout=_TIMEOUT)
    except KafkaException as exc:
        raise TopicError(f"{doing} {topic} failed: {exc.args[0]}", topic=topic) from None


def describe_topics(client_config: dict[str, Any], specs: Sequence[TopicSpec]) -> list[TopicState]:
    """What the cluster has for each declared topic."""
    admin = _admin(client_config)
    try:
        metadata = admin.list_topics(timeout=_TIMEOUT)
    except KafkaException as exc:
        raise TopicError(f"listing topics failed: {exc.args[0]}") from None
    finally:
        admin.poll(0)  # hands what librdkafka logged to the logger
    present = [spec for spec in specs if spec.topic in metadata.topics]
    configs: dict[str, dict[str, str]] = {}
    if present:
        resources = [ConfigResource(ResourceType.TOPIC, spec.topic) for spec in present]
        for resource, future in admin.describe_configs(resources).items():
            entries = _result(future, resource.name, "describing")
            configs[resource.name] = {
                name: entry.value for name, entry in entries.items() if entry.value is not None
            }
    states: list[TopicState] = []
    for spec in specs:
        topic = metadata.topics.get(spec.topic)
        if topic is None:
            states.append(TopicState(spec, exists=False))
            continue
        partitions = topic.partitions
        replicas = {len(p.replicas) for p in partitions.values()}
        states.append(
            TopicState(
                spec,
                exists=True,
                partitions=len(partitions),
                replication_factor=min(replicas) if replicas else 0,
                configs=configs.get(spec.topic, {}),
            )
        )
    return states


def _create(admin: AdminClient, specs: Iterable[TopicSpec]) -> list[str]:
    new = [
        NewTopic(
            s.topic,
            num_partitions=s.partitions,
            replication_factor=s.replication_factor,
            config=dict(s.configs),
        )
        for s in specs
    ]
    if not new:
        return []
    created: list[str] = []
    for topic, future in admin.create_topics(new, request_timeout=_TIMEOUT).items():
        try:
            future.result(timeout=_TIMEOUT)
            created.append(topic)
        except KafkaException as exc:
            # Another apply may have created it between our describe and create: that is fine.
            if exc.args[0].code() != _ClientError.TOPIC_ALREADY_EXISTS:
                raise TopicError(f"creating {topic} failed: {exc.args[0]}", topic=topic) from None
    return created


def _fix(admin: AdminClient, drift: Sequence[Drift]) -> list[Drift]:
    fixed: list[Drift] = []
    grow = [d for d in drift if d.fixable and d.setting == "partitions"]
    if grow:
        requests = [NewPartitions(d.topic, int(d.declared)) for d in grow]
        for topic, future in admin.create_partitions(requests).items():
            _result(future, topic, "adding partitions to")
        fixed.extend(grow)
    by_topic: dict[str, list[Drift]] = {}
    for item in drift:
        if item.fixable and item.setting != "partitions":
            by_topic.setdefault(item.topic, []).append(item)
    if by_topic:
        resources = [
            ConfigResource(
                ResourceType.TOPIC,
                topic,
                incremental_configs=[
                    ConfigEntry(d.setting, d.declared, incremental_operation=AlterConfigOpType.SET)
                    for d in items
                ],
            )
            for topic, items in by_topic.items()
        ]
        for resource, future in admin.incremental_alter_configs(resources).items():
            _result(future, resource.name, "altering configs of")
        fixed.extend(d for items in by_topic.values() for d in items)
    return fixed


def apply_topics(
    client_config: dict[str, Any], specs: Sequence[TopicSpec], *, fix: bool = False
) -> ApplyReport:
    """Create missing topics; report drift on existing ones and, with ``fix``, repair what can be
    repaired in place (grow partitions, set configs). Nothing is ever deleted or shrunk."""
    states = describe_topics(client_config, specs)
    admin = _admin(client_config)
    report = ApplyReport()
    report.created = _create(admin, (s.spec for s in states if not s.exists))
    for state in states:
        if not state.exists:
            continue
        drift = state.drift()
        if not drift:
            report.unchanged.append(state.spec.topic)
        report.drift.extend(drift)
    if fix and report.drift:
        report.fixed = _fix(admin, report.drift)
        report.drift = [d for d in report.drift if d not in report.fixed]
    admin.poll(0)  # hands what librdkafka logged to the logger
    return report
