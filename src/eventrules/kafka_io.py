"""Reading a topic from its start to the end offsets of the moment: what the CLI and the
stats keeper use to load compacted tables (config, workflow stats) and logs (executions, DLQ)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from eventrules.errors import KafkaError

__all__ = ["read_to_end"]

_OFFSET_BEGINNING = -2


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
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout
            )
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
