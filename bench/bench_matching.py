"""W1 (the shared guide's general form): workflow matching, against closures and zen-engine.

26 triggers (config/triggers.yaml); N workflows. Each workflow has 3 conditions on 3 of six
fields (total, items_count, score: numbers; country, tier, channel: strings), in random order,
each with a random operator (==, !=, in, <, <=, >, >=; thresholds both ways), thresholds and
list sizes chosen so about 1 in 40 workflows of a trigger matches an event; some workflows have
no equality at all. Workloads:

* ``general``: workflows round robin over the triggers, events uniform over them;
* ``skewed``: 80% of the workflows and of the events on three triggers;
* ``nested``: ``A and any(B, C) and not D`` in random order, same match rate.

Events per row: 100,000, or fewer where the scanning baselines would test more than 20 million
workflows per round (N = 10,000 and up); every contender runs on the same events.

Every engine sees the same events in the same round, back to back; a figure is the median of
the rounds; the run fails if any engine's match count differs. Baselines:

* hand-written Python closures grouped by trigger: one ``lambda d: ...`` per workflow,
  written out from its conditions (the guide's reference);
* GoRules zen-engine 2.1.3 (``pip install -e '.[bench]'``) on its fastest Python call path
  measured: one compiled standard expression per trigger, ``filter([c0 ? 0 : null, ...],
  # != null)``, evaluated once per event (a decision table with hit policy ``collect`` was
  several times slower: each ``ZenDecision.evaluate`` starts a Tokio runtime).

Also the flatness check: 40 workflows on order.created while unrelated workflows grow.

    .venv/bin/python bench/bench_matching.py           # full run, about 15 minutes
    .venv/bin/python bench/bench_matching.py --quick   # smoke run, well under a minute
    .venv/bin/python bench/bench_matching.py --only general --sizes 100000  # one row
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from eventrules import Engine, Event, TriggerCatalog, parse_workflow

SEED = 20260109
SCAN_BUDGET = 20_000_000  # workflow tests per round for the scanning baselines
MATCH_RATE = 1 / 40
INTS = {"items_count": (1, 20), "score": (0, 99)}
TOTAL = (0.0, 1000.0)
STRINGS = {
    "country": ["DE", "FR", "NL", "AT", "PL", "IT", "ES", "BE"],
    "tier": ["bronze", "silver", "gold", "platinum"],
    "channel": ["web", "app", "store", "phone", "partner"],
}
FIELDS = ["total", *INTS, *STRINGS]
THRESHOLDS = ["lt", "lte", "gt", "gte"]
OPERATORS = {
    "total": THRESHOLDS,
    **{name: ["eq", "ne", "in", *THRESHOLDS] for name in INTS},
    **{name: ["eq", "ne", "in"] for name in STRINGS},
}
PYTHON = {"eq": "==", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

Condition = dict[str, Any]
Test = Callable[[dict[str, Any]], bool]


# ---------------------------------------------------------------- workload


def _domain(field: str) -> list[Any]:
    if field in STRINGS:
        return STRINGS[field]
    low, high = INTS[field]
    return list(range(low, high + 1))


def fixed_share(field: str, operator: str) -> float | None:
    """The share of events an ``==`` / ``!=`` passes; None when the operator can be tuned."""
    if operator in {"eq", "ne"}:
        share = 1 / len(_domain(field))
        return share if operator == "eq" else 1 - share
    return None


def condition(field: str, operator: str, share: float, rng: random.Random) -> Condition:
    """A condition on ``field`` that about ``share`` of the events pass (where tunable)."""
    if field == "total":
        low, high = TOTAL
        cut = high - share * (high - low) if operator in {"gt", "gte"} else share * (high - low)
        return {"field": field, "operator": operator, "value": round(cut, 2)}
    domain = _domain(field)
    size = len(domain)
    if operator == "eq":
        return {"field": field, "operator": "eq", "value": rng.choice(domain)}
    if operator == "ne":
        return {"field": field, "operator": "ne", "value": rng.choice(domain)}
    passing = min(size - 1, max(1, round(share * size)))
    if operator == "in":
        return {"field": field, "operator": "in", "value": sorted(rng.sample(domain, passing))}
    low, high = domain[0], domain[-1]
    value = {
        "gte": high + 1 - passing,
        "gt": high - passing,
        "lte": low + passing - 1,
        "lt": low + passing,
    }[operator]
    return {"field": field, "operator": operator, "value": value}


def flat_conditions(rng: random.Random, share: float = MATCH_RATE) -> list[Condition]:
    """Three conditions on three distinct fields passing about ``share`` of events together."""
    fields = rng.sample(FIELDS, 3)
    operators = [rng.choice(OPERATORS[field]) for field in fields]
    if all(fixed_share(f, o) is not None for f, o in zip(fields, operators, strict=True)):
        tunable = [o for o in OPERATORS[fields[-1]] if fixed_share(fields[-1], o) is None]
        operators[-1] = rng.choice(tunable)
    fixed = math.prod(
        s for f, o in zip(fields, operators, strict=True) if (s := fixed_share(f, o)) is not None
    )
    tuned = sum(fixed_share(f, o) is None for f, o in zip(fields, operators, strict=True))
    each = min(1.0, max(0.01, (share / fixed) ** (1 / tuned)))
    return [condition(f, o, each, rng) for f, o in zip(fields, operators, strict=True)]


def nested_conditions(rng: random.Random) -> list[Condition]:
    """``A and any(B, C) and not D`` in random order, about 1 in 40 events passing."""
    a, b, c, d = rng.sample(FIELDS, 4)

    def tunable(field: str) -> str:
        return rng.choice([o for o in OPERATORS[field] if fixed_share(field, o) is None])

    either = {"any": [condition(b, tunable(b), 0.15, rng), condition(c, tunable(c), 0.15, rng)]}
    negated = {"not": condition(d, tunable(d), 0.5, rng)}
    first = condition(a, tunable(a), MATCH_RATE / ((1 - 0.85**2) * 0.5), rng)
    members = [first, either, negated]
    rng.shuffle(members)
    return members


def workflow(
    number: int, trigger: str, members: list[Condition], prefix: str = "w"
) -> dict[str, Any]:
    return {
        "id": f"{prefix}{number:06d}",
        "name": f"workflow {number}",
        "trigger": trigger,
        "priority": 1 + number % 10,
        "created_by": "bench",
        "conditions": {"all": members},
        "actions": [{"type": "add_tag", "user_id": "{{ user_id }}", "tag": "bench"}],
    }


def skewed_triggers(count: int, triggers: list[str], rng: random.Random) -> list[str]:
    """80% on the first three triggers, the rest spread over all of them."""
    return [
        rng.choice(triggers[:3]) if rng.random() < 0.8 else rng.choice(triggers)
        for _ in range(count)
    ]


def make_definitions(
    n: int, triggers: list[str], shape: str, rng: random.Random, prefix: str = "w"
) -> list[dict[str, Any]]:
    placed = (
        skewed_triggers(n, triggers, rng)
        if shape == "skewed"
        else [triggers[i % len(triggers)] for i in range(n)]
    )
    make = nested_conditions if shape == "nested" else flat_conditions
    return [workflow(i, trigger, make(rng), prefix) for i, trigger in enumerate(placed)]


def make_events(count: int, types: Iterable[str], rng: random.Random) -> list[Event]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        Event(
            id=f"e{i}",
            type=kind,
            time=start + timedelta(seconds=i),
            data={
                "total": round(rng.uniform(*TOTAL), 2),
                **{name: rng.randint(*bounds) for name, bounds in INTS.items()},
                **{name: rng.choice(values) for name, values in STRINGS.items()},
                "user_id": f"u{i % 997}",
            },
        )
        for i, kind in enumerate(types)
    ]


# ---------------------------------------------------------------- engines


def source(node: Condition, spell: Callable[[str, str, Any], str]) -> str:
    """A condition as an expression, each comparison written by ``spell(field, op, value)``."""
    if "all" in node:
        return " and ".join(f"({source(member, spell)})" for member in node["all"])
    if "any" in node:
        return " or ".join(f"({source(member, spell)})" for member in node["any"])
    if "not" in node:
        return f"not ({source(node['not'], spell)})"
    return spell(node["field"], node["operator"], node["value"])


def python_source(node: Condition) -> str:
    """The Python a programmer would write for a condition over the event data ``d``."""

    def spell(field: str, operator: str, value: Any) -> str:
        if operator == "in":
            return f"d[{field!r}] in {frozenset(value)!r}"
        return f"d[{field!r}] {PYTHON[operator]} {value!r}"

    return source(node, spell)


def zen_source(node: Condition) -> str:
    """The same condition in the ZEN expression language."""

    def spell(field: str, operator: str, value: Any) -> str:
        symbol = "in" if operator == "in" else PYTHON[operator]
        return f"{field} {symbol} {json.dumps(value)}"

    return source(node, spell)


def plan_order(definitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(definitions, key=lambda raw: (-raw["priority"], raw["id"]))


def build_engine(definitions: list[dict[str, Any]], catalog: TriggerCatalog) -> Engine:
    engine = Engine(catalog)
    for raw in definitions:
        engine.upsert(parse_workflow(raw))
    return engine


def build_closures(definitions: list[dict[str, Any]]) -> dict[str, list[tuple[str, Test]]]:
    grouped: dict[str, list[tuple[str, Test]]] = {}
    for raw in plan_order(definitions):
        source = f"lambda d: {python_source(raw['conditions'])}"
        # our own generated literals (numbers, fixed names), never outside text
        test = eval(source)  # noqa: S307
        grouped.setdefault(raw["trigger"], []).append((raw["id"], test))
    return grouped


def build_zen(definitions: list[dict[str, Any]]) -> dict[str, Any]:
    import zen  # noqa: PLC0415 - the bench extra; the engine itself never needs it

    grouped: dict[str, list[dict[str, Any]]] = {}
    for raw in plan_order(definitions):
        grouped.setdefault(raw["trigger"], []).append(raw)
    compiled = {}
    for trigger, members in grouped.items():
        terms = ", ".join(
            f"({zen_source(raw['conditions'])}) ? {i} : null" for i, raw in enumerate(members)
        )
        compiled[trigger] = zen.compile_expression(f"filter([{terms}], # != null)")
    return compiled


def warm_up(engine: Engine, events: list[Event]) -> None:
    """Build every trigger's index (on first use, as in a worker) before anything is timed."""
    seen: dict[str, Event] = {}
    for event in events:
        seen.setdefault(event.type, event)
    for event in seen.values():
        engine.match(event)


