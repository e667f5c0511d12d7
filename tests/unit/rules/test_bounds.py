"""A decision never raises anything but RuleEvaluationError, whatever the facts or the time."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventrules import DefinitionError, RuleEvaluationError, RulesEngine
from eventrules.rules import MAX_MONEY

from .helpers import AT, rule


def engine() -> RulesEngine:
    return RulesEngine(
        [
            rule("pct", actions=[{"type": "percentage_discount", "percent": 33.333333333}]),
            rule("fixed", actions=[{"type": "fixed_discount", "amount": 10**15}]),
            rule("weekend", conditions="dayOfWeek in [0, 6]"),
        ],
        policies={"pricing": "stack"},
    )


@pytest.mark.parametrize(
    "total", [1e308, 10**400, 1e16, Decimal("1E+999999"), float(MAX_MONEY) * 1.0001]
)
def test_a_price_out_of_range_is_a_rule_evaluation_error(total: Any) -> None:
    with pytest.raises(RuleEvaluationError) as caught:
        engine().evaluate("pricing", {"total": total}, at=AT)
    assert caught.value.field == "total"
    assert "out of range" in str(caught.value)


def test_the_largest_price_still_decides() -> None:
    decision = engine().evaluate("pricing", {"total": float(MAX_MONEY)}, at=AT)
    assert decision.price is not None
    assert decision.price.final >= 0
    tiny = engine().evaluate("pricing", {"total": 5e-324}, at=AT)
    assert tiny.price is not None
    assert tiny.price.original == Decimal("0.00")


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_an_evaluation_time_at_the_edge_of_the_calendar_is_refused(moment: str) -> None:
    with pytest.raises(RuleEvaluationError) as caught:
        engine().evaluate("pricing", {"total": 10}, at=datetime.fromisoformat(moment))
    assert caught.value.field == "at"
    assert "out of range" in str(caught.value)


def test_amounts_and_places_are_bounded_in_the_definition() -> None:
    with pytest.raises(DefinitionError, match=r"actions\.0\.amount"):
        rule("huge", actions=[{"type": "fixed_discount", "amount": "1e300"}])
    with pytest.raises(ValueError, match="money_places"):
        RulesEngine(money_places=40)


HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    total=HOSTILE,
    day=HOSTILE,
    moment=st.one_of(
        st.datetimes(timezones=st.timezones()),
        st.sampled_from(
            [
                datetime.fromisoformat("9999-12-31T23:59:59-14:00"),
                datetime.fromisoformat("0001-01-01T00:00:00+14:00"),
            ]
        ),
    ),
    policy=st.sampled_from(["best", "stack", "first"]),
)
def test_any_facts_and_time_decide_or_raise_a_rule_evaluation_error(
    total: Any, day: Any, moment: datetime, policy: str
) -> None:
    try:
        decision = engine().evaluate(
            "pricing", {"total": total, "dayOfWeek": day}, at=moment, policy=policy
        )
    except RuleEvaluationError:
        return
    assert decision.to_dict()["outcome"]["price"] is not None


def test_validity_windows_at_the_edge_of_the_calendar_still_decide() -> None:
    rules = RulesEngine(
        [
            rule("late", valid_from="9999-12-31T23:59:59-14:00"),
            rule("early", valid_until="0001-01-01T00:00:00+14:00"),
        ]
    )
    decision = rules.evaluate("pricing", {"total": 10}, at=AT)
    assert sorted(miss.rule_id for miss in decision.outside_window) == ["early", "late"]
