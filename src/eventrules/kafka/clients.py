"""Kafka clients, configured in one place.

:func:`consumer_config` and :func:`producer_config` build every consumer's and producer's
librdkafka settings from the shared base (``Settings.kafka_client_config()``: brokers and
security), so isolation level, idempotence and the heartbeat formula are decided once.
:func:`read_to_end` reads a topic from its start to the end offsets of the moment: what the
CLI and the stats keeper use to load compacted tables (config, workflow stats) and logs.

Every client logs through :data:`KAFKA_LOG` (confluent-kafka's ``logger`` setting): librdkafka's
lines reach the ``librdkafka`` logger, formatted like the rest of the process's log, instead of
raw ``%4|...`` lines on stderr.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from confluent_kafka import KafkaError as KafkaError_

from eventrules.errors import KafkaError

__all__ = [
    "KAFKA_LOG",
    "PRIVATE_GROUP_PREFIX",
    "LibrdkafkaLog",
    "admin_config",
    "consumer_config",
    "private_group",
    "producer_config",
    "read_to_end",
    "watermarks",
]

_OFFSET_BEGINNING = -2
_NEW_TOPIC_GRACE_SECONDS = 5.0
# What a just-created topic answers until its partition leaders are known.
_ELECTION_ERRORS = frozenset(
    {
        KafkaError_.NOT_LEADER_FOR_PARTITION,
        KafkaError_.LEADER_NOT_AVAILABLE,
        KafkaError_.UNKNOWN_TOPIC_OR_PART,
        KafkaError_._TIMED_OUT,
    }
)


# Complaints librdkafka logs as warnings during a normal start (a group or transaction
# coordinator still loading, or being elected, on a broker that just started) and retries by
# itself: noise to a new user, so they are logged at INFO. Real failures keep their level.
TRANSIENT_MESSAGES = (
    "Coordinator load in progress",
    "Not coordinator",
    "Coordinator not available",
)


class LibrdkafkaLog:
    """confluent-kafka's ``logger``: it calls ``log(level, "%s [%s] %s", facility, client,
    message)`` from ``poll()``; known transient warnings are demoted to INFO."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("librdkafka")

    def log(self, level: int, msg: str, *args: object) -> None:
        if level >= logging.WARNING and args:
            text = str(args[-1])
            if any(transient in text for transient in TRANSIENT_MESSAGES):
                level = logging.INFO
        self.logger.log(level, msg, *args)


KAFKA_LOG = LibrdkafkaLog()


def admin_config(base: Mapping[str, Any]) -> dict[str, Any]:
    """An admin client's settings: the shared base, logging through :data:`KAFKA_LOG` (its
    lines are delivered when the client is polled)."""
    return {**base, "logger": KAFKA_LOG}


PRIVATE_GROUP_PREFIX = "eventrules-private-"


def private_group(purpose: str) -> str:
    """A group id of its own for a client that only assigns partitions and never commits. The
    client still looks up the group's coordinator, so it needs READ on the group: the prefix
    lets an ACL grant exactly these groups, never the workers' (see ops/acls.py)."""
    return f"{PRIVATE_GROUP_PREFIX}{purpose}-{uuid.uuid4().hex}"


def consumer_config(
    base: Mapping[str, Any],
    group_id: str,
    *,
    offset_reset: Literal["earliest", "latest"] = "earliest",
    session_timeout_ms: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A consumer's settings: no auto-commit unless ``extra`` says so, and ``read_committed``
    always (outputs of our own transactions count once committed, aborted ones never)."""
    config: dict[str, Any] = {
        **base,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": offset_reset,
        "isolation.level": "read_committed",
        "logger": KAFKA_LOG,
    }
    if session_timeout_ms is not None:
        config["session.timeout.ms"] = session_timeout_ms
        # librdkafka's advice: a third of the session timeout or less; never below a second
        config["heartbeat.interval.ms"] = max(1000, session_timeout_ms // 4)
    config.update(extra or {})
    return config


def producer_config(
    base: Mapping[str, Any],
    *,
    transactional_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An idempotent producer's settings (``acks=all``); transactional when given an id."""
    config: dict[str, Any] = {
        **base,
        "enable.idempotence": True,
        "acks": "all",
        "logger": KAFKA_LOG,
    }
    if transactional_id is not None:
        config["transactional.id"] = transactional_id
    config.update(extra or {})
    return config


def watermarks(consumer: Consumer, tp: TopicPartition, *, timeout: float) -> tuple[int, int]:
    """``(low, high)`` offsets of a partition, retried while a new topic's leader is elected."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=max(1.0, timeout / 5))
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0]
            transient = error.retriable() or error.code() in _ELECTION_ERRORS
            if not transient or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _topic_metadata(consumer: Consumer, topic: str, *, timeout: float) -> Any:
    """The topic's metadata; a topic created a moment ago may be unknown to the broker we ask
    for a few seconds (metadata propagates from the controller), so unknown is retried."""
    deadline = time.monotonic() + min(timeout, _NEW_TOPIC_GRACE_SECONDS)
    while True:
        info = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if info is not None and info.error is None and info.partitions:
            return info
        if time.monotonic() > deadline:
            raise KafkaError(
                f"topic {topic} does not exist, or this principal may not describe it"
                " (run `eventrules topics apply`; see `eventrules acls show`)"
            )
        time.sleep(0.2)


def read_to_end(
    client_config: dict[str, Any], topic: str, *, timeout: float = 30.0
) -> Iterator[Message]:
    """Every record of every partition of ``topic``, oldest first per partition, up to the end
    offsets seen when called. Transaction markers are accounted for by positions, not counts."""
    consumer = Consumer(consumer_config(client_config, private_group("reader")))
    try:
        info = _topic_metadata(consumer, topic, timeout=timeout)
        ends: dict[int, int] = {}
        for partition in sorted(info.partitions):
            low, high = watermarks(consumer, TopicPartition(topic, partition), timeout=timeout)
            if high > low:
                ends[partition] = high
        if not ends:
            return
        consumer.assign([TopicPartition(topic, p, _OFFSET_BEGINNING) for p in ends])
        deadline = time.monotonic() + timeout
        pending = set(ends)
        while pending:
            if time.monotonic() > deadline:
                raise KafkaError(f"timed out reading {topic} to its end")
            message = consumer.poll(0.2)
            if message is not None:
                error = message.error()
                if error is None:
                    yield message
                elif error.code() != error._PARTITION_EOF:
                    raise KafkaError(f"reading {topic}: {error}")
            positions = consumer.position([TopicPartition(topic, p) for p in pending])
            pending -= {tp.partition for tp in positions if tp.offset >= ends[tp.partition]}
    except KafkaException as exc:
        raise KafkaError(f"reading {topic}: {exc.args[0]}") from None
    finally:
        consumer.close()
