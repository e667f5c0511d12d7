"""The least-privilege Kafka ACLs of each component, as data: what ``eventrules acls`` prints and
applies, what the README's table lists, and exactly what the integration test grants.

Names come from the deployment's settings (topic prefix, app id); a component gets nothing else.
Consumers that only ``assign()`` partitions (the config follower, the CLI's readers) join no
group but still look up a coordinator for their private group: READ on the groups prefixed
``eventrules-private-``, which no worker group shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from eventrules.errors import KafkaError, OperationError
from eventrules.kafka.clients import PRIVATE_GROUP_PREFIX
from eventrules.settings import Settings

__all__ = ["COMPONENTS", "Grant", "acl_bindings", "apply_grants", "grants"]

Resource = Literal["topic", "group", "transactional-id", "cluster"]
Pattern = Literal["literal", "prefixed"]

COMPONENTS: Final = ("worker", "publisher", "producer", "console", "topics")


@dataclass(frozen=True)
class Grant:
    resource: Resource
    pattern: Pattern
    name: str
    operations: tuple[str, ...]
    why: str


def _topic(pattern: Pattern, name: str, operations: str, why: str) -> Grant:
    return Grant("topic", pattern, name, tuple(operations.split()), why)


_PRIVATE_GROUPS = Grant(
    "group", "prefixed", PRIVATE_GROUP_PREFIX, ("READ",), "readers that assign partitions"
)


def _worker(settings: Settings) -> list[Grant]:
    t, app = settings.topic, settings.app_id
    return [
        _topic("prefixed", t("events."), "READ DESCRIBE", "consume the event topics"),
        _topic("literal", t("events.scheduled"), "WRITE", "the scheduler's ticks"),
        _topic(
            "literal",
            t("config"),
            "READ DESCRIBE WRITE",
            "hold the config table; the guard republishes accepted (signed) records",
        ),
        _topic("literal", t("rules.requests"), "READ DESCRIBE", "rule requests"),
        _topic("literal", t("rules.results"), "WRITE DESCRIBE", "rule replies"),
        _topic("prefixed", t("rules.replies."), "WRITE DESCRIBE", "rule replies (reply_to)"),
        _topic("prefixed", t("actions."), "WRITE DESCRIBE", "action messages"),
        _topic("prefixed", t("retry."), "READ WRITE DESCRIBE", "non-blocking retry tiers"),
        _topic("literal", t("action-results"), "WRITE DESCRIBE", "outcomes of retried actions"),
        _topic("literal", t("executions"), "READ WRITE DESCRIBE", "records; the stats keeper"),
        _topic("literal", t("dlq"), "WRITE DESCRIBE", "dead letters"),
        _topic("literal", t("workflow-stats"), "READ WRITE DESCRIBE", "the stats keeper"),
        _topic("literal", t("scheduler-state"), "READ WRITE DESCRIBE", "schedule periods"),
        _topic(
            "literal",
            t("state-repartition"),
            "READ WRITE DESCRIBE",
            "state requests and timer ticks (they carry the runs to make: workers only)",
        ),
        _topic("literal", t("state-changelog"), "READ WRITE DESCRIBE", "state stores, restores"),
        Grant("group", "literal", app, ("READ",), "the event stream's consumer group"),
        Grant(
            "group",
            "prefixed",
            f"{app}-",
            ("READ",),
            "state, rules, retries, scheduler and stats groups",
        ),
        _PRIVATE_GROUPS,
        Grant(
            "transactional-id",
            "prefixed",
            f"{app}-",
            ("WRITE", "DESCRIBE"),
            "the scheduler's transactions (and exactly_once streams)",
        ),
    ]


def _publisher(settings: Settings) -> list[Grant]:
    t = settings.topic
    return [
        _topic("literal", t("config"), "READ WRITE DESCRIBE", "read the live table, publish"),
        _topic("literal", t("config-audit"), "READ WRITE DESCRIBE", "the audit trail"),
        Grant(
            "transactional-id",
            "prefixed",
            f"{settings.app_id}-publisher-",
            ("WRITE", "DESCRIBE"),
            "a change and its audit entry in one transaction",
        ),
        _PRIVATE_GROUPS,
    ]


def grants(component: str, settings: Settings, *, topic: str | None = None) -> list[Grant]:
    """What ``component`` needs; a ``producer`` needs the logical ``topic`` it writes."""
    t = settings.topic
    if component == "worker":
        return _worker(settings)
    if component == "publisher":
        return _publisher(settings)
    if component == "console":
        reads = [
            _topic("literal", t(name), "READ DESCRIBE", "what the console shows")
            for name in ("executions", "workflow-stats", "dlq")
        ]
        return [*_publisher(settings), *reads]
    if component == "producer":
        if not topic:
            raise OperationError("a producer's ACLs need the topic it writes (--topic)")
        return [_topic("literal", t(topic), "WRITE DESCRIBE", "publish its events")]
    if component == "topics":
        return [
            _topic(
                "prefixed",
                settings.topic_prefix,
                "CREATE DESCRIBE DESCRIBE_CONFIGS ALTER_CONFIGS ALTER",
                "create the declared topics, repair drift",
            )
        ]
    raise OperationError(f"unknown component {component!r}; one of {', '.join(COMPONENTS)}")


_RESOURCES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactional-id": ResourceType.TRANSACTIONAL_ID,
    "cluster": ResourceType.BROKER,
}
_PATTERNS = {"literal": ResourcePatternType.LITERAL, "prefixed": ResourcePatternType.PREFIXED}


def acl_bindings(granted: Sequence[Grant], principal: str) -> list[AclBinding]:
    """One ALLOW binding per operation of each grant, for ``principal`` (``User:<name>``)."""
    if not principal.startswith("User:") or principal == "User:":
        raise OperationError(f"principal {principal!r} is not User:<name>")
    return [
        AclBinding(
            _RESOURCES[grant.resource],
            grant.name,
            _PATTERNS[grant.pattern],
            principal,
            "*",
            AclOperation[operation],
            AclPermissionType.ALLOW,
        )
        for grant in granted
        for operation in grant.operations
    ]


def apply_grants(settings: Settings, granted: Sequence[Grant], principal: str) -> int:
    """Create the bindings (as the settings' user, who needs ALTER on the cluster)."""
    bindings = acl_bindings(granted, principal)
    admin = AdminClient(settings.kafka_client_config())
    try:
        for future in admin.create_acls(bindings).values():
            future.result(30)
    except KafkaException as exc:
        raise KafkaError(f"creating ACLs failed: {exc.args[0]}") from None
    return len(bindings)
