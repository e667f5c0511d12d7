"""The scale-out run of bench_worker.py: 1, 2, 4 worker processes in one group, same events.

The general workload (worker_general.py) is produced once on event topics grown to P partitions
each (12: the workers' range assignor splits each topic on its own, so P a multiple of the
process count splits every topic evenly). For each process count a new group (app id) of that
many ``eventrules worker`` processes, started together, reads the same events from the start.
The run ends when the group's committed offsets reach the end of every event partition; then
the executions topic is read (read committed) from where it stood before the run and every
record is checked against the matches worked out in-process: lost, duplicated, unexpected.

Rate: events / (last execution record's CreateTime - first's): the span the group worked,
joins and rebalances included (the processes join one after the other as they get ready). The
rate after the group settled (every process holding partitions) is printed as well. Between
runs the processes are stopped and waited for. The broker runs on the same cores.
"""

from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions

from worker_general import GeneralWorkload, general_workload
from worker_harness import (
    EVENT_TOPICS,
    PASSTHROUGH_TOPIC,
    STALL_SECONDS,
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
    rate: float  # events/s over the span of the execution records
    settled_rate: float  # events/s after every process held partitions
    settled_after: float  # seconds from the first execution record to the settled group
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
    """The group's members and its lag on the (pre-produced, so fixed) event partitions,
    through clients kept open: the bench polls it every 0.25 s on the workers' cores."""

    def __init__(self, bootstrap: str, group: str, topics: list[str]) -> None:
        self.group = group
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        # never subscribes: it only reads the group's committed offsets
        self.offsets = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
        )
        self.ends = {
            (topic, partition): end
            for topic in topics
            for partition, end in high_watermarks(bootstrap, topic).items()
        }

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


def run_group(
    bootstrap: str,
    prefix: str,
    log_dir: Path,
    workload: GeneralWorkload,
    *,
    processes: int,
    env: dict[str, str],
) -> GroupRun:
    app_id = f"bench-scaleout{processes}-{uuid.uuid4().hex[:8]}"
    watch = GroupWatch(bootstrap, app_id, [prefix + topic for topic in EVENT_TOPICS])
    executions = prefix + "executions"
    starts = high_watermarks(bootstrap, executions)
    workers = [
        WorkerProcess(bootstrap, prefix, log_dir / f"{app_id}-{i}.log", app_id=app_id, env=env)
        for i in range(processes)
    ]
    settled_at = 0.0
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            body = worker.wait_ready()
            if body["workflows"] != len(workload.definitions):
                raise SystemExit(f"a worker loaded {body['workflows']} workflows")
        lag, moved = -1, time.monotonic()
        while True:
            if not settled_at:
                stable, held = watch.settled(processes)
                settled_at = time.time() if stable else 0.0
            now_lag = watch.lag()
            if now_lag == 0:
                break
            if any(not alive(worker.process)() for worker in workers):
                raise SystemExit(f"a worker exited; see {log_dir}")
            if now_lag != lag:
                lag, moved = now_lag, time.monotonic()
            elif time.monotonic() - moved > STALL_SECONDS:
                raise SystemExit(f"the group is stuck with a lag of {lag:,}; see {log_dir}")
            time.sleep(0.25)
        held: list[int] = []
        # The group once settled: a short run can end before a late joiner's rebalance is done
        # (asked again for up to 10 s; what the broker said last otherwise).
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
    events_n = len(workload.events)
    span = max(stamps[-1] - stamps[0], 1) / 1000
    settled_ms = int(settled_at * 1000) if settled_at else stamps[-1]
    after = sum(1 for stamp in stamps if stamp >= settled_ms)
    settled_span = (stamps[-1] - max(settled_ms, stamps[0])) / 1000
    return GroupRun(
        processes=processes,
        rate=events_n / span,
        settled_rate=events_n * after / len(stamps) / settled_span if settled_span > 0 else 0.0,
        settled_after=max(0.0, (settled_ms - stamps[0]) / 1000),
        partitions=sorted(held, reverse=True),
        consumed=sorted(consumed, reverse=True),
        rss_kib=rss,
        tally=tally,
    )


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
    return (
        f"  {run.processes} process{'es' if run.processes > 1 else '  '}  {run.rate:>10,.0f} "
        f"events/s ({run.rate / one:.2f}x one; {run.rate / base:.2f}x the passthrough); "
        f"settled {run.settled_after:.1f}s after the first record, "
        f"{run.settled_rate:,.0f} events/s after that\n"
        "      partitions held "
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
    ``rounds`` rounds (each round runs every count once, in order, after a passthrough)."""
    prefix = new_prefix("scaleout")
    create_topics(bootstrap, prefix, PASSTHROUGH_TOPIC)
    topics = [prefix + topic for topic in EVENT_TOPICS]
    grow_partitions(bootstrap, topics, partitions)
    workload = general_workload(workflows, events_n, prefix)
    publish(bootstrap, prefix + "config", definition_records(workload.definitions))
    produce_all(bootstrap, workload.events)
    total = partitions * len(topics)
    fewest, most = spread(bootstrap, topics)
    print(
        f"scale-out: {events_n:,} events pre-produced on {len(topics)} topics x {partitions} "
        f"partitions ({total}; {fewest:,} to {most:,} events each), {workflows:,} W1 general "
        f"workflows, {workload.matches:,} matches expected; {guarantee}; worker processes of "
        "one group: " + ", ".join(map(str, counts)) + f"; {rounds} round(s)",
        flush=True,
    )
    env = {"EVENTRULES_PROCESSING_GUARANTEE": guarantee}
    runs: list[GroupRun] = []
    bases: list[float] = []
    for number in range(1, rounds + 1):
        print(f"  round {number}: {cores_line()}", flush=True)
        bases.append(passthrough_rate(bootstrap, prefix, topics, events_n))
        print(f"  raw passthrough (1 process)  {bases[-1]:>10,.0f} events/s", flush=True)
        this_round: list[GroupRun] = []
        for processes in counts:
            run = run_group(bootstrap, prefix, log_dir, workload, processes=processes, env=env)
            this_round.append(run)
            one = this_round[0].rate if this_round[0].processes == 1 else float("nan")
            print(run_line(run, one, bases[-1]))
            print(f"      {run.tally.line(workload.matches)}", flush=True)
        runs.extend(this_round)
    medians = {n: statistics.median(r.rate for r in runs if r.processes == n) for n in counts}
    one = medians.get(1, float("nan"))
    base = statistics.median(bases)
    lost = sum(run.tally.missing + run.tally.unexpected for run in runs)
    duplicates = [run.tally.duplicates for run in runs]
    print(
        f"  scale-out summary (median of {rounds} round(s)): "
        + " / ".join(map(str, counts))
        + " processes: "
        + " / ".join(f"{medians[n]:,.0f}" for n in counts)
        + " events/s ("
        + " / ".join(f"{medians[n] / one:.2f}x" for n in counts)
        + f" one); passthrough {base:,.0f} events/s; {lost} lost or unexpected, "
        f"{sum(duplicates)} duplicates (per run: {', '.join(map(str, duplicates))})",
        flush=True,
    )
    if lost:
        raise SystemExit("scale-out: EXECUTIONS DO NOT MATCH THE EXPECTED MATCHES")
    return runs
