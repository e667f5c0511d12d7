"""Decision policies per rule type, money rounding, the decision's JSON, and config handling."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventrules import RuleEvaluationError, RulesEngine
from eventrules.definitions.records import UpsertOutcome
from eventrules.rules import Rule, compile_rule

from .helpers import AT, rule

SCHEMAS = Path(__file__).resolve().parents[3] / "topics" / "schemas"


def pricing_rules() -> list[Rule]:
    return [
        rule("ten", priority=30, conditions="total >= 100"),
        rule(
            "fixed",
            priority=20,
            conditions="total >= 100",
            actions=[{"type": "fixed_discount", "amount": 25}, {"type": "add_tag", "tag": "f"}],
        ),
        rule(
            "twenty",
            priority=10,
            conditions="total >= 200",
            actions=[{"type": "percentage_discount", "percent": 20}],
        ),
    ]


def evaluate(rules: list[Rule], rule_type: str, facts: dict[str, Any], **options: Any) -> Any:
    return RulesEngine(rules).evaluate(rule_type, facts, at=AT, **options)


def test_pricing_best_takes_the_lowest_price() -> None:
    decision = evaluate(pricing_rules(), "pricing", {"total": 150})
    assert decision.policy == "best"
    assert decision.applied_ids() == ["fixed"]  # 25 off beats 10% of 150
    assert decision.matched_ids() == ["ten", "fixed"]
    assert decision.price.original == Decimal("150.00")
    assert decision.price.final == Decimal("125.00")
    assert decision.tags == ("f",)
    assert evaluate(pricing_rules(), "pricing", {"total": 300}).applied_ids() == ["twenty"]


def test_pricing_best_breaks_ties_by_priority() -> None:
    rules = [rule("low", priority=1), rule("high", priority=9)]
    assert evaluate(rules, "pricing", {"total": 50}).applied_ids() == ["high"]


def test_pricing_stack_applies_each_on_the_running_price() -> None:
    decision = evaluate(pricing_rules(), "pricing", {"total": 300}, policy="stack")
    steps = [(d.rule_id, d.amount, d.price_after) for d in decision.price.discounts]
    assert steps == [
        ("ten", Decimal("30.00"), Decimal("270.00")),
        ("fixed", Decimal("25.00"), Decimal("245.00")),
        ("twenty", Decimal("49.00"), Decimal("196.00")),
    ]
    assert decision.price.total_discount == Decimal("104.00")


def test_pricing_first_stops_at_the_highest_priority_match() -> None:
    decision = evaluate(pricing_rules(), "pricing", {"total": 300}, policy="first")
    assert decision.matched_ids() == ["ten"]
    assert decision.price.final == Decimal("270.00")


def test_no_match_keeps_the_price() -> None:
    decision = evaluate(pricing_rules(), "pricing", {"total": 99.99})
    assert decision.matched == ()
    assert decision.price.final == decision.price.original == Decimal("99.99")


def test_money_rounds_half_up_and_never_goes_negative() -> None:
    rules = [
        rule("pct", priority=2, actions=[{"type": "percentage_discount", "percent": 12.5}]),
        rule("big", priority=1, actions=[{"type": "fixed_discount", "amount": 1000}]),
    ]
    decision = evaluate(rules, "pricing", {"total": 0.1}, policy="stack")
    # 12.5% of 0.10 is 0.0125 -> 0.01; the fixed discount takes what is left, not more
    assert [d.amount for d in decision.price.discounts] == [Decimal("0.01"), Decimal("0.09")]
    assert decision.price.final == Decimal("0.00")
    whole = RulesEngine(rules[:1], money_places=0).evaluate("pricing", {"total": 1005}, at=AT)
    assert whole.price.final == Decimal("879")  # 125.625 -> 126 off


def test_price_field_is_configurable_per_request() -> None:
    decision = evaluate(
        [rule()], "pricing", {"order": {"subtotal": 80}}, price_field="order.subtotal"
    )
    assert decision.price.price_field == "order.subtotal"
    assert decision.price.final == Decimal("72.00")


@pytest.mark.parametrize("price", [None, "100", True, float("nan"), float("inf"), -5])
def test_pricing_needs_a_usable_price(price: object) -> None:
    with pytest.raises(RuleEvaluationError) as caught:
        evaluate([rule()], "pricing", {"total": price})
    assert caught.value.field == "total"


def test_validation_blocks_on_any_match_and_returns_every_reason() -> None:
    rules = [
        rule(
            "min",
            rule_type="validation",
            conditions="total < 20",
            priority=5,
            actions=[{"type": "block", "reason": "too small"}],
        ),
        rule(
            "country",
            rule_type="validation",
            conditions="country == 'XX'",
            priority=9,
            actions=[{"type": "block", "reason": "no shipping to XX"}],
        ),
        rule(
            "note",
            rule_type="validation",
            conditions="total < 20",
            priority=1,
            actions=[{"type": "add_tag", "tag": "small"}],
        ),
    ]
    blocked = evaluate(rules, "validation", {"total": 5, "country": "XX"})
    assert not blocked.allowed
    assert [b.reason for b in blocked.blocks] == ["no shipping to XX", "too small"]
    assert blocked.tags == ("small",)
    allowed = evaluate(rules, "validation", {"total": 50, "country": "DE"})
    assert allowed.allowed
    assert allowed.matched == ()
    with pytest.raises(RuleEvaluationError, match="policy 'first' does not apply"):
        evaluate(rules, "validation", {}, policy="first")


def routing_rules() -> list[Rule]:
    return [
        rule(
            "vip",
            rule_type="routing",
            priority=8,
            conditions="tier == 'gold'",
            actions=[{"type": "route", "destination": "vip-desk"}],
        ),
        rule(
            "eu",
            rule_type="routing",
            priority=5,
            conditions="country in ['DE', 'FR']",
            actions=[{"type": "route", "destination": "eu-warehouse"}],
        ),
    ]


def test_routing_takes_the_first_match_or_collects() -> None:
    facts = {"tier": "gold", "country": "DE"}
    first = evaluate(routing_rules(), "routing", facts)
    assert first.policy == "first"
    assert first.destination == "vip-desk"
    assert first.destinations == ("vip-desk",)
    both = evaluate(routing_rules(), "routing", facts, policy="collect")
    assert both.destinations == ("vip-desk", "eu-warehouse")
    assert evaluate(routing_rules(), "routing", {"country": "US"}).destination is None


def test_segments_collect_all_and_fields_keep_the_highest_priority() -> None:
    rules = [
        rule(
            "big",
            rule_type="user_segment",
            priority=9,
            conditions="spent > 1000",
            actions=[
                {"type": "add_to_segment", "segment": "big-spender"},
                {"type": "set_field", "field": "user.level", "value": "gold"},
            ],
        ),
        rule(
            "any",
            rule_type="user_segment",
            priority=1,
            conditions="spent >= 0",
            actions=[
                {"type": "add_to_segment", "segment": "customer"},
                {"type": "add_to_segment", "segment": "big-spender"},
                {"type": "set_field", "field": "user.level", "value": "basic"},
            ],
        ),
    ]
    decision = evaluate(rules, "user_segment", {"spent": 5000})
    assert decision.segments == ("big-spender", "customer")
    assert decision.fields == {"user.level": "gold"}
    assert [a.action.type for a in decision.actions] == [
        "add_to_segment",
        "set_field",
        "add_to_segment",
        "add_to_segment",
        "set_field",
    ]


def test_engine_policies_are_configurable() -> None:
    engine = RulesEngine(pricing_rules(), policies={"pricing": "stack"})
    assert engine.evaluate("pricing", {"total": 300}, at=AT).policy == "stack"
    with pytest.raises(RuleEvaluationError):
        RulesEngine(policies={"pricing": "collect"})


@pytest.mark.parametrize(
    ("rule_type", "facts", "field"),
    [("shipping", {}, "rule_type"), ("routing", [], "facts")],
)
def test_unusable_requests(rule_type: str, facts: Any, field: str) -> None:
    with pytest.raises(RuleEvaluationError) as caught:
        RulesEngine().evaluate(rule_type, facts, at=AT)
    assert caught.value.field == field


def test_disabled_rules_do_not_apply() -> None:
    decision = evaluate([rule(enabled=False)], "pricing", {"total": 10})
    assert decision.matched == ()


def test_decision_json_fits_the_rule_result_schema() -> None:
    decision = evaluate(pricing_rules(), "pricing", {"total": 300}, policy="stack")
    data = decision.to_dict()
    assert json.loads(json.dumps(data)) == data  # JSON-ready: no Decimal, no datetime
    assert data["outcome"]["price"]["final"] == "196.00"
    assert data["matched"][0] == {"rule_id": "ten", "version": 1, "priority": 30, "applied": True}
    assert data["actions"][1] == {
        "rule_id": "fixed",
        "version": 1,
        "type": "fixed_discount",
        "amount": 25,
    }
    schema = json.loads((SCHEMAS / "rule-result.schema.json").read_text())
    jsonschema.validate({"correlation_id": "c1", "decision": data}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"correlation_id": "c1", "decision": {"policy": "best"}}, schema)


def test_upsert_follows_versions() -> None:
    engine = RulesEngine()
    assert engine.upsert(rule(priority=5)) is UpsertOutcome.ADDED
    assert engine.upsert(rule(priority=5)) is UpsertOutcome.UNCHANGED
    assert (
        engine.upsert(
            rule(version=2, rule_type="validation", actions=[{"type": "block", "reason": "x"}])
        )
        is UpsertOutcome.REPLACED
    )
    assert engine.upsert(rule(version=1)) is UpsertOutcome.STALE
    # the replaced rule moved type: pricing no longer sees it
    assert evaluate(engine.rules(), "pricing", {"total": 10}).matched == ()
    assert engine.evaluate("validation", {}, at=AT).blocks[0].reason == "x"
    assert engine.remove("r")
    assert not engine.remove("r")


THRESHOLDS = st.integers(min_value=0, max_value=20)


@settings(max_examples=60, deadline=None)
@given(
    specs=st.lists(
        st.tuples(THRESHOLDS, st.sampled_from(["a", "b"]), st.integers(1, 5), st.booleans()),
        min_size=1,
        max_size=12,
    ),
    facts=st.fixed_dictionaries(
        {"total": THRESHOLDS, "tier": st.sampled_from(["a", "b", "c"]), "n": st.integers(0, 6)}
    ),
)
def test_the_index_matches_what_testing_each_rule_gives(
    specs: list[tuple[int, str, int, bool]], facts: dict[str, Any]
) -> None:
    rules = [
        rule(
            f"r{i}",
            priority=priority,
            conditions=(
                f"total >= {x} and tier == '{tier}'" if indexed else f"n < 3 or total > {x}"
            ),
        )
        for i, (x, tier, priority, indexed) in enumerate(specs)
    ]
    decision = RulesEngine(rules).evaluate("pricing", facts, at=AT, policy="stack")
    expected = [
        compiled.rule.id
        for compiled in sorted(map(compile_rule, rules), key=lambda c: c.order_key)
        if compiled.test is not None and compiled.test(facts)
    ]
    assert decision.matched_ids() == expected
