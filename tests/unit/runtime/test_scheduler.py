"""Schedule periods, tick ids, catch-up and the engine's routing of addressed ticks."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from eventrules.errors import DefinitionError
from eventrules.models.events import Event
from eventrules.models.workflows import parse_workflow
from eventrules.runtime.scheduler import (
    BUILTIN_SCHEDULES,
    Schedule,
    due_ticks,
    period_start,
    schedules_for,
    tick_id,
)
from eventrules.workflows.engine import Engine

BERLIN = ZoneInfo("Europe/Berlin")
WEEKLY_9 = Schedule("workflow:report", "0 9 * * MON", "scheduled.weekly", "report")


def _workflow(**extra: object) -> dict[str, object]:
    return {
        "id": "report",
        "name": "Report",
        "trigger": "scheduled.weekly",
        "created_by": "t",
        "actions": [{"type": "send_email", "to": "a@b.c", "subject": "s", "template": "t"}],
        **extra,
    }


def test_period_start_is_the_latest_fire_time_in_the_timezone() -> None:
    # Monday 2026-01-12 08:30 UTC is 09:30 in Berlin: this week's 09:00 Monday period began.
    now = datetime(2026, 1, 12, 8, 30, tzinfo=UTC)
    assert period_start(WEEKLY_9.cron, now, BERLIN) == datetime(2026, 1, 12, 9, 0, tzinfo=BERLIN)
    # 07:30 UTC is 08:30 in Berlin: still last week's period.
    earlier = datetime(2026, 1, 12, 7, 30, tzinfo=UTC)
    assert period_start(WEEKLY_9.cron, earlier, BERLIN) == datetime(2026, 1, 5, 9, 0, tzinfo=BERLIN)


def test_a_fire_time_equal_to_now_starts_the_new_period() -> None:
    now = datetime(2026, 1, 12, 0, 0, tzinfo=UTC)
    assert period_start("0 0 * * *", now, UTC) == now


def test_unknown_schedule_gets_a_baseline_without_a_tick() -> None:
    now = datetime(2026, 1, 12, 10, 0, tzinfo=UTC)
    ticks = due_ticks([WEEKLY_9], {}, now, UTC)
    assert [(t.emit, t.period_start) for t in ticks] == [
        (False, datetime(2026, 1, 12, 9, 0, tzinfo=UTC))
    ]


def test_after_downtime_only_the_most_recent_missed_period_is_caught_up() -> None:
    now = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
    three_weeks_ago = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
    (tick,) = due_ticks([WEEKLY_9], {WEEKLY_9.key: three_weeks_ago}, now, UTC)
    assert tick.emit
    assert tick.period_start == datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
    assert tick.id == "tick:workflow:report:2026-02-02T09:00:00+00:00"
    # Once the state holds that period, nothing more is due until the next one.
    assert due_ticks([WEEKLY_9], {WEEKLY_9.key: tick.period_start}, now, UTC) == []


def test_tick_event_addresses_its_workflow() -> None:
    now = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
    (tick,) = due_ticks([WEEKLY_9], {WEEKLY_9.key: datetime(2026, 1, 1, tzinfo=UTC)}, now, UTC)
    event = tick.event("eventrules/scheduler/app")
    assert event.id == tick_id(WEEKLY_9.key, tick.period_start)
    assert event.type == "scheduled.weekly"
    assert event.data["workflow_id"] == "report"
    assert event.time == tick.period_start


def test_schedules_are_the_builtins_plus_enabled_scheduled_workflows() -> None:
    scheduled = parse_workflow(_workflow(schedule="0 9 * * MON"))
    disabled = parse_workflow(_workflow(id="off", schedule="0 9 * * MON", enabled=False))
    plain = parse_workflow(_workflow(id="plain"))
    keys = [s.key for s in schedules_for([plain, disabled, scheduled])]
    assert keys == [*(s.key for s in BUILTIN_SCHEDULES), "workflow:report"]


@pytest.mark.parametrize("cron", ["0 9 * * FUNDAY", "61 * * * *", "every monday", "* * *"])
def test_a_bad_cron_is_a_definition_error_naming_schedule(cron: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_workflow(_workflow(schedule=cron))
    assert [path for path, _ in caught.value.problems] == ["schedule"]


def test_a_schedule_needs_a_scheduled_trigger() -> None:
    with pytest.raises(DefinitionError, match="scheduled"):
        parse_workflow(_workflow(schedule="0 9 * * MON", trigger="order.created"))


def _tick(data: dict[str, object]) -> Event:
    return Event(id="t", type="scheduled.weekly", time=datetime(2026, 1, 12, tzinfo=UTC), data=data)


def test_addressed_ticks_run_only_their_workflow_and_plain_ticks_only_plain_workflows() -> None:
    engine = Engine()
    engine.upsert(parse_workflow(_workflow(schedule="0 9 * * MON")))
    engine.upsert(parse_workflow(_workflow(id="plain")))
    engine.upsert(parse_workflow(_workflow(id="other", schedule="0 8 * * *")))
    assert [c.workflow.id for c in engine.match(_tick({"workflow_id": "report"}))] == ["report"]
    assert [c.workflow.id for c in engine.match(_tick({}))] == ["plain"]
