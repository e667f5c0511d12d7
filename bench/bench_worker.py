"""End to end: one worker against a raw confluent-kafka passthrough on the same broker.

Throughput: N events pre-produced over the 7 event topics, 1,000 workflows spread round robin
over the 26 triggers, each ``bucket == k`` with one send_email or create_task action, so every
event matches exactly one workflow. A worker started after the events are in counts as done when
the executions topic holds N records (high watermarks polled every 50 ms); the rate is taken from
the first record seen to the last. The baseline is a separate process doing what a plain stream
loop does without the engine: take a batch (up to 500), produce one record per event to a
scratch topic, flush, commit synchronously, with the worker's producer and consumer settings.
Same events, same broker, same timing.

Latency: with the worker caught up, events are produced at a paced rate (2,000/s for 10 s, with
linger.ms 5), and a consumer of the executions topic notes when each event's record arrives;
produce-to-arrival p50/p95/p99/max. The passthrough is measured the same way on its scratch topic.

Warm-up: first the passthrough and a worker run over throwaway topics, untimed, so that a fresh
broker's JIT compiler is done before anything is measured.

Memory: VmRSS of a fresh worker (with its stats keeper child process) once /readyz answers 200
with 10,000 workflow definitions on its config topic, next to a worker with none.

    .venv/bin/python bench/bench_worker.py            # full run, a few minutes
    .venv/bin/python bench/bench_worker.py --quick    # smoke run, under a minute
    .venv/bin/python bench/bench_worker.py --bootstrap 127.0.0.1:39092   # an existing broker

Without ``--bootstrap`` the script runs its own broker on free ports in a temporary directory
and stops it at the end. bench/bench_rules_http.py imports the harness below.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from eventrules.kafka.localbroker import LocalBroker
from eventrules.kafka.topics import apply_topics, load_topic_specs

REPO = Path(__file__).resolve().parent.parent
SEED = 20260109
# Trigger group -> the logical event topic its events travel on (see topics/events.*.yaml).
EVENT_TOPICS = {
    "order": "events.orders",
    "user": "events.users",
    "product": "events.products",
    "prescription": "events.prescriptions",
    "review": "events.reviews",
    "payment": "events.payments",
    "scheduled": "events.scheduled",
}
PASSTHROUGH_TOPIC = "bench.passthrough"
WARMUP_SECONDS = 2.0  # paced but untimed, before each latency run
# Worker processes sent SIGTERM, to be waited for before the broker stops.
_STOPPING: list[subprocess.Popen[bytes]] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reap(processes: list[subprocess.Popen[bytes]], timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    processes.clear()


@contextlib.contextmanager
def kafka(bootstrap: str | None) -> Iterator[str]:
    """The given cluster, or a broker of our own on free ports, stopped at the end.

    Workers stopped meanwhile are waited for first: a worker takes up to 30 s to exit after
    SIGTERM, so they exit in the background while the run goes on.
    """
    if bootstrap:
        try:
            yield bootstrap
        finally:
            reap(_STOPPING)
        return
    with tempfile.TemporaryDirectory(prefix="eventrules-bench-kafka-") as data_dir:
        broker = LocalBroker(
            port=free_port(),
            controller_port=free_port(),
            data_dir=Path(data_dir),
            pom=REPO / "kafka" / "pom.xml",
        )
        print(f"starting a broker on {broker.bootstrap_servers} ({data_dir})", flush=True)
        broker.start()
        try:
            yield broker.bootstrap_servers
        finally:
            reap(_STOPPING)
            broker.stop()


def new_prefix(label: str) -> str:
    return f"bench-{label}-{uuid.uuid4().hex[:8]}."


def create_topics(bootstrap: str, prefix: str, *extra: str) -> None:
    """The declared topics under ``prefix``, plus ``extra`` scratch topics of 3 partitions."""
    client = {"bootstrap.servers": bootstrap}
    apply_topics(client, load_topic_specs(REPO / "topics", prefix=prefix))
    if extra:
        admin = AdminClient(client)
        futures = admin.create_topics([NewTopic(prefix + name, 3, 1) for name in extra])
        for future in futures.values():
            future.result()


def publish(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> int:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all"})
    count = 0
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
    if producer.flush(60):
        raise SystemExit(f"could not publish to {topic}")
    return count


def definition_records(definitions: Iterable[dict[str, Any]]) -> Iterator[tuple[bytes, bytes]]:
    for definition in definitions:
        yield f"{definition['kind']}:{definition['id']}".encode(), orjson.dumps(definition)


def next_batch(consumer: Consumer, size: int, timeout: float) -> list[Message]:
    """Wait for the first record only, then take what is already fetched (as the worker does):
    ``consume(size, timeout)`` alone would wait out the timeout and inflate latencies."""
    first = consumer.poll(timeout)
    return [] if first is None else [first, *consumer.consume(size - 1, 0)]


@contextlib.contextmanager
def record_count(bootstrap: str, topics: list[str]) -> Iterator[Callable[[], int]]:
    """A function returning how many records ``topics`` hold (sum of high - low watermarks)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}"})
    partitions = [
        TopicPartition(topic, p)
        for topic in topics
        for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ]

    def count() -> int:
        total = 0
        for tp in partitions:
            low, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            total += high - low
        return total

    try:
        yield count
    finally:
        consumer.close()


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) in KiB of a process and its children (the worker's stats keeper
    runs as a child process)."""
    fields = {"VmRSS": 0, "VmHWM": 0}
    children = [
        int(child)
        for task in Path(f"/proc/{pid}/task").glob("*/children")
        for child in task.read_text().split()
    ]
    for process in (pid, *children):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                name, _, value = line.partition(":")
                if name in fields:
                    fields[name] += int(value.split()[0])
    return fields


def mib(kib: int) -> str:
    return f"{kib / 1024:,.1f} MiB"


@dataclass
class WorkerProcess:
    """``python -m eventrules worker`` as a subprocess with its own app id and web port."""

    bootstrap: str
    prefix: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    started: float = 0.0

    def start(self) -> WorkerProcess:
        self.port = free_port()
        env = os.environ | {
            "EVENTRULES_BOOTSTRAP_SERVERS": self.bootstrap,
            "EVENTRULES_TOPIC_PREFIX": self.prefix,
            "EVENTRULES_APP_ID": f"bench-{uuid.uuid4().hex[:12]}",
            "EVENTRULES_WEB_PORT": str(self.port),
            "EVENTRULES_TOPICS_DIR": str(REPO / "topics"),
        }
        with self.log_path.open("wb") as log:
            self.started = time.perf_counter()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "eventrules", "worker"],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None  # noqa: S101 - started before use
        return self.process.pid

    def wait_ready(self, timeout: float = 300.0) -> dict[str, Any]:
        """Poll /readyz until 200; returns its body."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise SystemExit(f"the worker exited early; see {self.log_path}")
            with contextlib.suppress(httpx.TransportError):
                response = httpx.get(f"{self.url}/readyz", timeout=2.0)
                if response.status_code == 200:
                    return dict(response.json())
            time.sleep(0.05)
        raise SystemExit(f"the worker was not ready within {timeout:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        """SIGTERM now; the exit is awaited by :func:`kafka` before the broker goes."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            _STOPPING.append(self.process)


@contextlib.contextmanager
def running_worker(bootstrap: str, prefix: str, log_dir: Path) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(bootstrap, prefix, log_dir / f"worker-{prefix.rstrip('.')}.log")
    try:
        yield worker.start()
    finally:
        worker.stop()


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def latency_line(label: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    figures = "  ".join(
        f"{name} {percentile(ordered, q) * 1000:7.1f} ms"
        for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
    )
    return f"  {label:<28} {figures}"


def load_triggers() -> list[tuple[str, str]]:
    """(trigger, logical event topic) for the 26 triggers of the catalog, in catalog order."""
    raw = yaml.safe_load((REPO / "config" / "triggers.yaml").read_text())
    return [(t["name"], t["topics"][0]) for t in raw["triggers"]]


def make_workflows(count: int, triggers: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Workflow i: trigger i mod 26, condition ``bucket == i // 26``: one match per event."""
    workflows = []
    for i in range(count):
        trigger = triggers[i % len(triggers)][0]
        if i % 2 == 0:
            action = {
                "type": "send_email",
                "to": "{{ email }}",
                "subject": "About {{ subject_id }}",
                "body": "Hello, {{ trigger }} number {{ n }} was processed.",
            }
        else:
            action = {"type": "create_task", "title": "Follow up {{ subject_id }}"}
        workflows.append(
            {
                "kind": "workflow",
                "id": f"bench-{i:05d}",
                "version": 1,
                "name": f"bench workflow {i}",
                "trigger": trigger,
                "conditions": f"bucket == {i // len(triggers)}",
                "priority": 5,
                "created_by": "bench",
                "actions": [action],
            }
        )
    return workflows


@dataclass(frozen=True)
class BenchEvent:
    id: str
    topic: str
    key: bytes
    value: bytes


def make_events(
    count: int, workflows: int, triggers: list[tuple[str, str]], prefix: str, rng: random.Random
) -> list[BenchEvent]:
    run = uuid.uuid4().hex[:8]
    events = []
    for n in range(count):
        target = rng.randrange(workflows)
        trigger, topic = triggers[target % len(triggers)]
        event_id = f"ev-{run}-{n}"
        subject = f"entity-{rng.randrange(100_000)}"
        envelope = {
            "specversion": "1.0",
            "id": event_id,
            "source": "bench/worker",
            "type": trigger,
            "subject": subject,
            "datacontenttype": "application/json",
            "data": {
                "bucket": target // len(triggers),
                "n": n,
                "trigger": trigger,
                "subject_id": subject,
                "email": f"user{n % 1000}@example.com",
                "total": round(rng.uniform(1, 1000), 2),
            },
        }
        events.append(
            BenchEvent(event_id, prefix + topic, subject.encode(), orjson.dumps(envelope))
        )
    return events


def produce_all(bootstrap: str, events: list[BenchEvent]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all"})
    for event in events:
        while True:
            try:
                producer.produce(event.topic, event.value, key=event.key)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120):
        raise SystemExit("could not produce the events")


def passthrough(bootstrap: str, group: str, output: str, topics: list[str]) -> None:
    """A plain stream loop without the engine: batch -> produce -> flush -> commit."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    client = {"bootstrap.servers": bootstrap}
    # The same settings as eventrules.runtime.stream.StreamLoop.
    producer = Producer({**client, "linger.ms": 5, "enable.idempotence": True, "acks": "all"})
    consumer = Consumer(
        {
            **client,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 2_500,
        }
    )
    consumer.subscribe(topics)
    try:
        while not stopping.is_set():
            batch = [m for m in next_batch(consumer, 500, 0.2) if m.error() is None]
            if not batch:
                continue
            last: dict[tuple[str, int], int] = {}
            for message in batch:
                while True:
                    try:
                        producer.produce(output, message.value(), key=message.key())
                        break
                    except BufferError:
                        producer.poll(0.1)
                where = (message.topic() or "", message.partition() or 0)
                last[where] = max(last.get(where, -1), message.offset() or 0)
            if producer.flush(60):
                raise SystemExit("passthrough: outputs not delivered")
            consumer.commit(
                offsets=[TopicPartition(t, p, o + 1) for (t, p), o in last.items()],
                asynchronous=False,
            )
    finally:
        producer.flush(10)
        consumer.close()


@contextlib.contextmanager
def running_passthrough(
    bootstrap: str, group: str, output: str, topics: list[str]
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, __file__, "_passthrough", bootstrap, group, output, *topics],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@dataclass(frozen=True)
class Throughput:
    rate: float  # records/s from the first output record seen to the N-th
    first_after: float  # seconds from process start to the first output record
    total: float  # seconds from process start to the N-th output record


def time_until(
    count: Callable[[], int], target: int, started: float, alive: Callable[[], bool]
) -> Throughput:
    """Poll ``count`` every 50 ms until it reaches ``target``; rate from the first record seen."""

    def wait(minimum: int) -> tuple[float, int]:
        while True:
            seen, now = count(), time.perf_counter()
            if seen >= minimum:
                return now, seen
            if not alive():
                raise SystemExit("the process under test exited")
            time.sleep(0.05)

    first_time, first_count = wait(1)
    last_time, _ = wait(target)
    span = last_time - first_time
    rate = (target - first_count) / span if span > 0 else float("inf")
    return Throughput(rate, first_time - started, last_time - started)


def paced_latency(
    bootstrap: str,
    warmup: list[BenchEvent],
    events: list[BenchEvent],
    *,
    rate: float,
    output: str,
    event_id_of: Callable[[dict[str, Any]], str],
) -> tuple[list[float], float, int]:
    """Produce ``warmup`` then ``events`` at ``rate``/s; time each event's arrival on ``output``.

    The warm-up events are not timed: a fresh producer's first second or so is slow (metadata,
    connections, first writes to the partitions) whatever consumes the events.
    Returns (latencies in seconds, achieved produce rate, events not seen within 30 s).
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}"})
    partitions = consumer.list_topics(output, timeout=10).topics[output].partitions
    start_at = []
    for p in partitions:
        _, high = consumer.get_watermark_offsets(TopicPartition(output, p), timeout=10)
        start_at.append(TopicPartition(output, p, high))
    consumer.assign(start_at)
    consumer.consume(1, 0.5)  # let the fetchers start before the clock does
    sent: dict[str, float] = {}
    # linger.ms 5, the Java client's default since Kafka 4.0, as an upstream service would send;
    # with 0 every event was a request of its own and the broker spent a core on the load
    # generator, starving what is measured on two cores. The latency includes the linger.
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    span: list[float] = []

    def produce() -> None:
        begin = time.perf_counter()
        for n, event in enumerate([*warmup, *events]):
            delay = begin + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if n >= len(warmup):
                sent[event.id] = time.perf_counter()
            producer.produce(event.topic, event.value, key=event.key)
            producer.poll(0)
        span.append(time.perf_counter() - begin - len(warmup) / rate)
        producer.flush(30)

    sender = threading.Thread(target=produce, name="paced-producer")
    sender.start()
    latencies: list[float] = []
    deadline = None
    try:
        while len(latencies) < len(events):
            messages: list[Message] = next_batch(consumer, 1000, 0.05)
            arrived = time.perf_counter()
            for message in messages:
                if message.error() is not None or message.value() is None:
                    continue
                started = sent.get(event_id_of(orjson.loads(message.value() or b"")))
                if started is not None:
                    latencies.append(arrived - started)
            if span and deadline is None:
                deadline = time.monotonic() + 30
            if deadline is not None and time.monotonic() > deadline:
                break
    finally:
        sender.join()
        consumer.close()
    achieved = (len(events) - 1) / span[0] if span and span[0] > 0 else float("nan")
    return latencies, achieved, len(events) - len(latencies)


@dataclass
class Bench:
    """One run's shared state: the cluster, the workload, the main prefix's topics."""

    bootstrap: str
    log_dir: Path
    triggers: list[tuple[str, str]]
    workflows: int
    rate: float
    seconds: float
    rng: random.Random
    prefix: str = ""
    group: str = ""

    def __post_init__(self) -> None:
        self.prefix = new_prefix("worker")
        self.group = f"bench-passthrough-{uuid.uuid4().hex[:8]}"

    @property
    def event_topics(self) -> list[str]:
        return [self.prefix + topic for topic in EVENT_TOPICS.values()]

    @property
    def executions(self) -> str:
        return self.prefix + "executions"

    @property
    def scratch(self) -> str:
        return self.prefix + PASSTHROUGH_TOPIC

    def events(self, count: int) -> list[BenchEvent]:
        return make_events(count, self.workflows, self.triggers, self.prefix, self.rng)

    def paced_events(self) -> tuple[list[BenchEvent], list[BenchEvent]]:
        """(warm-up, timed) events for a latency run."""
        return self.events(int(self.rate * WARMUP_SECONDS)), self.events(
            int(self.rate * self.seconds)
        )


def alive(process: subprocess.Popen[bytes] | None) -> Callable[[], bool]:
    return lambda: process is not None and process.poll() is None


def passthrough_throughput(bench: Bench, events_n: int) -> Throughput:
    with (
        running_passthrough(bench.bootstrap, bench.group, bench.scratch, bench.event_topics) as pt,
        record_count(bench.bootstrap, [bench.scratch]) as count,
    ):
        return time_until(count, events_n, time.perf_counter(), alive(pt))


def worker_throughput_and_latency(bench: Bench, events_n: int, base: Throughput) -> list[float]:
    """Throughput of a fresh worker on the pre-produced events, then its paced latency."""
    with (
        running_worker(bench.bootstrap, bench.prefix, bench.log_dir) as worker,
        record_count(bench.bootstrap, [bench.executions]) as count,
        record_count(bench.bootstrap, [bench.prefix + "dlq"]) as dead,
    ):
        body = worker.wait_ready()
        if body["workflows"] != bench.workflows:
            raise SystemExit(f"the worker loaded {body['workflows']} workflows")
        ready_after = time.perf_counter() - worker.started
        mine = time_until(count, events_n, worker.started, alive(worker.process))
        time.sleep(1.0)
        records = count()
        print(
            f"  eventrules worker            {mine.rate:>10,.0f} events/s   "
            f"(ready after {ready_after:.2f}s, first execution after "
            f"{mine.first_after:.2f}s, all after {mine.total:.2f}s)"
        )
        print(
            f"  worker/passthrough = {mine.rate / base.rate:.2f} (target >= 0.5); "
            f"{records:,} execution records, {dead()} dead letters",
            flush=True,
        )

        warmup, events = bench.paced_events()
        print(
            f"latency: {len(events):,} events paced at {bench.rate:,.0f}/s for "
            f"{bench.seconds:.0f}s after {WARMUP_SECONDS:.0f}s of warm-up; "
            "produce -> output record seen by a consumer",
            flush=True,
        )
        latencies, achieved, missing = paced_latency(
            bench.bootstrap,
            warmup,
            events,
            rate=bench.rate,
            output=bench.executions,
            event_id_of=lambda r: r["trigger_event_id"],
        )
        print(
            latency_line("eventrules worker", latencies)
            + f"   ({achieved:,.0f}/s sent, {missing} not seen)",
            flush=True,
        )
        rss = rss_kib(worker.pid)
        print(
            f"  (the worker's RSS after both runs: {mib(rss['VmRSS'])}; "
            f"{count() - records:,} executions in this run)"
        )
    return latencies


def passthrough_latency(bench: Bench) -> None:
    """The passthrough resumes its group, catches up on the worker's paced events, is timed."""
    with (
        running_passthrough(bench.bootstrap, bench.group, bench.scratch, bench.event_topics) as pt,
        record_count(bench.bootstrap, [bench.scratch]) as count,
        record_count(bench.bootstrap, bench.event_topics) as produced,
    ):
        time_until(count, produced(), time.perf_counter(), alive(pt))
        warmup, events = bench.paced_events()
        latencies, achieved, missing = paced_latency(
            bench.bootstrap,
            warmup,
            events,
            rate=bench.rate,
            output=bench.scratch,
            event_id_of=lambda r: r["id"],
        )
    print(
        latency_line("raw passthrough", latencies)
        + f"   ({achieved:,.0f}/s sent, {missing} not seen)",
        flush=True,
    )


def fresh_worker_rss(bench: Bench, workflows: int) -> tuple[dict[str, int], float]:
    """RSS of a worker on a fresh prefix whose config topic holds ``workflows`` definitions."""
    prefix = new_prefix(f"memory{workflows}")
    create_topics(bench.bootstrap, prefix)
    if workflows:
        definitions = make_workflows(workflows, bench.triggers)
        publish(bench.bootstrap, prefix + "config", definition_records(definitions))
    with running_worker(bench.bootstrap, prefix, bench.log_dir) as worker:
        body = worker.wait_ready()
        ready_after = time.perf_counter() - worker.started
        if body["workflows"] != workflows:
            raise SystemExit(f"the worker loaded {body['workflows']} of {workflows} workflows")
        rss = rss_kib(worker.pid)
    print(
        f"  {workflows:>6,} workflows             RSS {mib(rss['VmRSS'])}  "
        f"peak {mib(rss['VmHWM'])}   (ready after {ready_after:.2f}s)",
        flush=True,
    )
    return rss, ready_after


def warm_up(bench: Bench, events_n: int, seconds: float) -> None:
    """Run the passthrough and a worker over throwaway topics before anything is timed.

    A fresh broker's JIT compiler took about half a core for its first minute or two: whatever
    was measured then (the worker, which runs after the passthrough) paid for it.
    """
    began = time.perf_counter()
    prefix = new_prefix("warmup")
    create_topics(bench.bootstrap, prefix, PASSTHROUGH_TOPIC)
    publish(
        bench.bootstrap,
        prefix + "config",
        definition_records(make_workflows(bench.workflows, bench.triggers)),
    )
    rng = random.Random(SEED + 1)  # the measured workload stays the same with or without this

    def events(count: int) -> list[BenchEvent]:
        return make_events(count, bench.workflows, bench.triggers, prefix, rng)

    produce_all(bench.bootstrap, events(events_n))
    topics = [prefix + topic for topic in EVENT_TOPICS.values()]
    group = f"warmup-{uuid.uuid4().hex[:8]}"
    with (
        running_passthrough(bench.bootstrap, group, prefix + PASSTHROUGH_TOPIC, topics) as pt,
        record_count(bench.bootstrap, [prefix + PASSTHROUGH_TOPIC]) as count,
    ):
        time_until(count, events_n, time.perf_counter(), alive(pt))
    with (
        running_worker(bench.bootstrap, prefix, bench.log_dir) as worker,
        record_count(bench.bootstrap, [prefix + "executions"]) as count,
    ):
        worker.wait_ready()
        time_until(count, events_n, worker.started, alive(worker.process))
        paced_latency(
            bench.bootstrap,
            [],
            events(int(bench.rate * seconds)),
            rate=bench.rate,
            output=prefix + "executions",
            event_id_of=lambda r: r["trigger_event_id"],
        )
    reap(_STOPPING)  # nothing of the warm-up runs while the figures are taken
    print(
        f"warm-up: passthrough and a worker over {events_n:,} + {bench.rate * seconds:,.0f} "
        f"events on throwaway topics, {time.perf_counter() - began:.0f}s (not measured)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="an existing cluster; default: start a broker")
    parser.add_argument("--quick", action="store_true", help="small figures, a smoke run")
    parser.add_argument("--events", type=int, help="events for the throughput runs (50,000)")
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=2000.0, help="paced events/s for latency")
    parser.add_argument("--seconds", type=float, help="length of each latency run (10)")
    parser.add_argument("--memory-workflows", type=int, help="definitions for RSS (10,000)")
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        help="paced seconds of the untimed warm-up (20; 0 skips the warm-up)",
    )
    args = parser.parse_args()
    events_n = args.events or (3_000 if args.quick else 50_000)
    memory_n = args.memory_workflows or (1_000 if args.quick else 10_000)
    began = time.perf_counter()

    with kafka(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as tmp:
        bench = Bench(
            bootstrap,
            Path(tmp),
            load_triggers(),
            args.workflows,
            args.rate,
            args.seconds or (2.0 if args.quick else 10.0),
            random.Random(SEED),
        )
        warmup_seconds = (
            args.warmup_seconds if args.warmup_seconds is not None else (2 if args.quick else 20)
        )
        if warmup_seconds > 0:
            warm_up(bench, events_n, warmup_seconds)
        create_topics(bootstrap, bench.prefix, PASSTHROUGH_TOPIC)
        publish(
            bootstrap,
            bench.prefix + "config",
            definition_records(make_workflows(bench.workflows, bench.triggers)),
        )
        produce_all(bootstrap, bench.events(events_n))
        print(
            f"throughput: {events_n:,} events pre-produced on 7 topics x 3 partitions, "
            f"{bench.workflows:,} workflows over {len(bench.triggers)} triggers, "
            "1 match per event",
            flush=True,
        )
        base = passthrough_throughput(bench, events_n)
        print(
            f"  raw passthrough              {base.rate:>10,.0f} events/s   "
            f"(first output after {base.first_after:.2f}s, all after {base.total:.2f}s)",
            flush=True,
        )
        latencies = worker_throughput_and_latency(bench, events_n, base)
        passthrough_latency(bench)
        p99 = percentile(sorted(latencies), 0.99) * 1000
        print(f"  worker p99 {p99:.1f} ms (target < 100 ms)", flush=True)

        print("memory: VmRSS of a fresh worker once /readyz is 200 (peak = VmHWM)", flush=True)
        empty, _ = fresh_worker_rss(bench, 0)
        full, _ = fresh_worker_rss(bench, memory_n)
        grown = full["VmRSS"] - empty["VmRSS"]
        print(f"  difference {mib(grown)}, {grown / memory_n:.1f} KiB per workflow")
    print(f"done in {time.perf_counter() - began:.0f}s")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_passthrough":
        passthrough(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    else:
        main()
