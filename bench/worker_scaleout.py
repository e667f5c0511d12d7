"""The scale-out run of bench_worker.py: 1, 2, 4 worker processes in one group, same events.

The general workload (worker_general.py) runs on event topics grown to P partitions each (12:
the workers' range assignor splits each topic on its own, so P a multiple of the process count
splits every topic evenly). For each process count a new group (app id) of that many
``eventrules worker`` processes starts at the current end of the event topics (the bench
commits those offsets for the group first) and the bench waits until the group is settled:
every process ready and holding partitions, together all of them. Only then are the workload's
events produced (the same events each run), so every process works its share from the first
record; a group that started on events already there left its first member most of them
before the others had joined (with 50,000 events here, 47,000 to all 50,000). The run ends when
the group's committed offsets reach the end of every event partition; then the executions topic
is read (read committed) from where it stood before the run and every record is checked against
the matches worked out in-process: lost, duplicated, unexpected.

Rate: events / (last execution record's CreateTime - first's), the span the settled group
worked; the bench's producer (about a second for 50,000 events) shares the cores with the group
at the start of it. Then every count above one runs again *joining*: the first process starts
alone and the events are paced over JOIN_PACE_SECONDS while the others start and join, so each
join rebalances the group in the middle of the flow; those runs are checked for loss and
duplicates like the others, their rate is the pace's. Between runs the processes are stopped
and waited for. The broker runs on the same cores.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions

from worker_general import GeneralWorkload, general_workload
from worker_harness import (
    EVENT_TOPICS,
    PASSTHROUGH_TOPIC,
    STALL_SECONDS,
    BenchEvent,
    Tally,
    WorkerProcess,
    alive,
    cores_line,
    create_topics,
    definition_records,
    high_watermarks,
    mib,
    new_prefix,
    produce_all,
    produce_one,
    publish,
    read_executions,
    reap_stopped,
    record_count,
    rss_kib,
    running_passthrough,
    time_until,
)


@dataclass(frozen=True)
class GroupRun:
    processes: int
    settled_first: bool  # the events produced once the group had settled
    rate: float  # events/s over the span of the execution records
    settle_seconds: float  # from starting the processes to the settled group
    partitions: list[int]  # held by each process at the end
    consumed: list[int]  # events each process consumed (its metrics)
    rss_kib: list[int]  # each process with its stats keeper child
    tally: Tally


def grow_partitions(bootstrap: str, topics: list[str], partitions: int) -> None:
    """Grow ``topics`` to ``partitions`` each, and wait until the metadata says so: a producer
    created sooner still saw the old count and put every event on the first partitions."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_partitions([NewPartitions(topic, partitions) for topic in topics])
    for future in futures.values():
        future.result()
    deadline = time.monotonic() + 60
    while any(
        len(admin.list_topics(topic, timeout=10).topics[topic].partitions) != partitions
        for topic in topics
    ):
        if time.monotonic() > deadline:
            raise SystemExit(f"the event topics did not grow to {partitions} partitions")
        time.sleep(0.2)


def spread(bootstrap: str, topics: list[str]) -> tuple[int, int]:
    """(fewest, most) records on one partition of ``topics``."""
    counts = [n for topic in topics for n in high_watermarks(bootstrap, topic).values()]
    return min(counts), max(counts)