def run_engine(engine: Engine, events: list[Event]) -> int:
    match = engine.match
    return sum(len(match(event)) for event in events)


def run_closures(closures: dict[str, list[tuple[str, Test]]], events: list[Event]) -> int:
    matches = 0
    for event in events:
        data = event.data
        matches += len([wid for wid, test in closures.get(event.type, ()) if test(data)])
    return matches


def run_zen(expressions: dict[str, Any], events: list[Event]) -> int:
    matches = 0
    for event in events:
        expression = expressions.get(event.type)
        if expression is not None:
            matches += len(expression.evaluate(event.data))
    return matches


@dataclass
class Contender:
    name: str
    run: Callable[[list[Event]], int]
    seconds: list[float]
    matches: int = -1


def measure(contenders: list[Contender], events: list[Event], rounds: int) -> None:
    """Each round runs every contender on the same events, back to back."""
    for _ in range(rounds):
        for contender in contenders:
            started = time.perf_counter()
            matches = contender.run(events)
            contender.seconds.append(time.perf_counter() - started)
            if contender.matches not in {-1, matches}:
                raise SystemExit(f"{contender.name} found {matches}, then {contender.matches}")
            contender.matches = matches
    counts = {contender.name: contender.matches for contender in contenders}
    if len(set(counts.values())) != 1:
        raise SystemExit(f"MATCH COUNTS DIFFER: {counts}")


