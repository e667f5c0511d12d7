"""End to end over Kafka: workers against a raw confluent-kafka passthrough on the same broker.

Parts (``--only`` picks some; default all):

* ``throughput``: N events pre-produced over the event topics, 1,000 workflows spread round
  robin over the catalog's triggers, each ``bucket == k`` with one send_email or create_task
  action, so every event matches exactly one workflow. A worker started after the events are in
  counts as done when the executions topic holds N records (high watermarks polled every 50
  ms); the rate is taken from the first record seen to the last. The baseline is a separate
  process doing what a plain stream loop does without the engine: take a batch (up to 500),
  produce one record per event to a scratch topic, flush, commit synchronously, with the
  worker's producer and consumer settings. Same events, same broker, same timing.
  Then latency: with that worker caught up, events are produced at a paced rate (2,000/s for
  10 s, with linger.ms 5), and a consumer of the executions topic notes when each event's
  record arrives; produce-to-arrival p50/p95/p99/max. The passthrough is measured the same way
  on its scratch topic.
* ``memory``: VmRSS of a fresh worker (with its stats keeper child process) once /readyz
  answers 200 with 10,000 workflow definitions on its config topic, next to a worker with none.
* ``general``: the same comparison on W1 of the shared guide (1,000 general workflows,
  worker_general.py), every execution record checked against the matches expected.
* ``scaleout``: aggregate throughput of 1, 2 and 4 worker processes in one group, settled
  before the same general events are produced on topics of 12 partitions; then 2 and 4 with
  the others joining while the first works; every run checked for loss and duplicates
  (worker_scaleout.py).

Warm-up: first the passthrough and a worker run over throwaway topics, untimed, so that a fresh
broker's JIT compiler is done before anything is measured.

    .venv/bin/python bench/bench_worker.py            # full run, about 5 minutes here
    .venv/bin/python bench/bench_worker.py --quick    # smoke run, a minute or two
    .venv/bin/python bench/bench_worker.py --only general,scaleout --processes 1,2,4
    .venv/bin/python bench/bench_worker.py --bootstrap 127.0.0.1:39092   # an existing broker

Without ``--bootstrap`` the script runs its own broker on free ports in a temporary directory
and stops it at the end. The harness is worker_harness.py (bench_rules_http.py uses it too).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from worker_general import general_part
from worker_harness import (
    EVENT_TOPICS,
    PASSTHROUGH_TOPIC,
    BenchEvent,
    Throughput,
    alive,
    cores_line,
    cpu_line,
    cpu_summary,
    create_topics,
    definition_records,
    kafka,
    latency_line,
    load_triggers,
    mib,
    new_prefix,
    paced_latency,
    passthrough_rate,
    percentile,
    produce_all,
    publish,
    reap_stopped,
    record_count,
    rounds_summary,
    rss_kib,
    running_passthrough,
    running_worker,
    time_until,
)
from worker_scaleout import scaleout_part

SEED = 20260109
WARMUP_SECONDS = 2.0  # paced but untimed, before each latency run
PARTS = ("throughput", "memory", "general", "scaleout")


def make_workflows(count: int, triggers: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Workflow i: trigger i mod T, condition ``bucket == i // T`` (T triggers): one match per
    event."""
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
        return [self.prefix + topic for topic in EVENT_TOPICS]

    @property
    def executions(self) -> str:
        return self.prefix + "executions"

    @property
    def scratch(self) -> str:
        return self.prefix + PASSTHROUGH_TOPIC

    def prepare(self, prefix: str, *extra_topics: str) -> None:
        """The deployment's topics under ``prefix`` (plus ``extra_topics``), with the bench's
        workflows on its config topic."""
        create_topics(self.bootstrap, prefix, *extra_topics)
        publish(
            self.bootstrap,
            prefix + "config",
            definition_records(make_workflows(self.workflows, self.triggers)),
        )

    def events(self, count: int) -> list[BenchEvent]:
        return make_events(count, self.workflows, self.triggers, self.prefix, self.rng)

    def paced_events(self) -> tuple[list[BenchEvent], list[BenchEvent]]:
        """(warm-up, timed) events for a latency run."""
        return self.events(int(self.rate * WARMUP_SECONDS)), self.events(
            int(self.rate * self.seconds)
        )


def passthrough_throughput(bench: Bench, events_n: int) -> Throughput:
    with (
        running_passthrough(bench.bootstrap, bench.group, bench.scratch, bench.event_topics) as pt,
        record_count(bench.bootstrap, [bench.scratch]) as count,
    ):
        return time_until(count, events_n, time.perf_counter(), alive(pt), pt.pid)


