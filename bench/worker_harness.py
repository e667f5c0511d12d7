"""The harness of the Kafka benchmarks: a broker, topics, worker and passthrough processes, timing.

Shared by bench_worker.py (its parts), worker_scaleout.py and bench_rules_http.py. Run as
``python bench/worker_harness.py _passthrough BOOTSTRAP GROUP OUTPUT TOPIC...`` it is the
passthrough baseline process (see :func:`passthrough`).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from eventrules.kafka.clients import watermarks
from eventrules.kafka.localbroker import LocalBroker
from eventrules.kafka.topics import apply_topics, load_topic_specs

REPO = Path(__file__).resolve().parent.parent
# The declared event topics (logical names), what a worker subscribes to.
EVENT_TOPICS = tuple(
    spec.name for spec in load_topic_specs(REPO / "topics") if spec.name.startswith("events.")
)
PASSTHROUGH_TOPIC = "bench.passthrough"
STALL_SECONDS = 120.0  # no new output for this long: something is lost, stop waiting
MIN_RECORDS = 1000  # CPU per record over fewer says more about start-up than about records
# Worker processes sent SIGTERM, to be waited for before the broker stops.
_STOPPING: list[subprocess.Popen[bytes]] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reap_stopped() -> None:
    """Wait for the workers sent SIGTERM so far (none of them runs while the next figure is
    taken)."""
    reap(_STOPPING)


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


def load_triggers() -> list[tuple[str, str]]:
    """(trigger, logical event topic) for the triggers of the catalog, in catalog order."""
    raw = yaml.safe_load((REPO / "config" / "triggers.yaml").read_text())
    return [(t["name"], t["topics"][0]) for t in raw["triggers"]]


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


def known_partitions(consumer: Consumer, topic: str, timeout: float = 30.0) -> list[int]:
    """The partitions of ``topic``, waiting while the metadata of a topic created a moment ago
    has none yet (counting over none, a run once waited for output that was long there)."""
    deadline = time.monotonic() + timeout
    while True:
        found = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if found is not None and found.error is None and found.partitions:
            return sorted(found.partitions)
        if time.monotonic() > deadline:
            raise SystemExit(f"topic {topic} has no partitions after {timeout:.0f}s")
        time.sleep(0.2)


@contextlib.contextmanager
def record_count(bootstrap: str, topics: list[str]) -> Iterator[Callable[[], int]]:
    """A function returning how many records ``topics`` hold (sum of high - low watermarks)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}"})
    partitions = [
        TopicPartition(topic, p) for topic in topics for p in known_partitions(consumer, topic)
    ]

    def count() -> int:
        total = 0
        for tp in partitions:
            low, high = watermarks(consumer, tp, timeout=30)
            total += high - low
        return total

    try:
        yield count
    finally:
        consumer.close()


def child_pids(pid: int) -> list[int]:
    """The live children of every thread of ``pid`` (the worker starts its stats keeper child
    from an executor thread, so the main thread's own list would miss it)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            children += [int(child) for child in task.read_text().split()]
    return children


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) in KiB of a process and its children (the worker's stats keeper
    runs as a child process)."""
    fields = {"VmRSS": 0, "VmHWM": 0}
    for process in (pid, *child_pids(pid)):
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
    """``python -m eventrules worker`` as a subprocess with its own web port, and its own app
    id (consumer group) unless given one; ``env`` adds settings (e.g. the guarantee)."""

    bootstrap: str
    prefix: str
    log_path: Path
    app_id: str = ""
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    started: float = 0.0

    def start(self) -> WorkerProcess:
        self.port = free_port()
        self.app_id = self.app_id or f"bench-{uuid.uuid4().hex[:12]}"
        env = os.environ | {
            "EVENTRULES_BOOTSTRAP_SERVERS": self.bootstrap,
            "EVENTRULES_TOPIC_PREFIX": self.prefix,
            "EVENTRULES_APP_ID": self.app_id,
            "EVENTRULES_WEB_PORT": str(self.port),
            "EVENTRULES_TOPICS_DIR": str(REPO / "topics"),
            **self.env,
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

    def consumed(self) -> int:
        """``eventrules_events_consumed_total`` of this worker, summed over topics and types."""
        text = httpx.get(f"{self.url}/metrics", timeout=5.0).text
        return int(
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("eventrules_events_consumed_total{")
            )
        )

    def stop(self) -> None:
        """SIGTERM now; the exit is awaited by :func:`kafka` before the broker goes."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            _STOPPING.append(self.process)


@contextlib.contextmanager
def running_worker(
    bootstrap: str, prefix: str, log_dir: Path, env: dict[str, str] | None = None
) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(
        bootstrap, prefix, log_dir / f"worker-{prefix.rstrip('.')}.log", env=dict(env or {})
    )
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


@dataclass(frozen=True)
class BenchEvent:
    id: str
    topic: str
    key: bytes
    value: bytes


def produce_one(producer: Producer, event: BenchEvent) -> None:
    """``event`` queued, waiting for room in librdkafka's queue while it is full."""
    while True:
        try:
            producer.produce(event.topic, event.value, key=event.key)
            return
        except BufferError:
            producer.poll(0.05)