def rate(contender: Contender, events: int) -> float:
    return events / statistics.median(contender.seconds)


def kilo(value: float) -> str:
    return f"{value / 1000:,.1f}k"


def compare(
    label: str,
    definitions: list[dict[str, Any]],
    events: list[Event],
    catalog: TriggerCatalog,
    *,
    rounds: int,
    with_zen: bool,
) -> None:
    closures = build_closures(definitions)
    # the scans test every workflow of the trigger: bound their work per row, same events for all
    scanned = sum(len(closures.get(event.type, ())) for event in events) / len(events)
    events = events[: max(2_000, min(len(events), int(SCAN_BUDGET / max(scanned, 1))))]
    engine = build_engine(definitions, catalog)
    warm_up(engine, events)
    contenders = [
        Contender("eventrules", lambda evs: run_engine(engine, evs), []),
        Contender("closures", lambda evs: run_closures(closures, evs), []),
    ]
    if with_zen:
        expressions = build_zen(definitions)
        contenders.append(Contender("zen-engine", lambda evs: run_zen(expressions, evs), []))
    measure(contenders, events, rounds)
    ours, closure = rate(contenders[0], len(events)), rate(contenders[1], len(events))
    line = f"{label:>20} {kilo(ours):>10} {kilo(closure):>10} {ours / closure:>6.2f}x"
    if with_zen:
        zen_rate = rate(contenders[2], len(events))
        line += f" {kilo(zen_rate):>10} {ours / zen_rate:>6.2f}x"
    share = contenders[0].matches / sum(len(closures.get(event.type, ())) for event in events)
    print(
        f"{line} {contenders[0].matches:>10,} {len(events):>8,}  1 in {1 / share:.0f}"
        if share
        else line,
        flush=True,
    )