class GroupWatch:
    """The group's start, members and lag on the event partitions (their ends read again at
    :meth:`read_ends` once the run's events are produced), through clients kept open: the
    bench polls it every 0.25 s on the workers' cores."""

    def __init__(self, bootstrap: str, group: str, topics: list[str]) -> None:
        self.group = group
        self.bootstrap = bootstrap
        self.topics = topics
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        # never subscribes: it only commits the group's start and reads its committed offsets
        self.offsets = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
        )
        self.ends: dict[tuple[str, int], int] = {}
        self.read_ends()

    def read_ends(self) -> None:
        self.ends = {
            (topic, partition): end
            for topic in self.topics
            for partition, end in high_watermarks(self.bootstrap, topic).items()
        }

    def start_at_end(self) -> None:
        """Commit the current end of every event partition for the group (no member yet), so
        its workers read only the events produced for their run."""
        ends = [TopicPartition(topic, p, end) for (topic, p), end in self.ends.items()]
        self.offsets.commit(offsets=ends, asynchronous=False)

    def lag(self) -> int:
        """Events not committed yet; -1 when the broker did not say (a coordinator moving or
        loading, a timeout on a loaded machine: asked again at the next poll)."""
        partitions = [TopicPartition(topic, p) for topic, p in self.ends]
        try:
            committed = self.offsets.committed(partitions, timeout=10)
        except KafkaException:
            return -1
        return sum(self.ends[tp.topic, tp.partition] - max(tp.offset, 0) for tp in committed)

    def settled(self, processes: int) -> tuple[bool, list[int]]:
        """(every process holds partitions and together all of them, partitions held each)."""
        try:
            description = self.admin.describe_consumer_groups([self.group])[self.group].result(10)
        except KafkaException:
            return False, []
        held = [
            len(member.assignment.topic_partitions) if member.assignment else 0
            for member in description.members
        ]
        state = str(getattr(description.state, "name", description.state)).lower()
        stable = state == "stable" and len(held) == processes and all(held)
        return stable and sum(held) == len(self.ends), held

    def close(self) -> None:
        self.offsets.close()


def wait_settled(watch: GroupWatch, processes: int, workers: list[WorkerProcess]) -> None:
    """Until the group is settled (SystemExit after 120 s)."""
    deadline = time.monotonic() + 120
    while True:
        stable, held = watch.settled(processes)
        if stable:
            return
        if any(not alive(worker.process)() for worker in workers):
            raise SystemExit("a worker exited before its group settled")
        if time.monotonic() > deadline:
            raise SystemExit(f"the group of {processes} did not settle in 120 s (held {held})")
        time.sleep(0.25)


def run_group(
    bootstrap: str,
    prefix: str,
    log_dir: Path,
    workload: GeneralWorkload,
    *,
    processes: int,
    env: dict[str, str],
    settle_first: bool = True,
) -> GroupRun:
    """One group of ``processes`` over the workload's events, produced at once when the group
    has settled (``settle_first``: the throughput figure), or else paced over
    ``JOIN_PACE_SECONDS`` from when the first process is ready while the others start and
    join (a rebalance under load: the loss and duplicates figure, its rate is the pace's)."""
    app_id = f"bench-scaleout{processes}-{uuid.uuid4().hex[:8]}"
    watch = GroupWatch(bootstrap, app_id, [prefix + topic for topic in EVENT_TOPICS])
    watch.start_at_end()
    executions = prefix + "executions"
    starts = high_watermarks(bootstrap, executions)
    workers = [
        WorkerProcess(bootstrap, prefix, log_dir / f"{app_id}-{i}.log", app_id=app_id, env=env)
        for i in range(processes)
    ]
    settle_seconds = float("nan")
    try:
        if settle_first:
            settle_seconds = start_settled(bootstrap, workers, watch, workload)
        else:
            start_joining(bootstrap, workers, workload)
        watch.read_ends()  # now with this run's events
        wait_drained(watch, workers, log_dir)
        # A short joining run can end before a late joiner's rebalance is done (asked again
        # for up to 10 s; what the broker said last otherwise).
        held: list[int] = []
        for _ in range(20):
            stable, held = watch.settled(processes)
            if stable:
                break
            time.sleep(0.5)
        consumed = [worker.consumed() for worker in workers]
        rss = [rss_kib(worker.pid)["VmRSS"] for worker in workers]
    finally:
        watch.close()
        for worker in workers:
            worker.stop()
        reap_stopped()
    found = read_executions(bootstrap, executions, starts)
    tally = Tally.of(found, workload.expected)
    stamps = sorted(e.timestamp_ms for e in found)
    span = max(stamps[-1] - stamps[0], 1) / 1000
    return GroupRun(
        processes=processes,
        settled_first=settle_first,
        rate=len(workload.events) / span,
        settle_seconds=settle_seconds,
        partitions=sorted(held, reverse=True),
        consumed=sorted(consumed, reverse=True),
        rss_kib=rss,
        tally=tally,
    )