def worker_throughput_and_latency(
    bench: Bench, events_n: int, base: Throughput
) -> tuple[list[float], Throughput]:
    """Throughput of a fresh worker on the pre-produced events, then its paced latency:
    (latencies, the worker's throughput)."""
    with (
        running_worker(bench.bootstrap, bench.prefix, bench.log_dir) as worker,
        record_count(bench.bootstrap, [bench.executions]) as count,
        record_count(bench.bootstrap, [bench.prefix + "dlq"]) as dead,
    ):
        body = worker.wait_ready()
        if body["workflows"] != bench.workflows:
            raise SystemExit(f"the worker loaded {body['workflows']} workflows")
        ready_after = time.perf_counter() - worker.started
        assert worker.process is not None  # noqa: S101 - running_worker started it
        mine = time_until(
            count, events_n, worker.started, alive(worker.process), worker.process.pid
        )
        time.sleep(1.0)
        records = count()
        print(
            f"  eventrules worker            {mine.rate:>10,.0f} events/s   "
            f"(ready after {ready_after:.2f}s, first execution after "
            f"{mine.first_after:.2f}s, all after {mine.total:.2f}s; {body.get('native')})"
        )
        print(
            f"  worker/passthrough = {mine.rate / base.rate:.2f} (target >= 0.5); "
            f"{records:,} execution records, {dead()} dead letters",
            flush=True,
        )
        print(f"  {cpu_line(base, mine)}", flush=True)

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
    return latencies, mine


def pure_python_throughput(bench: Bench, events_n: int, base: Throughput) -> None:
    """The same run with the worker's pure-Python modules (EVENTRULES_PURE_PYTHON=1): what the
    compiled event path (scripts/compile.py) gives, in this run. Its own topics, same workload."""
    prefix = new_prefix("pure")
    bench.prepare(prefix)
    produce_all(
        bench.bootstrap,
        make_events(events_n, bench.workflows, bench.triggers, prefix, random.Random(SEED)),
    )
    with (
        running_worker(
            bench.bootstrap, prefix, bench.log_dir, {"EVENTRULES_PURE_PYTHON": "1"}
        ) as worker,
        record_count(bench.bootstrap, [prefix + "executions"]) as count,
    ):
        body = worker.wait_ready()
        mine = time_until(count, events_n, worker.started, alive(worker.process))
    print(
        f"  pure-Python worker           {mine.rate:>10,.0f} events/s   "
        f"({mine.rate / base.rate:.2f}x the passthrough; {body.get('native')})",
        flush=True,
    )


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
    bench.prepare(prefix, PASSTHROUGH_TOPIC)
    rng = random.Random(SEED + 1)  # the measured workload stays the same with or without this

    def events(count: int) -> list[BenchEvent]:
        return make_events(count, bench.workflows, bench.triggers, prefix, rng)

    produce_all(bench.bootstrap, events(events_n))
    topics = [prefix + topic for topic in EVENT_TOPICS]
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
    reap_stopped()  # nothing of the warm-up runs while the figures are taken
    print(
        f"warm-up: passthrough and a worker over {events_n:,} + {bench.rate * seconds:,.0f} "
        f"events on throwaway topics, {time.perf_counter() - began:.0f}s (not measured)",
        flush=True,
    )


def parse_parts(text: str) -> list[str]:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown parts {unknown}; choose among {PARTS}")
    return parts


def parse_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of process counts: {text}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"not a list of process counts: {text}")
    return counts


def bucket_round(bench: Bench, events_n: int) -> tuple[Throughput, Throughput]:
    """Another passthrough-then-worker throughput round of the one-match workload, on topics
    of its own: (passthrough, worker)."""
    prefix = new_prefix("round")
    bench.prepare(prefix, PASSTHROUGH_TOPIC)
    produce_all(
        bench.bootstrap, make_events(events_n, bench.workflows, bench.triggers, prefix, bench.rng)
    )
    base = passthrough_rate(bench.bootstrap, prefix, events_n)
    with (
        running_worker(bench.bootstrap, prefix, bench.log_dir) as worker,
        record_count(bench.bootstrap, [prefix + "executions"]) as count,
    ):
        worker.wait_ready()
        assert worker.process is not None  # noqa: S101 - running_worker started it
        mine = time_until(
            count, events_n, worker.started, alive(worker.process), worker.process.pid
        )
    print(
        f"  round: raw passthrough {base.rate:,.0f} events/s, eventrules worker "
        f"{mine.rate:,.0f} events/s ({mine.rate / base.rate:.2f}x); {cpu_line(base, mine)}",
        flush=True,
    )
    return base, mine


