"""The trace answers "why didn't my workflow fire?" with operands, operators and outcomes."""

from __future__ import annotations

import pytest
from tests.unit.conftest import event, workflow

from eventrules import Engine
from eventrules.conditions import MISSING
from eventrules.errors import NotFoundError


def test_trace_of_a_firing_workflow(engine: Engine) -> None:
    engine.upsert(workflow(conditions="total >= 500 and country == 'DE'"))
    trace = engine.trace("wf", event({"total": 750, "country": "DE"}))
    assert trace.fired is True
    assert trace.reasons == ("conditions matched",)
    assert trace.condition is not None
    first, second = trace.condition.children
    assert (first.field, first.operator, first.expected, first.actual) == ("total", "gte", 500, 750)
    assert first.outcome is True
    assert (second.field, second.actual, second.outcome) == ("country", "DE", True)


def test_trace_names_each_failing_condition_with_the_value_seen(engine: Engine) -> None:
    engine.upsert(workflow(conditions="total >= 500 and country == 'DE' and email exists"))
    trace = engine.trace("wf", event({"total": "900", "country": "FR", "email": "a@b"}))
    assert trace.fired is False
    assert trace.reasons == (
        "condition 'total >= 500' failed: type mismatch: string value, operator gte needs "
        "numbers with numbers, strings with strings (lexicographic)",
        'condition \'country == "DE"\' failed: country = "FR", so \'country == "DE"\' is false',
    )
    assert trace.condition is not None
    assert [child.outcome for child in trace.condition.children] == [False, False, True]


def test_trace_reports_missing_fields(engine: Engine) -> None:
    engine.upsert(workflow(conditions="user.orderCount == 0"))
    trace = engine.trace("wf", event({"user": {}}))
    assert trace.condition is not None
    assert trace.condition.actual is MISSING
    assert trace.condition.to_dict()["missing"] is True
    assert "field is missing" in trace.reasons[0]


def test_trace_covers_disabled_and_wrong_trigger(engine: Engine) -> None:
    engine.upsert(workflow(enabled=False, trigger="user.registered"))
    trace = engine.trace("wf", event())
    assert trace.fired is False
    assert trace.enabled is False
    assert trace.trigger_matched is False
    assert trace.reasons == (
        "the workflow is disabled",
        "its trigger is user.registered, the event is order.created",
    )
    assert trace.condition is None


def test_trace_without_conditions_always_fires(engine: Engine) -> None:
    engine.upsert(workflow())
    trace = engine.trace("wf", event())
    assert trace.fired is True
    assert trace.reasons == ("no conditions: always fires",)


def test_trace_agrees_with_the_plan(engine: Engine) -> None:
    engine.upsert(workflow(id="a", conditions="total > 1"))
    engine.upsert(workflow(id="b", conditions="total > 5"))
    subject = event({"total": 3})
    fired = [wid for wid in ("a", "b") if engine.trace(wid, subject).fired]
    assert fired == engine.plan(subject).workflow_ids() == ["a"]


def test_trace_to_dict_is_json_ready(engine: Engine) -> None:
    import json

    engine.upsert(workflow(conditions="created within_last '1d'"))
    trace = engine.trace("wf", event({"created": "2026-01-10T10:00:00Z"}))
    data = json.loads(json.dumps(trace.to_dict()))
    assert data["fired"] is True
    assert data["condition"]["operator"] == "within_last"
    assert "eventTime" in data["condition"]["reason"]


def test_trace_of_unknown_workflow_raises_not_found(engine: Engine) -> None:
    with pytest.raises(NotFoundError, match="no workflow 'nope'"):
        engine.trace("nope", event())