def produce_all(bootstrap: str, events: list[BenchEvent]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all"})
    for event in events:
        produce_one(producer, event)
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


def rounds_summary(label: str, pairs: list[tuple[float, float]], target: float) -> str:
    """The throughput rounds of one workload: (passthrough, worker) events/s per round, each
    ratio taken within its round, and their median (one round alone moves by a third here:
    50,000 events take the passthrough about a second)."""
    median = statistics.median(worker / base for base, worker in pairs)
    rounds = ", ".join(f"{worker:,.0f}/{base:,.0f} = {worker / base:.2f}" for base, worker in pairs)
    return (
        f"  {label}: worker/passthrough per round {rounds}; "
        f"median {median:.2f} of {len(pairs)} (target >= {target})"
    )


@dataclass(frozen=True)
class Throughput:
    rate: float  # records/s from the first output record seen to the N-th
    first_after: float  # seconds from process start to the first output record
    total: float  # seconds from process start to the N-th output record
    # CPU microseconds per output record over the same span: (the process, its children, i.e.
    # a worker's stats keeper); None when no process was watched or the span was too short
    cpu_us: tuple[float, float] | None = None


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds used so far by process ``pid`` and by its live children, from each live
    thread's ``/proc/.../schedstat`` (nanoseconds; /proc's user and system times count 10 ms
    ticks, too coarse for a one-second passthrough); (0, 0) where it is not readable.

    CPU per event is the figure a shared machine moves least: the rates of one round move by a
    third here as the broker and other jobs take the cores, its CPU cost per event much less.
    """

    def used(process: int) -> float:
        total = 0
        for task in Path(f"/proc/{process}/task").glob("*/schedstat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int(task.read_text().split()[0])
        return total / 1e9

    return used(pid), sum(used(child) for child in child_pids(pid))


def time_until(
    count: Callable[[], int],
    target: int,
    started: float,
    alive: Callable[[], bool],
    pid: int | None = None,
) -> Throughput:
    """Poll ``count`` every 50 ms until it reaches ``target``; rate from the first record seen,
    and with ``pid`` the CPU that process (and its children) used per record meanwhile."""

    def wait(minimum: int) -> tuple[float, int]:
        last_seen, moved = -1, time.monotonic()
        while True:
            seen, now = count(), time.perf_counter()
            if seen >= minimum:
                return now, seen
            if not alive():
                raise SystemExit("the process under test exited")
            if seen != last_seen:
                last_seen, moved = seen, time.monotonic()
            elif time.monotonic() - moved > STALL_SECONDS:
                raise SystemExit(f"stuck at {seen:,} of {minimum:,} output records")
            time.sleep(0.05)

    first_time, first_count = wait(1)
    first_cpu = cpu_seconds(pid) if pid is not None else None
    last_time, _ = wait(target)
    last_cpu = cpu_seconds(pid) if pid is not None else None
    span = last_time - first_time
    cpu_us = None
    if first_cpu is not None and last_cpu is not None and target - first_count >= MIN_RECORDS:
        cpu_us = (
            (last_cpu[0] - first_cpu[0]) / (target - first_count) * 1e6,
            (last_cpu[1] - first_cpu[1]) / (target - first_count) * 1e6,
        )
    if first_count >= target:
        # everything arrived between two polls (a --quick run): timed from the start instead
        first_count, span = 0, last_time - started
    rate = (target - first_count) / span if span > 0 else float("inf")
    return Throughput(rate, first_time - started, last_time - started, cpu_us)


def cpu_line(base: Throughput, mine: Throughput, per_event: float = 1.0) -> str:
    """The CPU per event of a worker (and its stats keeper) beside the passthrough's;
    ``per_event`` converts per output record to per event (matches per event)."""
    if base.cpu_us is None or mine.cpu_us is None:
        return f"CPU per event not measured (fewer than {MIN_RECORDS:,} records timed)"
    worker, keeper = (value * per_event for value in mine.cpu_us)
    return (
        f"CPU per event: worker {worker:.1f} us + its stats keeper {keeper:.1f} us, "
        f"passthrough {base.cpu_us[0]:.1f} us ({base.cpu_us[0] / (worker + keeper):.2f}x)"
    )


def cpu_summary(label: str, pairs: list[tuple[Throughput, Throughput]], per_event: float) -> str:
    """The medians over rounds of :func:`cpu_line`'s figures (the passthrough's CPU per event
    over the worker's and its keeper's is what the same cores would give if the broker and
    the bench took none of them)."""
    measured = [(b, m) for b, m in pairs if b.cpu_us is not None and m.cpu_us is not None]
    if not measured:
        return f"  {label}: CPU per event not measured"
    worker = statistics.median(m.cpu_us[0] * per_event for _, m in measured if m.cpu_us)
    keeper = statistics.median(m.cpu_us[1] * per_event for _, m in measured if m.cpu_us)
    base = statistics.median(b.cpu_us[0] for b, _ in measured if b.cpu_us)
    return (
        f"  {label}: CPU per event, medians of {len(measured)}: worker {worker:.1f} us + "
        f"its stats keeper {keeper:.1f} us; passthrough {base:.1f} us "
        f"(passthrough/worker and keeper {base / (worker + keeper):.2f}x)"
    )


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
    partitions = known_partitions(consumer, output)
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


def high_watermarks(bootstrap: str, topic: str) -> dict[int, int]:
    """The end offset of each partition of ``topic``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}"})
    try:
        partitions = known_partitions(consumer, topic)
        # retried while a partition's leader is elected (topics created or grown a moment ago)
        return {
            p: watermarks(consumer, TopicPartition(topic, p), timeout=30)[1] for p in partitions
        }
    finally:
        consumer.close()


