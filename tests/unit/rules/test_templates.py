"""The seed's four rule templates: valid, and producing the seed's outcomes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from eventrules import RulesEngine, check_rules, load_rules
from eventrules.rules import Rule

TEMPLATES = Path(__file__).resolve().parents[3] / "config" / "templates" / "rules"
SATURDAY = datetime(2026, 1, 10, 14, 30, tzinfo=UTC)
WEDNESDAY = datetime(2026, 1, 7, 14, 30, tzinfo=UTC)
NAMES = [
    "bulk-order-discount",
    "first-order-discount",
    "weekend-special",
    "minimum-order-validation",
]


def template(name: str) -> Rule:
    (loaded,) = load_rules(TEMPLATES / f"{name}.yaml")
    return loaded


def test_the_templates_are_exactly_the_seeds_four() -> None:
    assert sorted(p.stem for p in TEMPLATES.glob("*.yaml")) == sorted(NAMES)
    for name in NAMES:
        loaded = template(name)
        assert (loaded.id, loaded.kind, loaded.created_by) == (name, "rule", "eventrules-templates")


@pytest.mark.parametrize(("total", "final"), [(500, "425.00"), (620, "527.00"), (499.99, "499.99")])
def test_bulk_order_discount_is_15_percent_from_500(total: float, final: str) -> None:
    decision = RulesEngine([template("bulk-order-discount")]).evaluate(
        "pricing", {"total": total}, at=WEDNESDAY
    )
    assert decision.price is not None
    assert decision.price.final == Decimal(final)


def test_first_order_discount_needs_no_previous_orders() -> None:
    engine = RulesEngine([template("first-order-discount")])
    first = engine.evaluate("pricing", {"total": 100, "user": {"orderCount": 0}}, at=WEDNESDAY)
    assert first.price is not None
    assert first.price.final == Decimal("90.00")
    again = engine.evaluate("pricing", {"total": 100, "user": {"orderCount": 3}}, at=WEDNESDAY)
    assert again.matched == ()


def test_weekend_special_on_weekends_inside_its_window() -> None:
    engine = RulesEngine([template("weekend-special")])
    saturday = engine.evaluate("pricing", {"total": 100}, at=SATURDAY)
    assert saturday.price is not None
    assert saturday.price.final == Decimal("95.00")
    assert engine.evaluate("pricing", {"total": 100}, at=WEDNESDAY).matched == ()
    later = engine.evaluate("pricing", {"total": 100}, at=datetime(2027, 1, 2, tzinfo=UTC))
    assert later.matched == ()
    assert later.outside_window[0].reason.startswith("expired at 2027-01-01")


@pytest.mark.parametrize(("total", "allowed"), [(19.99, False), (20, True), (0, False)])
def test_minimum_order_validation_blocks_under_20(total: float, allowed: bool) -> None:
    decision = RulesEngine([template("minimum-order-validation")]).evaluate(
        "order_validation", {"total": total}, at=WEDNESDAY
    )
    assert decision.allowed is allowed
    assert [b.reason for b in decision.blocks] == (
        [] if allowed else ["Orders must total at least 20."]
    )


def test_all_templates_together_and_the_checker_finds_no_conflict() -> None:
    rules = [template(name) for name in NAMES]
    engine = RulesEngine(rules)
    decision = engine.evaluate("pricing", {"total": 620, "user": {"orderCount": 0}}, at=SATURDAY)
    assert decision.matched_ids() == [
        "bulk-order-discount",
        "first-order-discount",
        "weekend-special",
    ]
    assert decision.applied_ids() == ["bulk-order-discount"]  # best: 15% wins
    assert check_rules(rules, at=SATURDAY, policies={"pricing": "first"}).findings == ()