def header(with_zen: bool) -> None:
    zen = f" {'zen-engine':>10} {'vs zen':>7}" if with_zen else ""
    print(
        f"{'workload, N':>20} {'eventrules':>10} {'closures':>10} {'ratio':>7}{zen}"
        f" {'matches':>10} {'events':>8}  matched share",
        flush=True,
    )


def zen_available() -> bool:
    try:
        import zen  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--events", type=int, help="events per size (100,000)")
    parser.add_argument("--rounds", type=int, help="rounds per size (5)")
    parser.add_argument(
        "--only",
        choices=["general", "skewed", "nested", "flatness"],
        action="append",
        help="run only these parts (repeatable; default: all)",
    )
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(size) for size in text.split(",")],
        help="comma-separated N for the general/skewed/nested rows (default: the guide's)",
    )
    args = parser.parse_args()
    parts = set(args.only or ["general", "skewed", "nested", "flatness"])
    quick = args.quick
    rounds = args.rounds or (1 if quick else 5)
    event_count = args.events or (2_000 if quick else 100_000)
    with_zen = zen_available()
    catalog = TriggerCatalog.load()
    triggers = catalog.names()
    rng = random.Random(SEED)
    uniform = make_events(event_count, (rng.choice(triggers) for _ in range(event_count)), rng)
    skewed = make_events(event_count, skewed_triggers(event_count, triggers, rng), rng)
    print(
        f"W1 general: {len(triggers)} triggers, {event_count:,} events per size, "
        f"median of {rounds} round(s), seed {SEED}; events/s"
        + ("" if with_zen else "  (zen-engine not installed: pip install -e '.[bench]')"),
        flush=True,
    )
    header(with_zen)
    sizes = args.sizes or ([100, 1_000] if quick else [100, 1_000, 10_000, 100_000])
    for n in sizes if "general" in parts else []:
        definitions = make_definitions(n, triggers, "general", random.Random(SEED + n))
        compare(f"general {n:,}", definitions, uniform, catalog, rounds=rounds, with_zen=with_zen)
    for shape, events in (("skewed", skewed), ("nested", uniform)):
        if shape not in parts:
            continue
        for n in args.sizes or ([1_000] if quick else [1_000, 10_000]):
            definitions = make_definitions(n, triggers, shape, random.Random(SEED + n))
            compare(
                f"{shape} {n:,}", definitions, events, catalog, rounds=rounds, with_zen=with_zen
            )
    if "flatness" not in parts:
        return
    print("\nflatness: 40 workflows on order.created, unrelated workflows on the 25 others")
    print(f"{'unrelated':>10} {'eventrules':>10} {'closures':>10} {'matches':>10}", flush=True)
    fixed = make_definitions(40, ["order.created"], "general", random.Random(SEED), "f")
    focused = [
        event.model_copy(update={"type": "order.created"}) for event in uniform[: event_count // 4]
    ]
    others = [name for name in triggers if name != "order.created"]
    for unrelated in [100, 10_000] if quick else [100, 1_000, 10_000, 100_000]:
        noise = make_definitions(unrelated, others, "general", random.Random(SEED + unrelated))
        definitions = fixed + noise
        engine = build_engine(definitions, catalog)
        warm_up(engine, focused)
        closures = build_closures(definitions)
        contenders = [
            Contender("eventrules", lambda evs, e=engine: run_engine(e, evs), []),
            Contender("closures", lambda evs, c=closures: run_closures(c, evs), []),
        ]
        measure(contenders, focused, rounds)
        print(
            f"{unrelated:>10,} {kilo(rate(contenders[0], len(focused))):>10}"
            f" {kilo(rate(contenders[1], len(focused))):>10} {contenders[0].matches:>10,}",
            flush=True,
        )


if __name__ == "__main__":
    main()
