"""The memory blocks of a workflow: durations, throttle, dedupe, absence, action delay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventrules.errors import DefinitionError
from eventrules.models.memory import format_duration, parse_duration
from eventrules.models.workflows import parse_workflow


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("6h", 21600),
        ("24h", 86400),
        ("30m", 1800),
        ("1h30m", 5400),
        ("2d", 172800),
        ("45s", 45),
        ("500ms", 0.5),
        ("1w", 604800),
        (90, 90),
        (" 15M ", 900),
    ],
)
def test_durations_read_the_way_people_write_them(text: Any, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "6", "h", "6 hours", "-1h", "0s", "1y", "400d", True, None])
def test_bad_durations_are_refused_with_the_value(text: Any) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@given(st.integers(min_value=1, max_value=366 * 86400))
def test_a_formatted_duration_reads_back(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


def _workflow(**fields: Any) -> dict[str, Any]:
    return {
        "id": "w",
        "name": "w",
        "created_by": "t",
        "trigger": "product.low_stock",
        "actions": [{"type": "create_task", "title": "t"}],
        **fields,
    }


def _problems(raw: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(DefinitionError) as caught:
        parse_workflow(raw)
    return caught.value.problems


def test_throttle_and_dedupe_are_validated_and_round_trip() -> None:
    workflow = parse_workflow(
        _workflow(
            throttle={"key": "{{ productId }}", "limit": 2, "per": "6h"},
            dedupe={"key": "{{ eventId }}", "within": "24h"},
        )
    )
    assert workflow.throttle is not None
    assert workflow.throttle.per == timedelta(hours=6)
    dumped = workflow.model_dump(mode="json", exclude_none=True)
    assert dumped["throttle"] == {"key": "{{ productId }}", "limit": 2, "per": "6h"}
    assert dumped["dedupe"] == {"key": "{{ eventId }}", "within": "1d"}
    assert parse_workflow(dumped) == workflow


def test_bad_memory_blocks_name_their_fields() -> None:
    problems = _problems(_workflow(throttle={"key": "", "limit": 0, "per": "soon"}))
    assert {path for path, _ in problems} == {"throttle.key", "throttle.limit", "throttle.per"}
    assert _problems(_workflow(dedupe={"key": "k"}))[0][0] == "dedupe.within"


def test_an_action_delay_is_a_duration() -> None:
    workflow = parse_workflow(
        _workflow(actions=[{"type": "create_task", "title": "t", "delay": "24h"}])
    )
    assert workflow.actions[0].delay == timedelta(hours=24)
    problems = _problems(_workflow(actions=[{"type": "create_task", "title": "t", "delay": "x"}]))
    assert problems[0][0] == "actions.0.delay"


ABSENCE = {
    "after": "order.created",
    "expect": "payment.received",
    "match_on": "orderId",
    "within": "1h",
}


def test_an_absence_workflow_takes_its_trigger_from_after() -> None:
    raw = _workflow(absence=ABSENCE)
    del raw["trigger"]
    workflow = parse_workflow(raw)
    assert workflow.trigger == "order.created"
    assert workflow.absence is not None
    assert workflow.absence.within == timedelta(hours=1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"trigger": "order.updated"}, "must be the workflow's trigger"),
        ({"absence": ABSENCE | {"expect": "order.created"}}, "another event type"),
        ({"absence": ABSENCE | {"match_on": "order id"}}, "dotted path"),
        (
            {"absence": ABSENCE | {"after": "scheduled.daily"}, "trigger": "scheduled.daily"},
            "cannot be scheduled",
        ),
    ],
)
def test_inconsistent_absence_workflows_are_refused(change: dict[str, Any], message: str) -> None:
    raw = _workflow(absence=ABSENCE, trigger="order.created") | change
    problems = _problems(raw)
    assert any(message in reason for _, reason in problems), problems
