"""The runner's in-process cost per event, untraced and traced.

One event at a time through ``WorkflowRunner.handle`` (decode, match, render, one action
message, the execution record) with 100 workflows on the event's trigger, one of which matches,
and a sender that only counts: what the worker spends per event apart from Kafka. Measured in
the same run, each over the same records:

* ``untraced``: the plain runner, what a worker runs with tracing off (the default);
* ``traced, not sampled``: the traced runner with a sampler that records nothing
  (``OTEL_TRACES_SAMPLER=always_off``): the cost of the span calls alone;
* ``traced``: the traced runner recording every span into a batch processor whose exporter
  drops them: the cost of tracing on, without the network.

``--baseline-runner <other checkout>/src/eventrules/runtime/runner.py`` adds that version's
``WorkflowRunner`` (loaded from its file, over this package), timed back to back with the
others in every round: how "tracing off costs nothing" is checked against the code from before
tracing existed (``git show main:src/eventrules/runtime/runner.py > /tmp/runner.py``).

    .venv/bin/python bench/bench_runner.py           # medians of 5 rounds of 20,000 events
    .venv/bin/python bench/bench_runner.py --quick   # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import time
from collections.abc import Sequence
from typing import Any

import orjson
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult as Result
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from eventrules.kafka.records import Record
from eventrules.metrics import Metrics
from eventrules.models.workflows import parse_workflow
from eventrules.runtime.runner import WorkflowRunner
from eventrules.settings import TopicNames
from eventrules.workflows.engine import Engine

try:
    from eventrules.runtime.traced_runner import TracedWorkflowRunner
except ImportError:  # a version from before tracing (see the docstring)
    TracedWorkflowRunner = None  # type: ignore[assignment,misc]

WORKFLOWS = 100


class CountingSender:
    def __init__(self) -> None:
        self.sent = 0

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Any = None
    ) -> None:
        self.sent += 1


def make_engine() -> Engine:
    engine = Engine()
    for i in range(WORKFLOWS):
        engine.upsert(
            parse_workflow(
                {
                    "id": f"wf-{i:03d}",
                    "name": f"workflow {i}",
                    "trigger": "order.created",
                    "conditions": f"bucket == {i}",
                    "created_by": "bench",
                    "actions": [{"type": "create_task", "title": "check {{orderId}}"}],
                }
            )
        )
    return engine


def make_records(count: int) -> list[Record]:
    records = []
    for n in range(count):
        event = {
            "specversion": "1.0",
            "id": f"e-{n}",
            "source": "bench",
            "type": "order.created",
            "time": "2026-01-10T08:00:00Z",
            "data": {"orderId": f"o-{n}", "bucket": n % WORKFLOWS, "total": n % 997},
        }
        # a producer's context on every record, so the traced runner has a parent to extract
        headers = [("traceparent", f"00-{n + 1:032x}-{n + 1:016x}-01".encode())]
        records.append(Record("bench.events.orders", 0, n, None, orjson.dumps(event), headers))
    return records


def time_runner(runner: WorkflowRunner, records: Sequence[Record]) -> float:
    async def run() -> float:
        started = time.perf_counter()
        for record in records:
            await runner.handle(record)
        return time.perf_counter() - started

    return asyncio.run(run())


def load_runner_class(path: str) -> type[WorkflowRunner]:
    spec = importlib.util.spec_from_file_location("baseline_runner", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    runner_class: type[WorkflowRunner] = module.WorkflowRunner
    return runner_class


def make_runners(baseline: str | None) -> dict[str, tuple[WorkflowRunner, CountingSender]]:
    options: dict[str, Any] = {"topics": TopicNames("bench."), "metrics": Metrics.create()}
    plain_sender = CountingSender()
    runners = {
        "untraced": (WorkflowRunner(make_engine(), sender=plain_sender, **options), plain_sender)
    }
    if baseline is not None:
        sender = CountingSender()
        runner_class = load_runner_class(baseline)
        runners["baseline runner"] = (runner_class(make_engine(), sender=sender, **options), sender)
    if TracedWorkflowRunner is None:
        return runners  # a version without tracing: the untraced figure only

    class Drop(SpanExporter):
        def export(self, spans: Any) -> Result:
            return Result.SUCCESS

    unsampled = TracerProvider(sampler=ALWAYS_OFF)
    recording = TracerProvider()
    recording.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=100_000))
    for name, provider in (("traced, not sampled", unsampled), ("traced", recording)):
        sender = CountingSender()
        runner = TracedWorkflowRunner(
            make_engine(), tracer=provider.get_tracer("bench"), sender=sender, **options
        )
        runners[name] = (runner, sender)
    return runners


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline-runner", metavar="RUNNER_PY", help="see the docstring")
    args = parser.parse_args()
    events, rounds = (2_000, 1) if args.quick else (args.events, args.rounds)
    records = make_records(events)
    runners = make_runners(args.baseline_runner)
    for runner, _ in runners.values():
        time_runner(runner, records[: min(500, events)])  # warm-up: caches, first compiles
    timings: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, (runner, _sender) in runners.items():  # back to back in every round
            timings[name].append(time_runner(runner, records))
    baseline = statistics.median(timings["untraced"])
    print(f"{events:,} events x {rounds} round(s), {WORKFLOWS} workflows on the trigger")
    for name, (_runner, sender) in runners.items():
        seconds = statistics.median(timings[name])
        rate, cost = events / seconds, seconds / events * 1e6
        print(
            f"{name:<20} {rate:>10,.0f} events/s  {cost:6.1f} µs/event"
            f"  ({baseline / seconds:.2f}x untraced; {sender.sent:,} records sent)"
        )


if __name__ == "__main__":
    main()
