"""W2 from docs/benchmarks: pricing decisions, against hand-written closures.

100 pricing rules over facts {total, customer_tier, country, item_count, day_of_week}, each a
conjunction of three comparisons (about 1 in 40 rules matches a request), with a percentage or
fixed discount and a random priority. 100,000 evaluations, first-hit (policy ``first``) and
collect (policy ``stack``: every match applies). The baseline is one closure per rule, written
by hand, walked in the same priority order, computing the same Decimal price; it is measured in
the same run, and the match counts and price sums of both must agree.

    .venv/bin/python bench/bench_rules.py           # full run: medians of 5, about a minute
    .venv/bin/python bench/bench_rules.py --quick   # smoke run, seconds
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from eventrules import RulesEngine, parse_rule

SEED = 20260109
RULES = 100
TIERS = ["bronze", "silver", "gold", "platinum"]
COUNTRIES = ["DE", "FR", "NL", "AT", "PL"]
AT = datetime(2026, 1, 10, 14, 30, tzinfo=UTC)
CENT = Decimal("0.01")

Facts = dict[str, Any]
Test = Callable[[Facts], bool]


def make_rules(rng: random.Random) -> list[dict[str, Any]]:
    rules = []
    for i in range(RULES):
        tier, country = rng.choice(TIERS), rng.choice(COUNTRIES)
        threshold = round(rng.uniform(0, 1000), 2)
        shape = i % 3
        if shape == 0:  # P = 0.5 * 0.25 * 0.2
            conditions = [
                {"field": "total", "operator": "gte", "value": threshold},
                {"field": "customer_tier", "operator": "eq", "value": tier},
                {"field": "country", "operator": "eq", "value": country},
            ]
        elif shape == 1:  # P ~ 0.5 * 0.25 * 0.2
            conditions = [
                {"field": "total", "operator": "gte", "value": threshold},
                {"field": "customer_tier", "operator": "eq", "value": tier},
                {"field": "item_count", "operator": "gte", "value": rng.randint(14, 19)},
            ]
        else:  # P = 0.25 * 0.2 * 2/7
            conditions = [
                {"field": "customer_tier", "operator": "eq", "value": tier},
                {"field": "country", "operator": "eq", "value": country},
                {"field": "day_of_week", "operator": "in", "value": [0, 6]},
            ]
        if rng.random() < 0.75:
            action = {"type": "percentage_discount", "percent": rng.randint(1, 30)}
        else:
            action = {"type": "fixed_discount", "amount": rng.randint(1, 50)}
        rules.append(
            {
                "kind": "rule",
                "id": f"r{i:03d}",
                "name": f"rule {i}",
                "rule_type": "pricing",
                "priority": rng.randint(1, 1000),
                "created_by": "bench",
                "conditions": {"all": conditions},
                "actions": [action],
            }
        )
    return rules


def make_facts(count: int, rng: random.Random) -> list[Facts]:
    return [
        {
            "total": round(rng.uniform(0, 1000), 2),
            "customer_tier": rng.choice(TIERS),
            "country": rng.choice(COUNTRIES),
            "item_count": rng.randint(1, 20),
            "day_of_week": rng.randint(0, 6),
        }
        for _ in range(count)
    ]


def hand_written(rule: dict[str, Any]) -> Test:
    """The closure a programmer would write for the rule, reading the values out of it."""
    first, second, third = rule["conditions"]["all"]
    if first["field"] == "total":
        x, tier = first["value"], second["value"]
        if third["field"] == "country":
            c = third["value"]
            return lambda f: f["total"] >= x and f["customer_tier"] == tier and f["country"] == c
        k = third["value"]
        return lambda f: f["total"] >= x and f["customer_tier"] == tier and f["item_count"] >= k
    tier, c, days = first["value"], second["value"], frozenset(third["value"])
    return lambda f: f["customer_tier"] == tier and f["country"] == c and f["day_of_week"] in days


def baseline(
    rules: list[dict[str, Any]],
) -> tuple[Callable[[Facts], Decimal], Callable[[Facts], Decimal], list[int]]:
    ordered = sorted(rules, key=lambda rule: (-rule["priority"], rule["id"]))
    steps = []
    for rule in ordered:
        action = rule["actions"][0]
        if action["type"] == "percentage_discount":
            percent = Decimal(action["percent"])

            def apply(price: Decimal, percent: Decimal = percent) -> Decimal:
                amount = (price * percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)
                return price - min(amount, price)

        else:
            amount = Decimal(action["amount"]).quantize(CENT)

            def apply(price: Decimal, amount: Decimal = amount) -> Decimal:
                return price - min(amount, price)

        steps.append((hand_written(rule), apply))
    hits = [0]

    def first_hit(facts: Facts) -> Decimal:
        price = Decimal(repr(facts["total"])).quantize(CENT, rounding=ROUND_HALF_UP)
        for test, apply in steps:
            if test(facts):
                hits[0] += 1
                return apply(price)
        return price

    def collect(facts: Facts) -> Decimal:
        price = Decimal(repr(facts["total"])).quantize(CENT, rounding=ROUND_HALF_UP)
        for test, apply in steps:
            if test(facts):
                hits[0] += 1
                price = apply(price)
        return price

    return first_hit, collect, hits


def run(evaluate: Callable[[Facts], Decimal], facts: list[Facts]) -> tuple[float, Decimal]:
    start = time.perf_counter()
    total = Decimal(0)
    for item in facts:
        total += evaluate(item)
    return time.perf_counter() - start, total


def measure(
    label: str, evaluate: Callable[[Facts], Decimal], facts: list[Facts], repeats: int
) -> tuple[float, Decimal]:
    seconds = []
    checksum = Decimal(0)
    for _ in range(repeats):
        elapsed, checksum = run(evaluate, facts)
        seconds.append(elapsed)
    rate = len(facts) / statistics.median(seconds)
    print(f"  {label:<28} {rate:>12,.0f} evals/s   (price sum {checksum})")
    return rate, checksum


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 evaluations, one run")
    args = parser.parse_args()
    count, repeats = (5_000, 1) if args.quick else (100_000, 5)
    rng = random.Random(SEED)
    definitions = make_rules(rng)
    facts = make_facts(count, rng)
    engine = RulesEngine([parse_rule(raw) for raw in definitions])
    first_closure, collect_closure, closure_hits = baseline(definitions)
    print(f"W2: {RULES} pricing rules, {count:,} evaluations, median of {repeats} run(s)")

    for policy, closure in (("first", first_closure), ("stack", collect_closure)):
        matched = [0]

        def evaluate(item: Facts, policy: str = policy, matched: list[int] = matched) -> Decimal:
            decision = engine.evaluate("pricing", item, at=AT, policy=policy)
            matched[0] += len(decision.matched)
            assert decision.price is not None  # noqa: S101 - pricing always has a price
            return decision.price.final

        name = "first-hit" if policy == "first" else "collect (stack)"
        print(f"{name}:")
        rate, engine_sum = measure("eventrules RulesEngine", evaluate, facts, repeats)
        closure_hits[0] = 0
        base_rate, base_sum = measure("hand-written closures", closure, facts, repeats)
        if engine_sum != base_sum or matched[0] != closure_hits[0]:
            raise SystemExit(
                f"results differ: engine {engine_sum} / {matched[0]} matches, "
                f"closures {base_sum} / {closure_hits[0]} matches"
            )
        ratio = rate / base_rate
        print(f"  matches per run: {matched[0] // repeats:,}; engine/closures = {ratio:.2f}")


if __name__ == "__main__":
    main()
