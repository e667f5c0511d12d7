"""The general workload of bench_worker.py: W1 of the shared guide, over Kafka.

The workflows and event data come from bench_matching.py's generator (three conditions per
workflow on three of six fields, every operator, thresholds both ways, random order, about 1 in
40 workflows of a trigger matching an event); here they become config records and CloudEvents
on each trigger's topic. The matches each event should produce are worked out in-process by
bench_matching's hand-written closures (not by the engine under test), so the execution records
can be checked one by one: none lost, none twice, none unexpected.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench_matching import SEED, build_closures, make_definitions, make_events
from worker_harness import (
    EVENT_TOPICS,
    PASSTHROUGH_TOPIC,
    BenchEvent,
    Tally,
    Throughput,
    alive,
    cpu_line,
    cpu_summary,
    create_topics,
    definition_records,
    high_watermarks,
    load_triggers,
    new_prefix,
    passthrough_rate,
    produce_all,
    publish,
    read_executions,
    record_count,
    rounds_summary,
    running_worker,
    time_until,
)


@dataclass(frozen=True)
class GeneralWorkload:
    definitions: list[dict[str, Any]]  # config records (kind workflow)
    events: list[BenchEvent]
    expected: set[tuple[str, str]]  # (event id, workflow id) of every match

    @property
    def matches(self) -> int:
        return len(self.expected)


def general_workload(workflows: int, events: int, prefix: str) -> GeneralWorkload:
    """``workflows`` W1 general workflows over the catalog's triggers (round robin) and
    ``events`` events uniform over them, on ``prefix``'s event topics; same seed every run."""
    triggers = load_triggers()
    names = [name for name, _ in triggers]
    topic_of = dict(triggers)
    rng = random.Random(SEED)
    definitions = make_definitions(workflows, names, "general", random.Random(SEED + workflows))
    for raw in definitions:
        raw["kind"] = "workflow"
        raw["version"] = 1
    closures = build_closures(definitions)
    run = uuid.uuid4().hex[:8]
    produced: list[BenchEvent] = []
    expected: set[tuple[str, str]] = set()
    for i, event in enumerate(make_events(events, (rng.choice(names) for _ in range(events)), rng)):
        event_id = f"g-{run}-{i}"
        subject = event.data["user_id"]
        envelope = {
            "specversion": "1.0",
            "id": event_id,
            "source": "bench/worker-general",
            "type": event.type,
            "subject": subject,
            "time": event.time.isoformat(),
            "datacontenttype": "application/json",
            "data": event.data,
        }
        produced.append(
            BenchEvent(
                event_id, prefix + topic_of[event.type], subject.encode(), orjson.dumps(envelope)
            )
        )
        expected.update(
            (event_id, wid) for wid, test in closures.get(event.type, ()) if test(event.data)
        )
    return GeneralWorkload(definitions, produced, expected)


@dataclass(frozen=True)
class WorkerRun:
    rate: float  # execution records/s
    total: float
    ready_after: float
    throughput: Throughput  # per execution record, with the CPU it took


def _worker_rate(
    bootstrap: str,
    log_dir: Path,
    prefix: str,
    workflows: int,
    workload: GeneralWorkload,
    *,
    env: dict[str, str],
) -> tuple[float, WorkerRun, str]:
    """A fresh worker over the pre-produced workload: events/s, the run, what it ran
    (compiled or pure Python); every execution record is checked against the expected ones."""
    executions = prefix + "executions"
    starts = high_watermarks(bootstrap, executions)
    with (
        running_worker(bootstrap, prefix, log_dir, env) as worker,
        record_count(bootstrap, [executions]) as count,
        record_count(bootstrap, [prefix + "dlq"]) as dead,
    ):
        body = worker.wait_ready()
        if body["workflows"] != workflows:
            raise SystemExit(f"the worker loaded {body['workflows']} of {workflows} workflows")
        ready_after = time.perf_counter() - worker.started
        assert worker.process is not None  # noqa: S101 - running_worker started it
        mine = time_until(
            count, workload.matches, worker.started, alive(worker.process), worker.process.pid
        )
        time.sleep(1.0)
        dead_letters = dead()
    tally = Tally.of(read_executions(bootstrap, executions, starts), workload.expected)
    print(f"  {tally.line(workload.matches)}; {dead_letters} dead letters", flush=True)
    if tally.missing or tally.unexpected or dead_letters:
        raise SystemExit("general workload: EXECUTIONS DO NOT MATCH THE EXPECTED MATCHES")
    events_n = len(workload.events)
    rate = mine.rate * events_n / workload.matches  # records/s -> events/s
    return rate, WorkerRun(mine.rate, mine.total, ready_after, mine), str(body.get("native"))


