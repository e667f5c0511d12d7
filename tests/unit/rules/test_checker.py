"""Every kind of finding the checker claims, what it must not claim, and its domains."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from eventrules import check_rules
from eventrules.conditions import Compare
from eventrules.rules import CheckReport, Rule, RulesEngine
from eventrules.rules.intervals import Bound, Domain, domain_of

from .helpers import rule

AT = datetime(2026, 6, 1, tzinfo=UTC)


def routing(rule_id: str, conditions: Any, priority: int = 5, **fields: Any) -> Rule:
    return rule(
        rule_id,
        rule_type="routing",
        conditions=conditions,
        priority=priority,
        actions=[{"type": "route", "destination": rule_id}],
        **fields,
    )


def kinds(report: CheckReport) -> list[tuple[str, tuple[str, ...]]]:
    return [(finding.kind, finding.rule_ids) for finding in report.findings]


@pytest.mark.parametrize(
    "conditions",
    [
        "x < 5 and x > 10",
        "x >= 5 and x < 5",
        "x == 3 and x in [1, 2]",
        "x > 5 and x == 'a'",  # ordering needs a number; "a" is a string
        "x between [1, 3] and x not in [1, 2, 3] and x == 2",
        "x == 1 and x == true",  # 1 is not true in this language
        "s < '' ",
        "x > 5 and (y == 1 or z == 2) and x < 2",  # an unanalysed member does not hide it
    ],
)
def test_conditions_that_can_never_hold(conditions: str) -> None:
    report = check_rules([rule("r", conditions=conditions)], at=AT)
    assert kinds(report) == [("never_holds", ("r",))]
    assert "can never hold" in report.findings[0].message
    # the claim is true: the engine never matches it on the values the message names
    engine = RulesEngine([rule("r", conditions=conditions)])
    for value in (-1, 0, 1, 2, 3, 5, 7, 11, "a", "", True):
        assert not engine.evaluate("pricing", {"total": 1, "x": value, "s": value}, at=AT).matched


@pytest.mark.parametrize(
    "conditions",
    ["x > 5 and x < 6", "x == 1 and x == 1.0", "x != 3 and x in [3, 4]", "s > 'a' and s < 'b'"],
)
def test_satisfiable_conditions_are_not_flagged(conditions: str) -> None:
    assert check_rules([rule("r", conditions=conditions)], at=AT).findings == ()


def test_expired_windows() -> None:
    rules = [
        rule("old", valid_until="2026-05-31T23:59:59Z"),
        rule("edge", valid_until="2026-06-01T00:00:00Z", priority=6),
        rule("current", valid_until="2026-06-01T00:00:01Z", priority=7),
    ]
    assert kinds(check_rules(rules, at=AT)) == [("expired", ("edge",)), ("expired", ("old",))]


def test_overlap_at_equal_priority_comes_with_a_witness() -> None:
    rules = [
        rule("a", conditions="total >= 100 and country == 'DE'"),
        rule("b", conditions="total < 300 and tier in ['gold', 'silver']"),
    ]
    report = check_rules(rules, at=AT)
    assert kinds(report) == [("overlap", ("a", "b"))]
    witness = report.findings[0].witness
    assert witness is not None
    decision = RulesEngine(rules).evaluate("pricing", witness, at=AT, policy="stack")
    assert decision.matched_ids() == ["a", "b"]  # the witness really matches both


def test_nested_paths_get_a_nested_witness() -> None:
    rules = [rule("a", conditions="user.orderCount == 0"), rule("b", conditions="user.vip == true")]
    report = check_rules(rules, at=AT)
    assert report.findings[0].witness == {"user": {"orderCount": 0, "vip": True}}


@pytest.mark.parametrize(
    ("first", "second", "second_fields"),
    [
        ("total >= 100", "total < 100", {}),  # disjoint conditions
        ("country == 'DE'", "country in ['FR', 'NL']", {}),
        ("total >= 100", "total >= 100", {"priority": 6}),  # different priority
        ("total >= 100", "total >= 100", {"enabled": False}),
        (
            "total >= 100",
            "total >= 100",
            {"rule_type": "validation", "actions": [{"type": "block", "reason": "x"}]},
        ),
    ],
)
def test_no_overlap_claimed(first: str, second: str, second_fields: dict[str, Any]) -> None:
    rules = [rule("a", conditions=first), rule("b", conditions=second, **second_fields)]
    assert check_rules(rules, at=AT).findings == ()


def test_windows_that_never_meet_do_not_overlap() -> None:
    rules = [
        rule("jan", valid_from="2026-07-01T00:00:00Z", valid_until="2026-08-01T00:00:00Z"),
        rule("feb", valid_from="2026-08-01T00:00:00Z", valid_until="2026-09-01T00:00:00Z"),
    ]
    assert check_rules(rules, at=AT).findings == ()


def test_overlap_it_cannot_decide_is_unknown() -> None:
    rules = [
        rule("a", conditions={"field": "email", "operator": "matches", "value": "@example[.]com$"}),
        rule("b", conditions="email contains 'example'"),
    ]
    report = check_rules(rules, at=AT)
    assert kinds(report) == [("unknown", ("a", "b"))]
    assert report.conflicts == ()


def test_routing_shadowing_by_a_weaker_higher_priority_rule() -> None:
    rules = [
        routing("broad", "total >= 100", priority=9),
        routing("narrow", "total >= 500 and country == 'DE'", priority=5),
        routing("elsewhere", "total < 100", priority=1),
    ]
    report = check_rules(rules, at=AT)
    assert kinds(report) == [("shadowed", ("narrow", "broad"))]
    # the claim holds: the engine never routes to narrow
    for total in (100, 500, 10_000):
        decision = RulesEngine(rules).evaluate("routing", {"total": total, "country": "DE"}, at=AT)
        assert decision.destination == "broad"


def test_shadowing_needs_the_earlier_window_to_cover_the_later() -> None:
    rules = [
        routing("broad", "total >= 100", priority=9, valid_until="2026-07-01T00:00:00Z"),
        routing("narrow", "total >= 500", priority=5),
    ]
    assert check_rules(rules, at=AT).findings == ()


def test_pricing_shadowing_only_under_first_hit() -> None:
    rules = [
        rule("broad", conditions="total > 0", priority=9),
        rule("narrow", conditions="total > 50"),
    ]
    assert check_rules(rules, at=AT).findings == ()  # best: both compete
    first = check_rules(rules, at=AT, policies={"pricing": "first"})
    assert kinds(first) == [("shadowed", ("narrow", "broad"))]


def test_unconditional_rule_shadows_everything_below() -> None:
    rules = [routing("all", None, priority=9), routing("some", "x == 1", priority=1)]
    assert kinds(check_rules(rules, at=AT)) == [("shadowed", ("some", "all"))]


def test_identical_unanalysed_members_still_prove_shadowing() -> None:
    rules = [
        routing("a", "tags contains 'vip'", priority=9),
        routing("b", "tags contains 'vip' and total > 5", priority=1),
        routing("c", "tags contains 'gold' and total > 5", priority=2),
    ]
    report = check_rules(rules, at=AT)
    assert ("shadowed", ("b", "a")) in kinds(report)
    assert ("unknown", ("c", "a")) in kinds(report)  # 'gold' does not say anything about 'vip'


def test_equal_priority_shadowing_names_the_id_order() -> None:
    rules = [routing("a", "x >= 1"), routing("b", "x >= 2")]
    report = check_rules(rules, at=AT)
    assert ("shadowed", ("b", "a")) in kinds(report)
    assert ("overlap", ("a", "b")) in kinds(report)
    assert any("'a' sorts first" in finding.message for finding in report.findings)


def test_bad_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="policy 'best'"):
        check_rules([], at=AT, policies={"routing": "best"})


def test_report_json() -> None:
    report = check_rules([rule("r", conditions="x < 1 and x > 2")], at=AT)
    data = report.to_dict()
    assert data["rules_checked"] == 1
    assert data["findings"][0]["kind"] == "never_holds"
    assert data["policies"]["pricing"] == "best"


def domain(text: str) -> Domain:
    from eventrules.conditions import parse_condition

    node = parse_condition(text)
    assert isinstance(node, Compare)
    result = domain_of(node)
    assert result is not None
    return result


def test_domain_containment() -> None:
    assert domain("x > 5").within(domain("x >= 5"))
    assert not domain("x >= 5").within(domain("x > 5"))
    assert domain("x in [1, 2]").within(domain("x < 3"))
    assert not domain("x in [1, 'a']").within(domain("x < 3"))
    assert domain("x > 5").within(domain("x != 3"))
    assert not domain("x > 2").within(domain("x != 3"))
    assert not domain("x != 3").within(domain("x > 5"))
    assert not domain("x > 5").within(domain("x in [6, 7]"))  # infinite in finite: not proven
    assert domain("x between [2, 3]").intersect(domain("x > 3")).satisfiable() is False
    assert domain("x between [2, 3]").intersect(domain("x >= 3")).witness() == ("number", 3)


def test_string_gaps_are_unknown_not_guessed() -> None:
    gap = Domain(kind="string", low=Bound("a", False), high=Bound("a\x00", False))
    assert gap.satisfiable() is None  # truly empty, but the checker only claims what it proves
    assert domain("s > 'a'").intersect(domain("s < 'b'")).satisfiable() is True


def test_unanalysable_comparisons_have_no_domain() -> None:
    assert domain_of(Compare("x", "eq", [1, 2])) is None
    assert domain_of(Compare("x", "contains", "a")) is None
