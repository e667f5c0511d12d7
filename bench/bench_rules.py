"""W2 from the shared guide: pricing decisions, against closures and zen-engine.

100 pricing rules over facts {total, customer_tier, country, item_count, day_of_week}, each a
conjunction of three comparisons (about 1 in 40 rules matches a request), with a percentage or
fixed discount and a random priority. 100,000 evaluations, first-hit (policy ``first``) and
collect (policy ``stack``: every match applies, in priority order). Baselines, each computing
the same Decimal price from the rules it finds:

* hand-written closures: one per rule, walked in priority order;
* GoRules zen-engine 2.1.3 (``pip install -e '.[bench]'``) on its fastest Python call path
  measured: one compiled expression for the rule set, ``c0 ? 0 : c1 ? 1 : ... : null`` for
  first-hit and ``filter([c0 ? 0 : null, ...], # != null)`` for collect (decision tables with
  hit policy ``first`` / ``collect`` ran at a few thousand evaluations/s: every
  ``ZenDecision.evaluate`` starts a Tokio runtime).

Every contender runs on the same facts in each round, back to back; figures are medians of the
rounds; the run fails if price sums or hit counts differ.

    .venv/bin/python bench/bench_rules.py           # full run: medians of 5, a few minutes
    .venv/bin/python bench/bench_rules.py --quick   # smoke run, seconds
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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


Step = Callable[[Decimal], Decimal]
Evaluate = Callable[[Facts], Decimal]


def ordered_steps(rules: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Step]]:
    """Each rule with its discount as a price function, in priority order."""
    steps = []
    for rule in sorted(rules, key=lambda rule: (-rule["priority"], rule["id"])):
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

        steps.append((rule, apply))
    return steps


def price_of(facts: Facts) -> Decimal:
    return Decimal(repr(facts["total"])).quantize(CENT, rounding=ROUND_HALF_UP)


def closures(rules: list[dict[str, Any]], hits: list[int]) -> tuple[Evaluate, Evaluate]:
    steps = [(hand_written(rule), apply) for rule, apply in ordered_steps(rules)]

    def first_hit(facts: Facts) -> Decimal:
        price = price_of(facts)
        for test, apply in steps:
            if test(facts):
                hits[0] += 1
                return apply(price)
        return price

    def collect(facts: Facts) -> Decimal:
        price = price_of(facts)
        for test, apply in steps:
            if test(facts):
                hits[0] += 1
                price = apply(price)
        return price

    return first_hit, collect


def zen_source(condition: dict[str, Any]) -> str:
    value = json.dumps(condition["value"])
    if condition["operator"] == "in":
        return f"{condition['field']} in {value}"
    symbol = {"eq": "==", "gte": ">="}[condition["operator"]]
    return f"{condition['field']} {symbol} {value}"


def zen_engine(rules: list[dict[str, Any]], hits: list[int]) -> tuple[Evaluate, Evaluate]:
    import zen  # noqa: PLC0415 - the bench extra; the engine itself never needs it

    steps = ordered_steps(rules)
    tests = [" and ".join(zen_source(c) for c in rule["conditions"]["all"]) for rule, _ in steps]
    chain = zen.compile_expression(
        "".join(f"({test}) ? {i} : " for i, test in enumerate(tests)) + "null"
    )
    every = zen.compile_expression(
        "filter([" + ", ".join(f"({t}) ? {i} : null" for i, t in enumerate(tests)) + "], # != null)"
    )
    applies = [apply for _, apply in steps]

    def first_hit(facts: Facts) -> Decimal:
        price = price_of(facts)
        found = chain.evaluate(facts)
        if found is None:
            return price
        hits[0] += 1
        return applies[int(found)](price)

    def collect(facts: Facts) -> Decimal:
        price = price_of(facts)
        for found in every.evaluate(facts):
            hits[0] += 1
            price = applies[int(found)](price)
        return price

    return first_hit, collect


def ours(engine: RulesEngine, policy: str, hits: list[int]) -> Evaluate:
    def evaluate(facts: Facts) -> Decimal:
        decision = engine.evaluate("pricing", facts, at=AT, policy=policy)
        hits[0] += len(decision.matched)
        assert decision.price is not None  # noqa: S101 - pricing always has a price
        return decision.price.final

    return evaluate


@dataclass
class Contender:
    name: str
    evaluate: Evaluate
    hits: list[int]
    seconds: list[float] = field(default_factory=list)
    checksum: tuple[Decimal, int] | None = None


def measure(contenders: list[Contender], facts: list[Facts], rounds: int) -> None:
    """Each round runs every contender over the same facts, back to back."""
    for _ in range(rounds):
        for contender in contenders:
            contender.hits[0] = 0
            evaluate = contender.evaluate
            total = Decimal(0)
            started = time.perf_counter()
            for item in facts:
                total += evaluate(item)
            contender.seconds.append(time.perf_counter() - started)
            contender.checksum = (total, contender.hits[0])
    sums = {contender.name: contender.checksum for contender in contenders}
    if len(set(sums.values())) != 1:
        raise SystemExit(f"RESULTS DIFFER (price sum, hits): {sums}")


def zen_available() -> bool:
    try:
        import zen  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 evaluations, one round")
    args = parser.parse_args()
    count, rounds = (5_000, 1) if args.quick else (100_000, 5)
    rng = random.Random(SEED)
    definitions = make_rules(rng)
    facts = make_facts(count, rng)
    engine = RulesEngine([parse_rule(raw) for raw in definitions])
    with_zen = zen_available()
    print(
        f"W2: {RULES} pricing rules, {count:,} evaluations, median of {rounds} round(s)"
        + ("" if with_zen else "  (zen-engine not installed: pip install -e '.[bench]')")
    )
    closure_hits, zen_hits = [0], [0]
    closure_first, closure_collect = closures(definitions, closure_hits)
    zen_first, zen_collect = zen_engine(definitions, zen_hits) if with_zen else (None, None)
    for label, policy, closure, zen in (
        ("first-hit", "first", closure_first, zen_first),
        ("collect (stack)", "stack", closure_collect, zen_collect),
    ):
        contenders = [
            Contender("eventrules", ours(engine, policy, hits := [0]), hits),
            Contender("closures", closure, closure_hits),
        ]
        if zen is not None:
            contenders.append(Contender("zen-engine", zen, zen_hits))
        measure(contenders, facts, rounds)
        rates = {c.name: count / statistics.median(c.seconds) for c in contenders}
        line = "  ".join(f"{name} {value:>9,.0f}/s" for name, value in rates.items())
        ratios = "  ".join(
            f"eventrules/{name} {rates['eventrules'] / value:.2f}x"
            for name, value in rates.items()
            if name != "eventrules"
        )
        total, hit_count = contenders[0].checksum or (Decimal(0), 0)
        print(f"{label:<16} {line}")
        print(f"{'':<16} {ratios}   hits {hit_count:,}, price sum {total}", flush=True)


if __name__ == "__main__":
    main()
