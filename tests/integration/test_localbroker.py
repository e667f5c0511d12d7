"""The project's JVM broker: start, reuse, serve clients, stop without leftovers."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from eventrules.kafka.localbroker import LocalBroker

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _java_pids_for(data_dir: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"kafka.Kafka" in cmdline and str(data_dir).encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def test_start_is_idempotent_serves_clients_and_stop_leaves_no_java(tmp_path: Path) -> None:
    broker = LocalBroker(
        port=_free_port(),
        controller_port=_free_port(),
        data_dir=tmp_path / "kafka",
        pom=REPO_ROOT / "kafka" / "pom.xml",
    )
    try:
        assert broker.start(timeout=120) is True
        pid = broker.running_pid()
        assert pid is not None
        assert broker.start() is False, "a second start must reuse the running broker"
        assert broker.running_pid() == pid

        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        admin.create_topics([NewTopic("probe", 1, 1)])["probe"].result(timeout=30)
        assert "probe" in admin.list_topics(timeout=10).topics
    finally:
        stopped = broker.stop()
    assert stopped is True
    assert broker.running_pid() is None
    assert _java_pids_for(tmp_path / "kafka") == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert broker.stop() is False