def general_part(
    bootstrap: str,
    log_dir: Path,
    workflows: int,
    events_n: int,
    *,
    pure_baseline: bool = True,
    rounds: int = 1,
) -> float:
    """Worker against passthrough on the general workload (and, unless ``pure_baseline`` is
    off, a pure-Python worker on the same workload), then ``rounds - 1`` more rounds of the
    two on fresh topics; returns the median worker/passthrough."""
    prefix = new_prefix("general")
    create_topics(bootstrap, prefix, PASSTHROUGH_TOPIC)
    workload = general_workload(workflows, events_n, prefix)
    publish(bootstrap, prefix + "config", definition_records(workload.definitions))
    produce_all(bootstrap, workload.events)
    print(
        f"general workload: {events_n:,} events pre-produced on {len(EVENT_TOPICS)} topics x 3 "
        f"partitions, {workflows:,} W1 general workflows (bench_matching's generator); "
        f"{workload.matches:,} matches expected ({workload.matches / events_n:.2f} per event)",
        flush=True,
    )
    base = passthrough_rate(bootstrap, prefix, events_n)
    print(
        f"  raw passthrough              {base.rate:>10,.0f} events/s   "
        f"(first output after {base.first_after:.2f}s, all after {base.total:.2f}s)",
        flush=True,
    )
    rate, mine, native = _worker_rate(bootstrap, log_dir, prefix, workflows, workload, env={})
    ratio = rate / base.rate
    print(
        f"  eventrules worker            {rate:>10,.0f} events/s   "
        f"({mine.rate:,.0f} execution records/s; ready after {mine.ready_after:.2f}s, "
        f"all after {mine.total:.2f}s; {native})",
    )
    print(f"  worker/passthrough = {ratio:.2f} (target >= 0.4)", flush=True)
    per_event = workload.matches / events_n  # the worker's figures are per execution record
    print(f"  {cpu_line(base, mine.throughput, per_event)}", flush=True)
    pairs = [(base.rate, rate)]
    cpu_rounds = [(base, mine.throughput)]
    if pure_baseline:
        # the same workload on topics of its own, the worker's modules run from source
        pure_prefix = new_prefix("general-pure")
        create_topics(bootstrap, pure_prefix)
        pure_workload = general_workload(workflows, events_n, pure_prefix)
        publish(bootstrap, pure_prefix + "config", definition_records(pure_workload.definitions))
        produce_all(bootstrap, pure_workload.events)
        pure, _, native = _worker_rate(
            bootstrap,
            log_dir,
            pure_prefix,
            workflows,
            pure_workload,
            env={"EVENTRULES_PURE_PYTHON": "1"},
        )
        print(
            f"  pure-Python worker           {pure:>10,.0f} events/s   "
            f"({pure / base.rate:.2f}x the passthrough; {native})",
            flush=True,
        )
    for _ in range(rounds - 1):
        round_base, round_rate, round_run = _general_round(bootstrap, log_dir, workflows, events_n)
        pairs.append((round_base.rate, round_rate))
        cpu_rounds.append((round_base, round_run))
    print(rounds_summary("general workload", pairs, 0.4), flush=True)
    print(cpu_summary("general workload", cpu_rounds, per_event), flush=True)
    return statistics.median(worker / base for base, worker in pairs)


def _general_round(
    bootstrap: str, log_dir: Path, workflows: int, events_n: int
) -> tuple[Throughput, float, Throughput]:
    """Another passthrough-then-worker round on topics of its own: (passthrough, worker
    events/s, the worker's throughput per execution record); every execution record is
    checked again."""
    prefix = new_prefix("general-round")
    create_topics(bootstrap, prefix, PASSTHROUGH_TOPIC)
    workload = general_workload(workflows, events_n, prefix)
    publish(bootstrap, prefix + "config", definition_records(workload.definitions))
    produce_all(bootstrap, workload.events)
    base = passthrough_rate(bootstrap, prefix, events_n)
    rate, run, _ = _worker_rate(bootstrap, log_dir, prefix, workflows, workload, env={})
    per_event = workload.matches / events_n
    print(
        f"  round: raw passthrough {base.rate:,.0f} events/s, eventrules worker "
        f"{rate:,.0f} events/s ({rate / base.rate:.2f}x); "
        f"{cpu_line(base, run.throughput, per_event)}",
        flush=True,
    )
    return base, rate, run.throughput
