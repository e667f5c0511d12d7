"""Kafka security for real: a broker of our own with SASL/SCRAM over TLS and mutual TLS
listeners and the StandardAuthorizer (no ACL, no access), certificates made by the test. Each
component gets exactly the ACLs `eventrules acls` documents, and nothing more."""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from eventrules.cli.main import cli
from eventrules.kafka.localbroker import BrokerSecurity, LocalBroker
from integration.certs import Authority, Issued
from integration.harness import (
    REPO_ROOT,
    WorkerProcess,
    cloudevent,
    free_port,
    order_workflow,
    wait_until,
)

pytestmark = pytest.mark.integration

USERS = ("admin", "topics", "publisher", "orders", "intruder")
KEY_PASSWORD = "client-key-password"


@dataclass
class SecureCluster:
    broker: LocalBroker
    security: BrokerSecurity
    authority: Authority
    worker_cert: Issued
    folder: Path

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap_servers

    def client(self, user: str) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap, **self.security.client_config(user)}

    def env(self, user: str, prefix: str, app_id: str) -> dict[str, str]:
        """The EVENTRULES_* settings of a SCRAM client ``user``."""
        return {
            "EVENTRULES_BOOTSTRAP_SERVERS": self.bootstrap,
            "EVENTRULES_SECURITY_PROTOCOL": "SASL_SSL",
            "EVENTRULES_SASL_MECHANISM": self.security.mechanism,
            "EVENTRULES_SASL_USERNAME": user,
            "EVENTRULES_SASL_PASSWORD": self.security.scram_users[user],
            "EVENTRULES_SSL_CA_LOCATION": str(self.authority.ca_file),
            "EVENTRULES_TOPIC_PREFIX": prefix,
            "EVENTRULES_APP_ID": app_id,
            "EVENTRULES_TOPICS_DIR": str(REPO_ROOT / "topics"),
        }

    def mtls_env(self, prefix: str, app_id: str) -> dict[str, str]:
        """A worker authenticated by its certificate (principal User:worker-mtls)."""
        return {
            "EVENTRULES_BOOTSTRAP_SERVERS": f"127.0.0.1:{self.security.mtls_port}",
            "EVENTRULES_SECURITY_PROTOCOL": "SSL",
            "EVENTRULES_SSL_CA_LOCATION": str(self.authority.ca_file),
            "EVENTRULES_SSL_CERTIFICATE_LOCATION": str(self.worker_cert.cert),
            "EVENTRULES_SSL_KEY_LOCATION": str(self.worker_cert.key),
            "EVENTRULES_SSL_KEY_PASSWORD": KEY_PASSWORD,
            "EVENTRULES_TOPIC_PREFIX": prefix,
            "EVENTRULES_APP_ID": app_id,
            "EVENTRULES_TOPICS_DIR": str(REPO_ROOT / "topics"),
            "EVENTRULES_LAG_INTERVAL_SECONDS": "1",
        }


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCluster]:
    folder = tmp_path_factory.mktemp("secure-kafka")
    authority = Authority.create(folder / "ca")
    broker_cert = authority.issue("broker", dns=("localhost",), ips=("127.0.0.1",))
    worker_cert = authority.issue("worker-mtls", key_password=KEY_PASSWORD.encode())
    security = BrokerSecurity(
        keystore=broker_cert.chain,
        truststore=authority.ca_file,
        mtls_port=free_port(),
        scram_users={user: secrets.token_urlsafe(16) for user in USERS},
    )
    broker = LocalBroker(
        port=free_port(),
        controller_port=free_port(),
        data_dir=folder / "kafka",
        pom=REPO_ROOT / "kafka" / "pom.xml",
        security=security,
    )
    broker.start(timeout=180)
    try:
        yield SecureCluster(broker, security, authority, worker_cert, folder)
    finally:
        broker.stop()


def _cli(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env=env)


def _ok(env: dict[str, str], *args: str) -> str:
    result = _cli(env, *args)
    assert result.exit_code == 0, result.output
    return str(result.output)


