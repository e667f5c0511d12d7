"""Validity windows against the evaluation time, and the time facts conditions see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from eventrules import RuleEvaluationError, RulesEngine

from .helpers import rule

BERLIN = ZoneInfo("Europe/Berlin")
WINDOWED = rule(
    "promo",
    valid_from="2026-03-01T00:00:00+01:00",  # 2026-02-28T23:00Z
    valid_until="2026-04-01T00:00:00+02:00",  # 2026-03-31T22:00Z
)


@pytest.mark.parametrize(
    ("at", "applies", "reason"),
    [
        (datetime(2026, 2, 28, 22, 59, 59, tzinfo=UTC), False, "not valid before"),
        (datetime(2026, 2, 28, 23, 0, tzinfo=UTC), True, None),  # valid_from is inclusive
        (datetime(2026, 3, 1, 0, 30, tzinfo=BERLIN), True, None),
        (datetime(2026, 3, 31, 21, 59, 59, tzinfo=UTC), True, None),
        (datetime(2026, 3, 31, 22, 0, tzinfo=UTC), False, "expired at"),  # exclusive
        (datetime(2026, 4, 1, 0, 0, tzinfo=timezone(timedelta(hours=2))), False, "expired at"),
    ],
)
def test_windows_before_inside_after(at: datetime, applies: bool, reason: str | None) -> None:
    decision = RulesEngine([WINDOWED]).evaluate("pricing", {"total": 100}, at=at)
    assert (decision.applied_ids() == ["promo"]) is applies
    if reason is None:
        assert decision.outside_window == ()
    else:
        (miss,) = decision.outside_window
        assert (miss.rule_id, miss.version) == ("promo", 1)
        assert miss.reason.startswith(reason)
        assert decision.to_dict()["outside_window"][0]["reason"] == miss.reason


def test_outside_window_lists_only_rules_of_the_type() -> None:
    other = rule(
        "v",
        rule_type="validation",
        valid_until="2020-01-01T00:00:00Z",
        actions=[{"type": "block", "reason": "x"}],
    )
    engine = RulesEngine([WINDOWED, other])
    at = datetime(2027, 1, 1, tzinfo=UTC)
    assert [m.rule_id for m in engine.evaluate("pricing", {"total": 1}, at=at).outside_window] == [
        "promo"
    ]
    assert engine.evaluate("validation", {}, at=at).allowed


def test_naive_evaluation_time_is_refused() -> None:
    with pytest.raises(RuleEvaluationError) as caught:
        RulesEngine([WINDOWED]).evaluate("pricing", {"total": 1}, at=datetime(2026, 3, 5))
    assert caught.value.field == "at"


def test_time_facts_follow_the_engine_timezone() -> None:
    weekend = rule("weekend", conditions="dayOfWeek in [6, 0]")
    friday_night_utc = datetime(2026, 1, 9, 23, 30, tzinfo=UTC)  # Saturday 00:30 in Berlin
    in_utc = RulesEngine([weekend]).evaluate("pricing", {"total": 10}, at=friday_night_utc)
    in_berlin = RulesEngine([weekend], timezone=BERLIN).evaluate(
        "pricing", {"total": 10}, at=friday_night_utc
    )
    assert in_utc.matched == ()
    assert in_berlin.matched_ids() == ["weekend"]
    # a fact in the request wins over the derived one
    told = RulesEngine([weekend]).evaluate(
        "pricing", {"total": 10, "dayOfWeek": 0}, at=friday_night_utc
    )
    assert told.matched_ids() == ["weekend"]


def test_relative_time_operators_measure_against_the_evaluation_time() -> None:
    recent = rule(
        "recent", conditions={"field": "signed_up", "operator": "within_last", "value": "7d"}
    )
    at = datetime(2026, 1, 10, tzinfo=UTC)
    engine = RulesEngine([recent])
    assert engine.evaluate(
        "pricing", {"total": 1, "signed_up": "2026-01-05T00:00:00Z"}, at=at
    ).matched
    assert not engine.evaluate(
        "pricing", {"total": 1, "signed_up": "2025-12-01T00:00:00Z"}, at=at
    ).matched


def test_the_default_evaluation_time_is_now() -> None:
    before = datetime.now(UTC)
    decision = RulesEngine([WINDOWED]).evaluate("pricing", {"total": 1})
    assert before <= decision.evaluated_at <= datetime.now(UTC)
