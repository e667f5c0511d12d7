"""A deployment under test: its own topic prefix on the session broker, workers as real
processes (``eventrules worker``), and helpers to produce and read records."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from eventrules.kafka.topics import apply_topics, load_topic_specs

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = REPO_ROOT / "config" / "templates"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class _EventrulesProcess:
    """An ``eventrules`` subprocess serving HTTP on its own port, its output in a log file."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, *args: str, env: dict[str, str]) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "eventrules", *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=REPO_ROOT,
            )

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: a crash, no chance to commit or flush anything."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class WorkerProcess(_EventrulesProcess):
    """One ``eventrules worker`` subprocess with its own web port."""

    def start(self) -> WorkerProcess:
        env = {**self.env, "EVENTRULES_WEB_PORT": str(self.port)}
        self._spawn("worker", "--loglevel", "info", env=env)
        return self

    def get(self, path: str, *, timeout: float = 5.0) -> httpx.Response:
        return httpx.get(self.url + path, timeout=timeout, trust_env=False)

    def wait_ready(self, timeout: float = 90.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            assert self.process.poll() is None, self.log_tail()
            try:
                response = self.get("/readyz")
                if response.status_code == 200:
                    body: dict[str, Any] = response.json()
                    return body
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"worker not ready in {timeout}s\n{self.log_tail()}")

    def metrics(self) -> str:
        return self.get("/metrics").text

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample in /metrics (0.0 when absent)."""
        wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
        for line in self.metrics().splitlines():
            if line.startswith("#"):
                continue
            sample, _, value = line.rpartition(" ")
            metric_name, _, label_text = sample.partition("{")
            got = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
            if metric_name == name and got == wanted:
                return float(value)
        return 0.0


@dataclass
class ConsoleProcess(_EventrulesProcess):
    """One ``eventrules console`` subprocess on its own port."""

    args: tuple[str, ...] = ()

    def start(self) -> ConsoleProcess:
        self._spawn("console", "--port", str(self.port), *self.args, env=self.env)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            assert self.process.poll() is None, self.log_tail()
            try:
                if httpx.get(self.url + "/healthz", timeout=2, trust_env=False).is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"console not ready in {timeout}s\n{self.log_tail()}")


@dataclass
class Deployment:
    """Topics under a unique prefix, a unique consumer group, workers started on demand."""

    bootstrap: str
    tmp: Path
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}.")
    app_id: str = field(default_factory=lambda: f"app-{uuid.uuid4().hex[:10]}")
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: list[WorkerProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        specs = load_topic_specs(REPO_ROOT / "topics", prefix=self.prefix)
        apply_topics({"bootstrap.servers": self.bootstrap}, specs)
        self._producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 0})

    def topic(self, logical: str) -> str:
        return self.prefix + logical

    def set_topic_config(self, logical: str, name: str, value: str) -> None:
        """Change one config of a deployed topic (e.g. its ``max.message.bytes``)."""
        resource = ConfigResource(
            ResourceType.TOPIC,
            self.topic(logical),
            incremental_configs=[
                ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
            ],
        )
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        for future in admin.incremental_alter_configs([resource]).values():
            future.result(30)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTRULES_")}
        env.update(
            EVENTRULES_BOOTSTRAP_SERVERS=self.bootstrap,
            EVENTRULES_TOPIC_PREFIX=self.prefix,
            EVENTRULES_APP_ID=self.app_id,
            EVENTRULES_TOPICS_DIR=str(REPO_ROOT / "topics"),
            EVENTRULES_LAG_INTERVAL_SECONDS="1",
        )
        env.update(self.extra_env)
        return env

    def start_worker(self, **extra_env: str) -> WorkerProcess:
        # each worker its own state folder, as on separate hosts: a partition that moves is
        # restored from the changelog topic
        state_dir = self.tmp / f"state-{len(self.workers)}"
        worker = WorkerProcess(
            env={"EVENTRULES_STATE_DIR": str(state_dir), **self.env(), **extra_env},
            log_path=self.tmp / f"worker-{len(self.workers)}.log",
        )
        self.workers.append(worker.start())
        return worker

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self._producer.flush(10)

    # producing ------------------------------------------------------------------------------

    def produce(
        self,
        logical_topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: dict[str, bytes] | list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        extra: dict[str, Any] = {} if partition is None else {"partition": partition}
        if timestamp_ms is not None:
            extra["timestamp"] = timestamp_ms
        self._producer.produce(
            self.topic(logical_topic), value=value, key=key, headers=headers, **extra
        )
        assert self._producer.flush(30) == 0

    def produce_orders(self, ids: list[str], *, flush: bool = True) -> None:
        """One ``order.created`` event per id (the id is the event id and ``orderId``)."""
        for event_id in ids:
            event = cloudevent("order.created", {"orderId": event_id}, event_id=event_id)
            self._producer.produce(
                self.topic("events.orders"), orjson.dumps(event), key=event_id.encode()
            )
        if flush:
            assert self._producer.flush(30) == 0
        else:
            self._producer.poll(0)

    def publish_definition(self, definition: dict[str, Any]) -> None:
        key = f"{definition.get('kind', 'workflow')}:{definition['id']}".encode()
        self.produce("config", orjson.dumps(definition), key=key)

    def delete_definition(self, definition_id: str, kind: str = "workflow") -> None:
        self.produce("config", None, key=f"{kind}:{definition_id}".encode())

    # reading --------------------------------------------------------------------------------

    def read(
        self,
        logical_topic: str,
        *,
        until: Callable[[list[Message]], bool],
        timeout: float = 60.0,
        isolation: str = "read_committed",
    ) -> list[Message]:
        """Every record of a topic from the start until ``until(records)`` holds."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"reader-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "isolation.level": isolation,
            }
        )
        topic = self.topic(logical_topic)
        metadata = consumer.list_topics(topic, timeout=10)
        consumer.assign([TopicPartition(topic, p, -2) for p in metadata.topics[topic].partitions])
        records: list[Message] = []
        deadline = time.monotonic() + timeout
        try:
            while not until(records):
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{topic}: condition not met in {timeout}s with {len(records)} records"
                    )
                message = consumer.poll(0.2)
                if message is not None and not message.error():
                    records.append(message)
        finally:
            consumer.close()
        return records

    def read_json(
        self,
        logical_topic: str,
        *,
        until: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 60.0,
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []

        def check(records: list[Message]) -> bool:
            found[:] = [orjson.loads(r.value()) for r in records if r.value() is not None]
            return until(found)

        self.read(logical_topic, until=check, timeout=timeout)
        return found

    def executions(
        self, until: Callable[[list[dict[str, Any]]], bool], timeout: float = 60.0
    ) -> list[dict[str, Any]]:
        return self.read_json("executions", until=until, timeout=timeout)


def cli_ok(runner: Any, *args: str) -> str:
    """Run an ``eventrules`` command in-process; it must succeed."""
    from eventrules.cli.main import cli

    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return str(result.output)


def wait_until(condition: Callable[[], bool], *, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.1)


def cloudevent(
    type_: str, data: dict[str, Any], *, event_id: str | None = None, subject: str | None = None
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id or uuid.uuid4().hex,
        "source": "tests/harness",
        "type": type_,
        "subject": subject,
        "time": "2026-01-10T08:00:00Z",
        "data": data,
    }


def ids_of(executions: Iterable[dict[str, Any]], workflow_id: str | None = None) -> list[str]:
    return [
        e["trigger_event_id"]
        for e in executions
        if workflow_id is None or e["workflow_id"] == workflow_id
    ]


def order_workflow(workflow_id: str = "count-orders") -> dict[str, Any]:
    """A workflow with one ``create_task`` action for every ``order.created`` event."""
    return {
        "kind": "workflow",
        "id": workflow_id,
        "version": 1,
        "name": "count orders",
        "trigger": "order.created",
        "created_by": "tests",
        "actions": [{"type": "create_task", "title": "check {{orderId}}", "assignee": "ops"}],
    }
