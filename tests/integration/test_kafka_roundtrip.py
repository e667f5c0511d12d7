"""The session broker is a real Kafka: produce and consume through confluent-kafka."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.integration


def test_produce_then_consume_round_trip(kafka_config: dict[str, object], unique: str) -> None:
    topic = f"roundtrip-{unique}"
    admin = AdminClient(kafka_config)  # keep a reference: a collected client fails its futures
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)

    producer = Producer(kafka_config)
    for n in range(5):
        producer.produce(topic, key=f"k{n}".encode(), value=f"v{n}".encode())
    assert producer.flush(30) == 0

    consumer = Consumer(
        {**kafka_config, "group.id": f"g-{unique}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    seen: list[tuple[bytes | None, bytes | None]] = []
    try:
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            seen.append((message.key(), message.value()))
            if len(seen) == 5:
                break
    finally:
        consumer.close()
    assert seen == [(f"k{n}".encode(), f"v{n}".encode()) for n in range(5)]