@dataclass(frozen=True)
class Execution:
    event_id: str
    workflow_id: str
    timestamp_ms: int  # the record's CreateTime: when the worker produced it


def read_executions(bootstrap: str, topic: str, starts: dict[int, int]) -> list[Execution]:
    """The execution records of ``topic`` from ``starts`` (offset per partition) to its current
    end, read committed (what a consumer of the topic sees under either guarantee)."""
    ends = high_watermarks(bootstrap, topic)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    pending = {p for p, end in ends.items() if end > starts.get(p, 0)}
    consumer.assign([TopicPartition(topic, p, starts.get(p, 0)) for p in pending])
    found: list[Execution] = []
    deadline = time.monotonic() + 120
    try:
        while pending:
            if time.monotonic() > deadline:
                raise SystemExit(f"could not read {topic} to its end")
            for message in consumer.consume(5000, 0.5):
                if message.error() is not None:
                    continue
                record = orjson.loads(message.value() or b"{}")
                _, stamp = message.timestamp()
                found.append(Execution(record["trigger_event_id"], record["workflow_id"], stamp))
            # transaction markers and aborted records take offsets: compare positions
            for tp in consumer.position([TopicPartition(topic, p) for p in pending]):
                if tp.offset >= ends[tp.partition]:
                    pending.discard(tp.partition)
    finally:
        consumer.close()
    return found


@dataclass(frozen=True)
class Tally:
    """Execution records against the (event id, workflow id) pairs expected."""

    records: int
    missing: int  # expected pairs with no record: lost
    duplicates: int  # records beyond the first for a pair
    unexpected: int  # records of pairs that should not have run

    @classmethod
    def of(cls, executions: list[Execution], expected: set[tuple[str, str]]) -> Tally:
        seen = Counter((e.event_id, e.workflow_id) for e in executions)
        return cls(
            records=len(executions),
            missing=len(expected - seen.keys()),
            duplicates=sum(n - 1 for n in seen.values()),
            unexpected=sum(n for pair, n in seen.items() if pair not in expected),
        )

    def line(self, expected: int) -> str:
        return (
            f"{self.records:,} execution records for {expected:,} expected matches: "
            f"{self.missing} lost, {self.duplicates} duplicates, {self.unexpected} unexpected"
        )


def cores_line() -> str:
    """What the processes under test run on (the broker and the bench share the same cores)."""
    usable = len(os.sched_getaffinity(0))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"cores: os.cpu_count() = {os.cpu_count()}, usable here {usable}, shared by the broker, "
        f"the workers (each with its stats keeper child) and the bench; load average {load}"
    )


def alive(process: subprocess.Popen[bytes] | None) -> Callable[[], bool]:
    return lambda: process is not None and process.poll() is None


def passthrough_rate(bootstrap: str, prefix: str, events_n: int) -> Throughput:
    """A fresh passthrough group over ``prefix``'s event topics (events pre-produced there),
    timed until it has copied ``events_n`` records to ``prefix``'s scratch topic."""
    topics = [prefix + topic for topic in EVENT_TOPICS]
    group = f"bench-passthrough-{uuid.uuid4().hex[:8]}"
    scratch = prefix + PASSTHROUGH_TOPIC
    with (
        running_passthrough(bootstrap, group, scratch, topics) as pt,
        record_count(bootstrap, [scratch]) as count,
    ):
        return time_until(count, events_n, time.perf_counter(), alive(pt), pt.pid)


if __name__ == "__main__" and sys.argv[1:2] == ["_passthrough"]:
    passthrough(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
