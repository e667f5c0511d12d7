"""Test fixtures shared by every test: the Kafka broker and unique names."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventrules.kafka.localbroker import LocalBroker, wait_for_broker

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKER_IMAGE = "confluentinc/cp-kafka:8.0.0"  # Apache Kafka 4.0 inside, KRaft only


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _docker_engine_answers() -> bool:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists():
        # Checked first: the docker client leaks its socket when the engine is absent.
        return False
    import docker

    try:
        client = docker.from_env(timeout=3)
    except Exception:  # any failure means "no engine to use"
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of a real broker, chosen in this order:

    1. ``EVENTRULES_BOOTSTRAP_SERVERS`` when set (an existing cluster or one started by a script);
    2. a testcontainers Kafka when a Docker engine answers;
    3. the project's own JVM broker (``eventrules broker``), started for this session.

    No fallback skips: if none of them gives a broker the session fails loudly.
    """
    existing = os.environ.get("EVENTRULES_BOOTSTRAP_SERVERS")
    if existing:
        wait_for_broker(existing, timeout=60)
        yield existing
        return
    if _docker_engine_answers():
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer(DOCKER_IMAGE).with_kraft() as container:
            bootstrap = container.get_bootstrap_server()
            wait_for_broker(bootstrap, timeout=60)
            yield bootstrap
        return
    broker = LocalBroker(
        port=_free_port(),
        controller_port=_free_port(),
        data_dir=tmp_path_factory.mktemp("kafka"),
        pom=REPO_ROOT / "kafka" / "pom.xml",
    )
    broker.start(timeout=120)
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture
def kafka_config(kafka_bootstrap: str) -> dict[str, object]:
    """librdkafka settings for a client of the session broker."""
    return {"bootstrap.servers": kafka_bootstrap}


@pytest.fixture
def unique() -> str:
    """A short unique token for topic names, group ids and prefixes of one test."""
    return uuid.uuid4().hex[:12]
