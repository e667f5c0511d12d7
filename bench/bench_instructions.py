"""CPU instructions per event of the runner, counted by valgrind's callgrind: a figure that a
shared, noisy machine does not move (wall-clock and even CPU-time figures here move by 30%
between runs of the same code, as other jobs share the caches and the cores).

The workload is bench_worker.py's (1,000 workflows over the catalog's triggers, ``bucket == k``,
one send_email or create_task action; one match per event), or with ``--workload general``
W1's 1,000 general workflows (worker_general.py, 0.96 matches per event), run through
``WorkflowRunner.handle``, in-process, with a producer that drops what it is given: decoding,
matching, rendering, the action message and the execution record, their serialisation, the
sender and the metrics; not librdkafka (whose threads would make the count depend on time).
Counting starts after a warm-up that has touched every workflow (metric children, caches).

Each ``--src`` is a checkout's ``src`` directory (or the working tree's by default), measured
in a subprocess with it first on ``PYTHONPATH``: how a change is compared with ``main``
(``git worktree add /tmp/base main`` then ``--src /tmp/base/src --src src``). Needs valgrind
(``apt-get install valgrind``); each measurement takes about 20 seconds.

    .venv/bin/python bench/bench_instructions.py [--src DIR ...] [--events 1000] [--quick]
    .venv/bin/python bench/bench_instructions.py --workload general
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WARM_UP_EVENTS = 4000  # touches every one of the 1,000 workflows
QUICK_WARM_UP_EVENTS = 300


def measure_here(events_n: int, warm_up: int, workload: str) -> None:
    """Runs under callgrind (started by :func:`count`): toggles counting around the events."""
    sys.path.insert(0, str(REPO / "bench"))
    from bench_worker import make_events, make_workflows  # noqa: PLC0415 - after sys.path
    from eventrules.kafka.records import Record  # noqa: PLC0415 - the --src under test
    from eventrules.kafka.sender import KafkaSender  # noqa: PLC0415
    from eventrules.metrics import Metrics  # noqa: PLC0415
    from eventrules.models.workflows import parse_workflow  # noqa: PLC0415
    from eventrules.runtime.runner import WorkflowRunner  # noqa: PLC0415
    from eventrules.settings import TopicNames  # noqa: PLC0415
    from eventrules.workflows.engine import Engine  # noqa: PLC0415
    from worker_general import general_workload  # noqa: PLC0415
    from worker_harness import load_triggers  # noqa: PLC0415

    class DroppingProducer:
        def produce(self, *args: object, **kwargs: object) -> None:
            pass

    triggers = load_triggers()
    engine = Engine()
    if workload == "general":
        general = general_workload(1000, warm_up + events_n, "bench.")
        definitions, events = general.definitions, general.events
    else:
        definitions = make_workflows(1000, triggers)
        events = make_events(warm_up + events_n, 1000, triggers, "bench.", random.Random(1))
    for definition in definitions:
        engine.upsert(parse_workflow({k: v for k, v in definition.items() if k != "kind"}))
    records = [
        Record(e.topic, 0, n, e.key, e.value, [], 1_796_180_000_000) for n, e in enumerate(events)
    ]
    runner = WorkflowRunner(
        engine,
        topics=TopicNames("bench."),
        sender=KafkaSender(DroppingProducer()),  # type: ignore[arg-type]
        metrics=Metrics.create(),
    )

    async def run(batch: list[Record]) -> None:
        for record in batch:
            await runner.handle(record)
        runner.metrics.apply_counts_due()

    loop = asyncio.new_event_loop()
    loop.run_until_complete(run(records[:warm_up]))
    toggle = ["callgrind_control", "--instr=on", str(os.getpid())]
    subprocess.run(toggle, capture_output=True, check=True)
    loop.run_until_complete(run(records[warm_up:]))
    subprocess.run([*toggle[:1], "--instr=off", toggle[2]], capture_output=True, check=True)


def count(src: Path, events_n: int, warm_up: int, workload: str) -> int:
    """Instructions per event with ``src`` first on the path."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--inside",
                "--events",
                str(events_n),
                "--warm-up",
                str(warm_up),
                "--workload",
                workload,
            ],
            env={**os.environ, "PYTHONPATH": str(src)},
            capture_output=True,
            check=True,
        )
        for line in out.read_text().splitlines():
            if line.startswith("totals:"):
                return int(line.split()[1]) // events_n
    raise SystemExit("callgrind wrote no totals")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", action="append", type=Path, help="a checkout's src (repeat)")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--warm-up", type=int, default=WARM_UP_EVENTS)
    parser.add_argument(
        "--workload",
        choices=["one-match", "general"],
        default="one-match",
        help="bench_worker's one match per event, or W1's 1,000 general workflows",
    )
    parser.add_argument("--quick", action="store_true", help="100 events, a short warm-up")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.events, args.warm_up = 100, QUICK_WARM_UP_EVENTS
    if args.inside:
        measure_here(args.events, args.warm_up, args.workload)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    sources = args.src or [REPO / "src"]
    print(
        f"instructions per event through WorkflowRunner.handle, {args.workload} workload,"
        f" {args.events:,} events"
    )
    first = None
    for src in sources:
        figure = count(src.resolve(), args.events, args.warm_up, args.workload)
        first = first or figure
        print(f"  {src!s:<40} {figure:>9,}   ({figure / first:.2f}x the first)", flush=True)


if __name__ == "__main__":
    main()