def bucket_part(
    bench: Bench, events_n: int, *, pure_baseline: bool = True, rounds: int = 1
) -> None:
    """Throughput and latency on the one-match-per-event workload (one worker)."""
    bench.prepare(bench.prefix, PASSTHROUGH_TOPIC)
    produce_all(bench.bootstrap, bench.events(events_n))
    print(
        f"throughput: {events_n:,} events pre-produced on {len(EVENT_TOPICS)} topics x 3 "
        f"partitions, {bench.workflows:,} workflows over {len(bench.triggers)} triggers, "
        "1 match per event",
        flush=True,
    )
    base = passthrough_throughput(bench, events_n)
    print(
        f"  raw passthrough              {base.rate:>10,.0f} events/s   "
        f"(first output after {base.first_after:.2f}s, all after {base.total:.2f}s)",
        flush=True,
    )
    latencies, first = worker_throughput_and_latency(bench, events_n, base)
    passthrough_latency(bench)
    if pure_baseline:
        pure_python_throughput(bench, events_n, base)
    p99 = percentile(sorted(latencies), 0.99) * 1000
    print(f"  worker p99 {p99:.1f} ms (target < 50 ms)", flush=True)
    rounds_run = [(base, first)]
    rounds_run += [bucket_round(bench, events_n) for _ in range(rounds - 1)]
    pairs = [(b.rate, m.rate) for b, m in rounds_run]
    print(rounds_summary("one match per event", pairs, 0.5), flush=True)
    print(cpu_summary("one match per event", rounds_run, 1.0), flush=True)


def memory_part(bench: Bench, memory_n: int) -> None:
    print("memory: VmRSS of a fresh worker once /readyz is 200 (peak = VmHWM)", flush=True)
    empty, _ = fresh_worker_rss(bench, 0)
    full, _ = fresh_worker_rss(bench, memory_n)
    grown = full["VmRSS"] - empty["VmRSS"]
    print(f"  difference {mib(grown)}, {grown / memory_n:.1f} KiB per workflow", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="an existing cluster; default: start a broker")
    parser.add_argument("--quick", action="store_true", help="small figures, a smoke run")
    parser.add_argument(
        "--only",
        type=parse_parts,
        default=list(PARTS),
        help=f"comma-separated parts to run, among {','.join(PARTS)} (default: all)",
    )
    parser.add_argument("--events", type=int, help="events for the throughput runs (50,000)")
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=2000.0, help="paced events/s for latency")
    parser.add_argument("--seconds", type=float, help="length of each latency run (10)")
    parser.add_argument("--memory-workflows", type=int, help="definitions for RSS (10,000)")
    parser.add_argument(
        "--processes",
        type=parse_counts,
        help="worker process counts of the scale-out run (1,2,4; --quick: 1,2)",
    )
    parser.add_argument(
        "--rounds", type=int, help="rounds of the scale-out run, medians printed (3; --quick: 1)"
    )
    parser.add_argument(
        "--partitions", type=int, default=12, help="partitions per event topic, scale-out (12)"
    )
    parser.add_argument(
        "--throughput-rounds",
        type=int,
        help="passthrough-then-worker rounds of the throughput and general parts, the median "
        "ratio printed (3; --quick: 1)",
    )
    parser.add_argument(
        "--guarantee",
        choices=["at_least_once", "exactly_once"],
        default="at_least_once",
        help="the workers' processing guarantee in the scale-out run (the default's)",
    )
    parser.add_argument(
        "--log-dir", type=Path, help="keep the workers' logs here (default: a temporary folder)"
    )
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        help="paced seconds of the untimed warm-up (20; 0 skips the warm-up)",
    )
    parser.add_argument(
        "--no-pure-baseline",
        action="store_true",
        help="skip the pure-Python workers' runs (EVENTRULES_PURE_PYTHON=1) of the throughput "
        "and general parts",
    )
    args = parser.parse_args()
    events_n = args.events or (3_000 if args.quick else 50_000)
    memory_n = args.memory_workflows or (1_000 if args.quick else 10_000)
    counts = args.processes or ([1, 2] if args.quick else [1, 2, 4])
    throughput_rounds = args.throughput_rounds or (1 if args.quick else 3)
    parts = set(args.only)
    began = time.perf_counter()
    print(cores_line(), flush=True)

    with kafka(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as tmp:
        log_dir = args.log_dir or Path(tmp)
        log_dir.mkdir(parents=True, exist_ok=True)
        bench = Bench(
            bootstrap,
            log_dir,
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
        if "throughput" in parts:
            bucket_part(
                bench, events_n, pure_baseline=not args.no_pure_baseline, rounds=throughput_rounds
            )
        if "memory" in parts:
            memory_part(bench, memory_n)
        if "general" in parts:
            general_part(
                bootstrap,
                bench.log_dir,
                args.workflows,
                events_n,
                pure_baseline=not args.no_pure_baseline,
                rounds=throughput_rounds,
            )
        if "scaleout" in parts:
            scaleout_part(
                bootstrap,
                bench.log_dir,
                workflows=args.workflows,
                events_n=events_n,
                counts=counts,
                partitions=args.partitions,
                guarantee=args.guarantee,
                rounds=args.rounds or (1 if args.quick else 3),
            )
    print(f"done in {time.perf_counter() - began:.0f}s")


if __name__ == "__main__":
    main()
