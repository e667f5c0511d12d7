"""Readiness: time and memory to load 10,000 definitions the way a worker does, in-process.

The definitions are config records (key ``workflow:<id>`` / ``rule:<id>``, value the JSON a
``config apply`` publishes): W1 general workflows (three conditions each, two templated
actions whose texts differ per workflow) and W2 pricing rules, 9:1. They go through the
worker's own path: ``ConfigTable.apply`` (JSON decode, pydantic validation, condition and
template compilation, install in the workflow engine / rules engine), with the worker's
metrics and action registry, in the follower's batches of 2,000 records, each followed by
``ConfigTable.settle()`` as the follower does while it catches up. Printed: the load time and
RSS once loaded (VmRSS and the peak VmHWM from /proc/self/status; the process already holds
the records), then the first-use cost
that indexes build lazily (one event per trigger and one rule evaluation), next to a floor
measured in the same run: decoding the same records with orjson only.

    .venv/bin/python bench/bench_ready.py           # 10,000 definitions
    .venv/bin/python bench/bench_ready.py --quick   # 1,000 definitions
"""

from __future__ import annotations

import argparse
import functools
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).parent))

from bench_matching import SEED, make_definitions, make_events
from bench_rules import make_rules
from eventrules import Engine, RulesEngine, TriggerCatalog, parse_rule, parse_workflow
from eventrules.metrics import Metrics
from eventrules.models.actions import ActionRegistry
from eventrules.runtime.config_table import ConfigTable, DefinitionKind

BATCH = 2_000  # records per consume() call of the config follower


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/self/status")


def mib(kib: int) -> str:
    return f"{kib / 1024:,.0f} MiB"


def records(count: int, triggers: list[str]) -> list[tuple[bytes, bytes]]:
    rules = count // 10
    workflows = make_definitions(count - rules, triggers, "general", random.Random(SEED))
    out = []
    for raw in workflows:
        raw["kind"] = "workflow"
        raw["version"] = 1
        raw["actions"] = [
            {
                "type": "send_email",
                "to": "{{ email }}",
                "subject": f"{raw['name']}: order {{{{ order_id }}}}",
                "template": f"Hello {{{{ name }}}}, workflow {raw['id']} saw {{{{ total }}}}.",
            },
            {"type": "create_task", "title": f"Follow up {{{{ order_id }}}} ({raw['id']})"},
        ]
        out.append((f"workflow:{raw['id']}".encode(), orjson.dumps(raw)))
    rng = random.Random(SEED)
    for number in range(rules):
        raw = make_rules(rng)[number % 100]
        raw["id"] = f"r{number:05d}"
        out.append((f"rule:{raw['id']}".encode(), orjson.dumps(raw)))
    random.Random(SEED).shuffle(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 definitions")
    parser.add_argument("--definitions", type=int, help="how many (10,000)")
    args = parser.parse_args()
    count = args.definitions or (1_000 if args.quick else 10_000)
    catalog = TriggerCatalog.load()
    triggers = catalog.names()
    config = records(count, triggers)
    registry = ActionRegistry.from_entry_points()

    started = time.perf_counter()
    decoded = [orjson.loads(value) for _, value in config]
    floor = time.perf_counter() - started
    del decoded

    before = status_kib("VmRSS")
    engine = Engine(catalog)
    rules = RulesEngine()
    table = ConfigTable(  # as runtime/worker.py builds it
        {
            "workflow": DefinitionKind(
                functools.partial(parse_workflow, registry=registry), engine
            ),
            "rule": DefinitionKind(parse_rule, rules),
        },
        metrics=Metrics.create(CollectorRegistry()),
    )
    started = time.perf_counter()
    changes = []
    for batch in range(0, count, BATCH):  # as the config follower consumes and settles them
        changes += [table.apply(key, value) for key, value in config[batch : batch + BATCH]]
        table.settle()
    loaded = time.perf_counter() - started
    rejected = [change for change in changes if change.outcome == "rejected"]
    if rejected or len(engine) + len(rules) != count:
        raise SystemExit(f"{len(rejected)} rejected, {len(engine) + len(rules)} of {count} held")
    after, peak = status_kib("VmRSS"), status_kib("VmHWM")

    events = make_events(len(triggers), triggers, random.Random(SEED))
    started = time.perf_counter()
    matched = sum(len(engine.match(event)) for event in events)
    rules.evaluate(
        "pricing",
        {"total": 500.0, "customer_tier": "gold", "country": "DE", "item_count": 3},
        at=datetime(2026, 1, 10, tzinfo=UTC),
    )
    first_use = time.perf_counter() - started

    workflows = len(engine)
    print(f"readiness: {count:,} definitions ({workflows:,} workflows, {len(rules):,} rules)")
    print(f"  ConfigTable.apply, all records      {loaded:6.2f} s   ({count / loaded:,.0f}/s)")
    print(f"  floor: orjson.loads of the values   {floor:6.2f} s")
    print(f"  first use (indexes built lazily)    {first_use:6.2f} s   ({matched} matches)")
    print(
        f"  RSS once loaded {mib(after)} (peak {mib(peak)}); "
        f"{mib(after - before)} for the definitions, {(after - before) / count:.1f} KiB each"
    )


if __name__ == "__main__":
    main()