def _read(cluster: SecureCluster, topic: str, until: Any, timeout: float = 60) -> list[Any]:
    consumer = Consumer(
        cluster.client("admin")
        | {"group.id": f"reader-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, -2) for p in partitions])
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while not until(found):
            assert time.monotonic() < deadline, f"{topic}: {len(found)} records"
            message = consumer.poll(0.2)
            if message is not None and not message.error():
                found.append(message)
    finally:
        consumer.close()
    return found


def _produce(config: dict[str, Any], topic: str, value: bytes, key: bytes) -> KafkaError | None:
    errors: list[KafkaError] = []
    producer = Producer(config | {"message.timeout.ms": 15000})
    producer.produce(
        topic, value, key=key, on_delivery=lambda e, _m: errors.extend([e] if e else [])
    )
    producer.flush(30)
    return errors[0] if errors else None


def test_each_component_works_with_exactly_its_documented_acls(
    secure: SecureCluster, tmp_path: Path
) -> None:
    prefix, app_id = f"s{uuid.uuid4().hex[:8]}.", f"app-{uuid.uuid4().hex[:8]}"
    admin = secure.env("admin", prefix, app_id)
    grants = [
        ("topics", "User:topics", []),
        ("worker", "User:worker-mtls", []),
        ("publisher", "User:publisher", []),
        ("producer", "User:orders", ["--topic", "events.orders"]),
    ]
    for component, principal, extra in grants:
        assert "created" in _ok(admin, "acls", "apply", component, "--principal", principal, *extra)

    # The topics job's user creates the declared topics, and nothing is readable to strangers.
    _ok(secure.env("topics", prefix, app_id), "topics", "apply", "--replication-factor", "1")
    intruder = _cli(secure.env("intruder", prefix, app_id), "config", "list")
    assert intruder.exit_code != 0
    assert "may not describe it" in intruder.output

    # The publisher's user publishes a definition (with its audit entry, in a transaction).
    definition = tmp_path / "orders.json"
    definition.write_text(json.dumps(order_workflow("secured")))
    publisher = secure.env("publisher", prefix, app_id)
    assert "published 1 change(s)" in _ok(
        publisher, "config", "apply", "-f", str(definition), "--yes"
    )

    # A worker authenticated by its client certificate runs with the worker ACLs only.
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTRULES_")}
    worker = WorkerProcess(env=env | secure.mtls_env(prefix, app_id), log_path=tmp_path / "w.log")
    worker.start()
    try:
        assert worker.wait_ready(timeout=120)["workflows"] == 1

        # An upstream producer may write its events topic...
        orders = secure.client("orders")
        event = cloudevent("order.created", {"orderId": "s-1"}, event_id="s-1")
        assert _produce(orders, prefix + "events.orders", orjson.dumps(event), b"s-1") is None
        runs = _read(
            secure,
            prefix + "executions",
            lambda found: any(orjson.loads(m.value())["trigger_event_id"] == "s-1" for m in found),
        )
        assert orjson.loads(runs[-1].value())["workflow_id"] == "secured"
        # ...but not the config topic: it cannot change definitions.
        forged = orjson.dumps(order_workflow("secured") | {"version": 2, "name": "forged"})
        refused = _produce(orders, prefix + "config", forged, b"workflow:secured")
        assert refused is not None
        assert refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        live = json.loads(_ok(publisher, "config", "get", "secured"))
        assert (live["version"], live["name"]) == (1, "count orders")

        # Every part of the worker works under those ACLs: the scheduler's transactions wrote
        # its baselines, the stats keeper its snapshot, and nothing died.
        _read(secure, prefix + "scheduler-state", lambda found: len(found) >= 3)
        _read(secure, prefix + "workflow-stats", lambda found: len(found) >= 1)
        # the state stream was assigned its partitions and restored their stores
        wait_until(
            lambda: len(worker.get("/readyz").json()["state_partitions"]) == 6,
            what="the state stores restored under the worker's ACLs",
        )
        wait_until(lambda: worker.get("/healthz").status_code == 200, what="a healthy worker")
        assert "authoriz" not in worker.log_tail(400).lower()
    finally:
        worker.stop()
