"""W1 from docs/benchmarks: workflow matching throughput, against hand-written closures.

26 triggers; N workflows assigned round robin, each ``total > X and country == "DE" and
items_count >= k`` with thresholds drawn so about 1 in 40 workflows of a trigger matches an
event; 100,000 random events. Prints events/s and match counts for the engine (indexed) and
for the baseline measured in the same run, then a flatness series: a fixed set of workflows on
one trigger while workflows on the other triggers grow.

    .venv/bin/python bench/bench_matching.py           # full run, a few minutes
    .venv/bin/python bench/bench_matching.py --quick   # smoke run, seconds
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from eventrules import Engine, Event, TriggerCatalog, parse_workflow

SEED = 20260109
COUNTRIES = ["DE", "DE", "FR", "NL", "AT"]  # P(DE) = 0.4
Baseline = dict[str, list[tuple[str, Callable[[dict[str, Any]], bool]]]]


def make_definitions(n: int, triggers: list[str], rng: random.Random) -> list[dict[str, Any]]:
    # P(total > X) = 0.2 with X in [600, 1000); P(items >= k) = 0.3 with k in 6..10
    return [
        {
            "id": f"w{i:06d}",
            "name": f"workflow {i}",
            "trigger": triggers[i % len(triggers)],
            "priority": rng.randint(1, 10),
            "created_by": "bench",
            "conditions": {
                "all": [
                    {"field": "total", "operator": "gt", "value": rng.uniform(600, 1000)},
                    {"field": "country", "operator": "eq", "value": "DE"},
                    {"field": "items_count", "operator": "gte", "value": rng.randint(6, 10)},
                ]
            },
            "actions": [{"type": "add_tag", "user_id": "u", "tag": "t"}],
        }
        for i in range(n)
    ]


def make_events(count: int, triggers: list[str], rng: random.Random) -> list[Event]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        Event(
            id=f"e{i}",
            type=rng.choice(triggers),
            time=start + timedelta(seconds=i),
            data={
                "total": rng.uniform(0, 1000),
                "country": rng.choice(COUNTRIES),
                "items_count": rng.randint(1, 10),
            },
        )
        for i in range(count)
    ]


def build_engine(definitions: list[dict[str, Any]], catalog: TriggerCatalog) -> Engine:
    engine = Engine(catalog)
    for raw in definitions:
        engine.upsert(parse_workflow(raw))
    return engine


def build_baseline(definitions: list[dict[str, Any]]) -> Baseline:
    """Hand-written closures grouped by trigger: the guide's reference implementation."""
    grouped: Baseline = {}
    for raw in definitions:
        total, _, items = (c["value"] for c in raw["conditions"]["all"])

        def predicate(data: dict[str, Any], x: float = total, k: int = items) -> bool:
            return data["total"] > x and data["country"] == "DE" and data["items_count"] >= k

        grouped.setdefault(raw["trigger"], []).append((raw["id"], predicate))
    return grouped


def run_engine(engine: Engine, events: list[Event]) -> tuple[float, int]:
    match = engine.match
    matches = 0
    started = time.perf_counter()
    for event in events:
        matches += len(match(event))
    return len(events) / (time.perf_counter() - started), matches


def run_baseline(baseline: Baseline, events: list[Event]) -> tuple[float, int]:
    matches = 0
    started = time.perf_counter()
    for event in events:
        data = event.data
        matches += len([wid for wid, test in baseline.get(event.type, ()) if test(data)])
    return len(events) / (time.perf_counter() - started), matches


def agree(engine_matches: int, baseline_matches: int) -> None:
    """The figures only count if both sides found the same matches."""
    if engine_matches != baseline_matches:
        raise SystemExit(f"match counts differ: {engine_matches} vs {baseline_matches}")


def rate(value: float) -> str:
    return f"{value / 1000:,.1f}k ev/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = parser.parse_args()
    sizes = [100, 1_000, 10_000] if args.quick else [100, 1_000, 10_000, 100_000]
    event_count = 5_000 if args.quick else 100_000
    catalog = TriggerCatalog.load()
    triggers = catalog.names()
    events = make_events(event_count, triggers, random.Random(SEED))

    print(f"W1 workflow matching: {len(triggers)} triggers, {event_count:,} events, seed {SEED}")
    print(f"{'N':>8} {'engine':>16} {'baseline':>16} {'ratio':>7} {'matches':>10} {'/event':>7}")
    for n in sizes:
        definitions = make_definitions(n, triggers, random.Random(SEED + n))
        engine = build_engine(definitions, catalog)
        baseline = build_baseline(definitions)
        engine_rate, engine_matches = run_engine(engine, events)
        # the closure scan is O(N) per event; at 100k a slice of the events gives its rate
        sample = events if n < 100_000 else events[: max(1, event_count // 20)]
        baseline_rate, baseline_matches = run_baseline(baseline, sample)
        same_events = engine_matches if n < 100_000 else run_engine(engine, sample)[1]
        agree(same_events, baseline_matches)
        print(
            f"{n:>8,} {rate(engine_rate):>16} {rate(baseline_rate):>16}"
            f" {engine_rate / baseline_rate:>6.1f}x {engine_matches:>10,}"
            f" {engine_matches / event_count:>7.2f}"
        )

    print("\nflatness: 40 workflows on order.created, unrelated workflows on the 25 others")
    print(f"{'unrelated':>10} {'engine':>16} {'baseline':>16} {'matches':>10}")
    rng = random.Random(SEED)
    fixed = make_definitions(40, ["order.created"], rng)
    focused = [
        event.model_copy(update={"type": "order.created"}) for event in events[: event_count // 4]
    ]
    others = [name for name in triggers if name != "order.created"]
    for unrelated in sizes:
        noise = make_definitions(unrelated, others, random.Random(SEED + unrelated))
        for raw in noise:
            raw["id"] = "u" + raw["id"]
        definitions = fixed + noise
        engine_rate, engine_matches = run_engine(build_engine(definitions, catalog), focused)
        baseline_rate, baseline_matches = run_baseline(build_baseline(definitions), focused)
        agree(engine_matches, baseline_matches)
        print(
            f"{unrelated:>10,} {rate(engine_rate):>16} {rate(baseline_rate):>16}"
            f" {engine_matches:>10,}"
        )


if __name__ == "__main__":
    main()
