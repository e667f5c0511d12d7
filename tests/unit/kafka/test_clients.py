"""Every client logs through the project's logging; known start-up noise is not a warning."""

from __future__ import annotations

import logging

import pytest

from eventrules.kafka.clients import (
    KAFKA_LOG,
    LibrdkafkaLog,
    admin_config,
    consumer_config,
    producer_config,
)


def test_every_client_config_logs_through_the_project_logger() -> None:
    base = {"bootstrap.servers": "127.0.0.1:9"}
    assert consumer_config(base, "g")["logger"] is KAFKA_LOG
    assert producer_config(base)["logger"] is KAFKA_LOG
    assert admin_config(base)["logger"] is KAFKA_LOG
    assert "logger" not in base, "the shared base stays serialisable (the stats child gets it)"


def test_transient_start_up_warnings_are_info_and_real_ones_keep_their_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = LibrdkafkaLog(logging.getLogger("test.librdkafka"))
    with caplog.at_level(logging.DEBUG, logger="test.librdkafka"):
        log.log(
            logging.WARNING,
            "%s [%s] %s",
            "GETPID",
            "rdkafka#producer-1",
            "[thrd:main]: Failed to acquire idempotence PID from broker 127.0.0.1:9092/1: "
            "Broker: Coordinator load in progress: retrying",
        )
        log.log(logging.WARNING, "%s [%s] %s", "FAIL", "rdkafka#consumer-2", "Connect refused")
        log.log(logging.ERROR, "%s [%s] %s", "SSL", "rdkafka#consumer-2", "handshake failed")
    levels = [(record.levelname, record.getMessage().split()[0]) for record in caplog.records]
    assert levels == [("INFO", "GETPID"), ("WARNING", "FAIL"), ("ERROR", "SSL")]
