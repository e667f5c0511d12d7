"""Reading a topic from its start to the end offsets of the moment: what the CLI and the
stats keeper use to load compacted tables (config, workflow stats) and logs (executions, DLQ)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from confluent_kafka import KafkaError as KafkaError_

from eventrules.errors import KafkaError

__all__ = ["read_to_end", "watermarks"]

_OFFSET_BEGINNING = -2
# What a just-created topic answers until its partition leaders are known.
_ELECTION_ERRORS = frozenset(
    {
        KafkaError_.NOT_LEADER_FOR_PARTITION,
        KafkaError_.LEADER_NOT_AVAILABLE,
        KafkaError_.UNKNOWN_TOPIC_OR_PART,
        KafkaError_._TIMED_OUT,
    }
)


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


def read_to_end(
    client_config: dict[str, Any], topic: str, *, timeout: float = 30.0
) -> Iterator[Message]:
    """Every record of every partition of ``topic``, oldest first per partition, up to the end
    offsets seen when called. Transaction markers are accounted for by positions, not counts."""
    consumer = Consumer(
        {
            **client_config,
            "group.id": f"eventrules-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    try:
        info = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if info is None or info.error is not None:
            raise KafkaError(f"topic {topic} does not exist; run `eventrules topics apply`")
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
