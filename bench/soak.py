"""Soak: many events, a share of them hostile, through two workers; nothing exits and the counts
reconcile exactly.

N events (100,000; 5% hostile) are spread over three event topics: order.created (matched by
one workflow with a create_task action), user.registered (one workflow with a send_email
action), product.low_stock (no workflow: not matched), and hostile records of six kinds (not
JSON, no type, data not an object, nested 300 deep, over the event size limit, a binary-mode
event with a header that is not UTF-8). Two workers of one group are started before anything
is produced, so the group is settled before the first event and no rebalance replays one.

Reconciled at the end, each from its own source:

* consumed: the group's committed offsets over the event topics (= N, every record read);
* executed: distinct event ids in the executions topic;
* not matched: ``eventrules_events_unmatched_total`` summed over both workers;
* dead-lettered: distinct source offsets in the dlq topic;

consumed = executed + not matched + dead-lettered, each equal to what was produced of its kind,
with 0 worker exits and /healthz 200 on both workers.

    .venv/bin/python bench/soak.py                      # 100,000 events, 5% hostile
    .venv/bin/python bench/soak.py --events 5000        # the CI size
    .venv/bin/python bench/soak.py --bootstrap HOST:PORT

Without --bootstrap it runs its own broker on free ports and stops it at the end.
tests/integration/test_soak.py runs :func:`soak` at the CI size against the session broker.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from eventrules.kafka.localbroker import LocalBroker
from eventrules.kafka.topics import apply_topics, load_topic_specs

REPO = Path(__file__).resolve().parent.parent
MAX_EVENT_BYTES = 16_384
HOSTILE_KINDS = ("not_json", "no_type", "data_list", "deep", "oversized", "bad_header")
_TOPICS = {"order": "events.orders", "user": "events.users", "product": "events.products"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class SoakResult:
    produced: dict[str, int]
    consumed: int
    executed: int
    unmatched: int
    dead_lettered: int
    dead_reasons: dict[str, int]
    exits: int
    healthy: bool
    seconds: float
    events_per_second: float
    worker_logs: list[Path] = field(default_factory=list)

    @property
    def reconciled(self) -> bool:
        return (
            self.consumed == self.executed + self.unmatched + self.dead_lettered
            and self.executed == self.produced["matched"]
            and self.unmatched == self.produced["unmatched"]
            and self.dead_lettered == self.produced["hostile"]
            and self.exits == 0
            and self.healthy
        )

    def lines(self) -> list[str]:
        return [
            f"produced: {sum(self.produced.values()):,} ({self.produced})",
            f"consumed {self.consumed:,} = executed {self.executed:,} + not matched "
            f"{self.unmatched:,} + dead-lettered {self.dead_lettered:,}"
            f" -> {'reconciled' if self.reconciled else 'NOT reconciled'}",
            f"dead letters by reason: {self.dead_reasons}",
            f"worker exits: {self.exits}; /healthz 200 on both: {self.healthy}",
            f"{self.seconds:.1f} s from the first event produced to the last reconciled "
            f"({self.events_per_second:,.0f} events/s through two workers)",
        ]


def _hostile(kind: str, event_id: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": "soak",
        "type": "order.created",
        "data": {"orderId": event_id},
    }
    if kind == "not_json":
        return b"\x00soak " + event_id.encode(), []
    if kind == "no_type":
        del envelope["type"]
    elif kind == "data_list":
        envelope["data"] = [event_id]
    elif kind == "deep":
        deep = b'{"x":' * 300 + b"1" + b"}" * 300
        return orjson.dumps(envelope | {"data": "D"}).replace(b'"D"', deep), []
    elif kind == "oversized":
        envelope["data"] = {"pad": "x" * (MAX_EVENT_BYTES + 100)}
    else:
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", event_id.encode()),
            ("ce_source", b"soak"),
            ("ce_type", b"order.created"),
            ("ce_subject", b"\xff\xfe"),
        ]
        return orjson.dumps({"orderId": event_id}), headers
    return orjson.dumps(envelope), []


def _workflows() -> list[dict[str, Any]]:
    base = {"kind": "workflow", "version": 1, "created_by": "soak"}
    return [
        base
        | {
            "id": "soak-orders",
            "name": "soak orders",
            "trigger": "order.created",
            "actions": [{"type": "create_task", "title": "check {{orderId}}"}],
        },
        base
        | {
            "id": "soak-users",
            "name": "soak users",
            "trigger": "user.registered",
            "actions": [
                {"type": "send_email", "to": "{{email}}", "subject": "hi", "body": "welcome"}
            ],
        },
    ]


def _produce(
    bootstrap: str, prefix: str, events: int, hostile_share: float, seed: int
) -> dict[str, int]:
    rng = random.Random(seed)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    produced = {"matched": 0, "unmatched": 0, "hostile": 0}
    for n in range(events):
        event_id = f"soak-{n}"
        roll = rng.random()
        headers: list[tuple[str, bytes]] = []
        if roll < hostile_share:
            value, headers = _hostile(HOSTILE_KINDS[n % len(HOSTILE_KINDS)], event_id)
            topic, kind = _TOPICS["order"], "hostile"
        else:
            family = rng.choices(["order", "user", "product"], weights=[6, 2, 2])[0]
            event_type = {"order": "order.created", "user": "user.registered"}.get(
                family, "product.low_stock"
            )
            data = {"orderId": event_id, "email": f"{event_id}@example.com", "stock": n % 50}
            value = orjson.dumps(
                {
                    "specversion": "1.0",
                    "id": event_id,
                    "source": "soak",
                    "type": event_type,
                    "data": data,
                }
            )
            topic, kind = _TOPICS[family], "unmatched" if family == "product" else "matched"
        produced[kind] += 1
        while True:
            try:
                producer.produce(prefix + topic, value, key=event_id.encode(), headers=headers)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(120):
        raise RuntimeError("the soak's events were not all delivered")
    return produced


def _committed(bootstrap: str, group: str, topics: list[str]) -> tuple[int, int]:
    """(sum of the group's committed offsets, sum of the high watermarks) over ``topics``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ]
        committed = consumer.committed(partitions, timeout=10)
        done = sum(max(0, tp.offset) for tp in committed)
        high = sum(consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions)
        return done, high
    finally:
        consumer.close()


def _read_all(bootstrap: str, topic: str) -> list[Any]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"soak-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, -2) for p in partitions])
        found: list[Any] = []
        pending = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + 300
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                if message.error() is None:
                    found.append(message)
            positions = consumer.position([TopicPartition(topic, p) for p in pending])
            pending -= {tp.partition for tp in positions if tp.offset >= ends[tp.partition]}
        return found
    finally:
        consumer.close()


def _metric(url: str, name: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10, trust_env=False).text
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


@contextlib.contextmanager
def _workers(bootstrap: str, prefix: str, app_id: str, log_dir: Path) -> Iterator[list[Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTRULES_")}
    env |= {
        "EVENTRULES_BOOTSTRAP_SERVERS": bootstrap,
        "EVENTRULES_TOPIC_PREFIX": prefix,
        "EVENTRULES_APP_ID": app_id,
        "EVENTRULES_TOPICS_DIR": str(REPO / "topics"),
        "EVENTRULES_MAX_EVENT_BYTES": str(MAX_EVENT_BYTES),
    }
    started: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for n in range(2):
            port = _free_port()
            log = log_dir / f"soak-worker-{n}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "eventrules", "worker", "--loglevel", "info"],
                    env=env | {"EVENTRULES_WEB_PORT": str(port)},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=REPO,
                )
            started.append((process, f"http://127.0.0.1:{port}", log))
        for process, url, log in started:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"a soak worker exited at start; see {log}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + "/readyz", timeout=5, trust_env=False).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"a soak worker was not ready in 120 s; see {log}")
                time.sleep(0.3)
        yield started
    finally:
        for process, _, _ in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _, _ in started:
            try:
                process.wait(45)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def soak(
    bootstrap: str,
    log_dir: Path,
    *,
    events: int = 100_000,
    hostile_share: float = 0.05,
    seed: int = 11,
    timeout: float = 900.0,
) -> SoakResult:
    """Run the soak against ``bootstrap`` (topics under a fresh prefix) and reconcile."""
    prefix = f"soak-{uuid.uuid4().hex[:8]}."
    app_id = f"soak-{uuid.uuid4().hex[:8]}"
    specs = load_topic_specs(REPO / "topics", prefix=prefix)
    apply_topics({"bootstrap.servers": bootstrap}, specs)
    config = Producer({"bootstrap.servers": bootstrap})
    for workflow in _workflows():
        config.produce(
            prefix + "config", orjson.dumps(workflow), key=f"workflow:{workflow['id']}".encode()
        )
    config.flush(30)
    event_topics = [prefix + spec.name for spec in specs if spec.name.startswith("events.")]
    with _workers(bootstrap, prefix, app_id, log_dir) as workers:
        # Both workers hold their share before the first event: no rebalance replays one.
        time.sleep(5)
        started = time.monotonic()
        produced = _produce(bootstrap, prefix, events, hostile_share, seed)
        deadline = started + timeout
        while True:
            done, high = _committed(bootstrap, app_id, event_topics)
            if done >= high or time.monotonic() > deadline:
                break
            time.sleep(1)
        executions = _read_all(bootstrap, prefix + "executions")
        letters = _read_all(bootstrap, prefix + "dlq")
        seconds = time.monotonic() - started
        urls = [url for _, url, _ in workers]
        unmatched = int(sum(_metric(url, "eventrules_events_unmatched_total") for url in urls))
        exits = sum(1 for process, _, _ in workers if process.poll() is not None)
        healthy = exits == 0 and all(
            httpx.get(url + "/healthz", timeout=10, trust_env=False).status_code == 200
            for url in urls
        )
        sources = {}
        for letter in letters:
            headers = {
                name: (value or b"").decode(errors="replace")
                for name, value in letter.headers() or []
            }
            where = (
                headers.get("dlq.source.topic"),
                headers.get("dlq.source.partition"),
                headers.get("dlq.source.offset"),
            )
            sources[where] = headers.get("dlq.reason", "?")
        reasons: dict[str, int] = {}
        for reason in sources.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        return SoakResult(
            produced=produced,
            consumed=done,
            executed=len({orjson.loads(m.value())["trigger_event_id"] for m in executions}),
            unmatched=unmatched,
            dead_lettered=len(sources),
            dead_reasons=dict(sorted(reasons.items())),
            exits=exits,
            healthy=healthy,
            seconds=seconds,
            events_per_second=events / seconds,
            worker_logs=[log for _, _, log in workers],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--hostile-share", type=float, default=0.05)
    parser.add_argument("--bootstrap", help="an existing broker; default: a private one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="eventrules-soak-") as tmp:
        folder = Path(tmp)
        broker = None
        bootstrap = args.bootstrap
        if bootstrap is None:
            broker = LocalBroker(
                port=_free_port(),
                controller_port=_free_port(),
                data_dir=folder / "kafka",
                pom=REPO / "kafka" / "pom.xml",
            )
            broker.start(timeout=120)
            bootstrap = broker.bootstrap_servers
        try:
            result = soak(bootstrap, folder, events=args.events, hostile_share=args.hostile_share)
        finally:
            if broker is not None:
                broker.stop()
    for line in result.lines():
        print(line)
    raise SystemExit(0 if result.reconciled else 1)


if __name__ == "__main__":
    main()
