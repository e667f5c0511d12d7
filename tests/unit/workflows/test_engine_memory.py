"""The engine's part in workflows with memory: rendered gates and watches, answers, traces."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from eventrules.errors import DefinitionError
from eventrules.models.events import Event
from eventrules.models.workflows import parse_workflow
from eventrules.workflows.engine import Engine
from eventrules.workflows.memory import AbsenceWatch, Gate

ABSENCE = {
    "after": "order.created",
    "expect": "payment.received",
    "match_on": "order.id",
    "within": "1h",
}


def _engine(*definitions: dict[str, Any]) -> Engine:
    engine = Engine()
    for definition in definitions:
        engine.upsert(parse_workflow({"name": "n", "created_by": "t", **definition}))
    return engine


def _event(type_: str, data: dict[str, Any]) -> Event:
    return Event(id="e1", type=type_, time=datetime(2026, 11, 2, tzinfo=UTC), data=data)


def test_a_plan_carries_rendered_gates_and_delays() -> None:
    engine = _engine(
        {
            "id": "low",
            "trigger": "product.low_stock",
            "throttle": {"key": "{{ productId }}", "per": "6h"},
            "dedupe": {"key": "{{ productId }}-{{ stock }}", "within": "1h"},
            "actions": [{"type": "create_task", "title": "t", "delay": "30m"}],
        }
    )
    (planned,) = engine.plan(_event("product.low_stock", {"productId": "p7", "stock": 3})).workflows
    assert planned.stateful
    assert planned.gates == (Gate("dedupe", "p7-3", 1, 3600.0), Gate("throttle", "p7", 1, 21600.0))
    assert planned.actions[0].delay == 1800.0
    assert "delay" not in planned.actions[0].params


def test_an_absence_workflow_is_planned_with_its_watch_and_answered_by_the_expected_type() -> None:
    engine = _engine(
        {"id": "unpaid", "absence": ABSENCE, "actions": [{"type": "create_task", "title": "t"}]}
    )
    (planned,) = engine.plan(_event("order.created", {"order": {"id": 42}})).workflows
    assert planned.absence == AbsenceWatch("payment.received", "order.id", "42", 3600.0)
    payment = engine.plan(_event("payment.received", {"order": {"id": 42}}))
    assert payment.workflows == ()
    assert [(a.workflow_id, a.watch.match) for a in payment.answers] == [("unpaid", "42")]
    # nothing to watch for without the match_on value; nothing answered either
    assert engine.plan(_event("order.created", {})).workflows == ()
    assert engine.plan(_event("payment.received", {"order": {}})).answers == ()


def test_a_disabled_or_removed_absence_workflow_is_answered_no_more() -> None:
    definition = {
        "id": "unpaid",
        "absence": ABSENCE,
        "actions": [{"type": "create_task", "title": "t"}],
    }
    engine = _engine(definition)
    engine.upsert(
        parse_workflow(
            {"name": "n", "created_by": "t", **definition, "version": 2, "enabled": False}
        )
    )
    assert engine.plan(_event("payment.received", {"order": {"id": 1}})).answers == ()
    engine.remove("unpaid")
    assert engine.answers(_event("payment.received", {"order": {"id": 1}})) == ()


def test_an_unknown_expected_trigger_is_refused() -> None:
    with pytest.raises(DefinitionError) as caught:
        _engine(
            {
                "id": "x",
                "absence": ABSENCE | {"expect": "payment.recieved"},
                "actions": [{"type": "create_task", "title": "t"}],
            }
        )
    assert caught.value.problems[0][0] == "absence.expect"


def test_the_trace_says_what_state_decides() -> None:
    engine = _engine(
        {
            "id": "low",
            "trigger": "product.low_stock",
            "throttle": {"key": "{{ productId }}", "limit": 2, "per": "6h"},
            "actions": [{"type": "create_task", "title": "t", "delay": "1d"}],
        },
        {"id": "unpaid", "absence": ABSENCE, "actions": [{"type": "create_task", "title": "t"}]},
    )
    low = engine.trace("low", _event("product.low_stock", {}))
    assert low.fired
    assert low.memory == (
        "throttle key '': at most 2 run(s) per 6h; the first such run passes",
        "state key variables missing (the empty key is shared): ['productId']",
        "action 0 (create_task) runs 1d after the event",
    )
    unpaid = engine.trace("unpaid", _event("order.created", {"order": {"id": "o1"}}))
    assert unpaid.memory == (
        "absence: waits 1h for payment.received with order.id == 'o1'; runs with this event if"
        " none comes",
    )
    assert unpaid.to_dict()["memory"] == list(unpaid.memory)
    blind = engine.trace("unpaid", _event("order.created", {}))
    assert not blind.fired
    assert "the event has no order.id to watch for" in blind.reasons


def test_an_overlong_state_key_is_stored_as_its_digest() -> None:
    engine = _engine(
        {
            "id": "d",
            "trigger": "order.created",
            "dedupe": {"key": "{{ note }}", "within": "1h"},
            "actions": [{"type": "create_task", "title": "t"}],
        }
    )
    (planned,) = engine.plan(_event("order.created", {"note": "x" * 10_000})).workflows
    assert planned.gates[0].key.startswith("sha256:")
    assert len(planned.gates[0].key) == 71