# the joining runs spread their events over this long: longer than the joins take here (3-4 s)
JOIN_PACE_SECONDS = 8.0


def produce_paced(
    bootstrap: str, events: list[BenchEvent], seconds: float, failures: list[BaseException]
) -> None:
    """``events`` produced in 40 even slices over ``seconds`` (run in a thread: what went
    wrong is put in ``failures``)."""
    try:
        _produce_paced(bootstrap, events, seconds)
    except BaseException as failure:  # the bench's thread reports it, then re-raises it
        failures.append(failure)


def _produce_paced(bootstrap: str, events: list[BenchEvent], seconds: float) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all"})
    began, slices = time.monotonic(), 40
    for number in range(slices):
        for event in events[number * len(events) // slices : (number + 1) * len(events) // slices]:
            produce_one(producer, event)
        producer.poll(0)
        time.sleep(max(0.0, began + (number + 1) * seconds / slices - time.monotonic()))
    if producer.flush(120):
        raise SystemExit("could not produce the events")


def start_settled(
    bootstrap: str, workers: list[WorkerProcess], watch: GroupWatch, workload: GeneralWorkload
) -> float:
    """Start the group, wait until it settles, then produce the events at once: seconds from
    the start to the settled group."""
    began = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        ready_with(worker, workload)
    wait_settled(watch, len(workers), workers)
    settled = time.monotonic() - began
    produce_all(bootstrap, workload.events)
    return settled


def start_joining(bootstrap: str, workers: list[WorkerProcess], workload: GeneralWorkload) -> None:
    """The first member works alone on events that keep coming while the others start and
    join: each join revokes and reassigns partitions in the middle of the flow."""
    workers[0].start()
    ready_with(workers[0], workload)
    failures: list[BaseException] = []
    feeding = threading.Thread(
        target=produce_paced, args=(bootstrap, workload.events, JOIN_PACE_SECONDS, failures)
    )
    feeding.start()
    try:
        for worker in workers[1:]:
            worker.start()
        for worker in workers[1:]:
            ready_with(worker, workload)
    finally:
        feeding.join()
    if failures:
        raise failures[0]


def ready_with(worker: WorkerProcess, workload: GeneralWorkload) -> None:
    body = worker.wait_ready()
    if body["workflows"] != len(workload.definitions):
        raise SystemExit(f"a worker loaded {body['workflows']} workflows")


def wait_drained(watch: GroupWatch, workers: list[WorkerProcess], log_dir: Path) -> None:
    """Until the group's committed offsets reach the end of every event partition."""
    lag, moved = -1, time.monotonic()
    while (now_lag := watch.lag()) != 0:
        if any(not alive(worker.process)() for worker in workers):
            raise SystemExit(f"a worker exited; see {log_dir}")
        if now_lag != lag:
            lag, moved = now_lag, time.monotonic()
        elif time.monotonic() - moved > STALL_SECONDS:
            raise SystemExit(f"the group is stuck with a lag of {lag:,}; see {log_dir}")
        time.sleep(0.25)


def passthrough_rate(bootstrap: str, prefix: str, topics: list[str], events_n: int) -> float:
    """One passthrough process (a group of its own) over the same events."""
    scratch = prefix + PASSTHROUGH_TOPIC
    group = f"bench-passthrough-{uuid.uuid4().hex[:8]}"
    with (
        running_passthrough(bootstrap, group, scratch, topics) as pt,
        record_count(bootstrap, [scratch]) as count,
    ):
        start = count()
        return time_until(lambda: count() - start, events_n, time.perf_counter(), alive(pt)).rate


def run_line(run: GroupRun, one: float, base: float) -> str:
    if run.settled_first:
        head = (
            f"  {run.processes} process{'es' if run.processes > 1 else '  '}       "
            f"{run.rate:>10,.0f} events/s ({run.rate / one:.2f}x one; "
            f"{run.rate / base:.2f}x the passthrough); the group settled "
            f"{run.settle_seconds:.1f}s after the processes started"
        )
    else:
        head = (
            f"  {run.processes} processes joining   events paced over {JOIN_PACE_SECONDS:.0f}s "
            f"from the first process ready, the others joining meanwhile"
        )
    return (
        head
        + "\n      partitions held "
        + "/".join(map(str, run.partitions))
        + ", events consumed "
        + "/".join(f"{n:,}" for n in run.consumed)
        + ", RSS "
        + "/".join(mib(kib) for kib in run.rss_kib)
        + " (each holds the whole config)"
    )


def scaleout_part(
    bootstrap: str,
    log_dir: Path,
    *,
    workflows: int,
    events_n: int,
    counts: list[int],
    partitions: int,
    guarantee: str,
    rounds: int,
) -> list[GroupRun]:
    """Aggregate throughput of each process count in ``counts`` over the same events, in
    ``rounds`` rounds (each round runs every count once, in order, after a passthrough), each
    group settled before its events are produced; then every count above one again joining
    (members join while the first works on paced events: the rebalance under load, checked
    for loss and duplicates like the rest)."""
    prefix = new_prefix("scaleout")
    create_topics(bootstrap, prefix, PASSTHROUGH_TOPIC)
    topics = [prefix + topic for topic in EVENT_TOPICS]
    grow_partitions(bootstrap, topics, partitions)
    workload = general_workload(workflows, events_n, prefix)
    publish(bootstrap, prefix + "config", definition_records(workload.definitions))
    # the passthrough's input; each group run produces the same events again for itself
    produce_all(bootstrap, workload.events)
    total = partitions * len(topics)
    fewest, most = spread(bootstrap, topics)
    print(
        f"scale-out: {events_n:,} events on {len(topics)} topics x {partitions} "
        f"partitions ({total}; {fewest:,} to {most:,} events each), {workflows:,} W1 general "
        f"workflows, {workload.matches:,} matches expected; {guarantee}; worker processes of "
        "one group: " + ", ".join(map(str, counts)) + ", each group settled before its events "
        f"are produced; then joining under load; {rounds} round(s)",
        flush=True,
    )
    env = {"EVENTRULES_PROCESSING_GUARANTEE": guarantee}
    runs: list[GroupRun] = []
    bases: list[float] = []
    plan = [(n, True) for n in counts] + [(n, False) for n in counts if n > 1]
    for number in range(1, rounds + 1):
        print(f"  round {number}: {cores_line()}", flush=True)
        bases.append(passthrough_rate(bootstrap, prefix, topics, events_n))
        print(f"  raw passthrough (1 process)  {bases[-1]:>10,.0f} events/s", flush=True)
        this_round: list[GroupRun] = []
        for processes, settle_first in plan:
            run = run_group(
                bootstrap,
                prefix,
                log_dir,
                workload,
                processes=processes,
                env=env,
                settle_first=settle_first,
            )
            this_round.append(run)
            one = this_round[0].rate if this_round[0].processes == 1 else float("nan")
            print(run_line(run, one, bases[-1]))
            print(f"      {run.tally.line(workload.matches)}", flush=True)
        runs.extend(this_round)
    settled = [run for run in runs if run.settled_first]
    medians = {n: statistics.median(r.rate for r in settled if r.processes == n) for n in counts}
    one = medians.get(1, float("nan"))
    base = statistics.median(bases)
    lost = sum(run.tally.missing + run.tally.unexpected for run in runs)
    duplicates = [run.tally.duplicates for run in runs]
    print(
        f"  scale-out summary (median of {rounds} round(s), settled groups): "
        + " / ".join(map(str, counts))
        + " processes: "
        + " / ".join(f"{medians[n]:,.0f}" for n in counts)
        + " events/s ("
        + " / ".join(f"{medians[n] / one:.2f}x" for n in counts)
        + f" one); passthrough {base:,.0f} events/s; {lost} lost or unexpected, "
        f"{sum(duplicates)} duplicates in {len(runs)} runs"
        f" (per run: {', '.join(map(str, duplicates))})",
        flush=True,
    )
    if lost:
        raise SystemExit("scale-out: EXECUTIONS DO NOT MATCH THE EXPECTED MATCHES")
    return runs
