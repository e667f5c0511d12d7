"""The engine: plan order, the trigger index, upsert semantics and failure isolation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.conftest import event, workflow

from eventrules import DefinitionError, Engine, TriggerCatalog, UnknownTriggerError, UpsertOutcome
from eventrules.workflows.compiled import compile_workflow


def test_plan_orders_by_priority_descending_then_id(engine: Engine) -> None:
    for workflow_id, priority in [("b", 5), ("a", 5), ("low", 1), ("top", 10)]:
        engine.upsert(workflow(id=workflow_id, priority=priority))
    plan = engine.plan(event({"userId": "u1"}))
    assert plan.workflow_ids() == ["top", "a", "b", "low"]
    assert [planned.priority for planned in plan.workflows] == [10, 5, 5, 1]


def test_plan_renders_actions(engine: Engine) -> None:
    engine.upsert(workflow(conditions="total > 100"))
    plan = engine.plan(event({"total": 150, "userId": "u-9"}))
    (planned,) = plan.workflows
    assert planned.actions[0].params == {"user_id": "u-9", "tag": "t"}
    assert planned.actions[0].ok
    assert engine.plan(event({"total": 50})).workflows == ()


def test_only_enabled_workflows_of_the_event_trigger_run(engine: Engine) -> None:
    engine.upsert(workflow(id="on"))
    engine.upsert(workflow(id="off", enabled=False))
    engine.upsert(workflow(id="other", trigger="user.registered"))
    assert engine.plan(event()).workflow_ids() == ["on"]
    assert engine.plan(event(type="user.registered")).workflow_ids() == ["other"]
    assert engine.plan(event(type="payment.failed")).workflow_ids() == []


def test_failing_template_marks_one_action_and_keeps_the_rest(engine: Engine) -> None:
    engine.upsert(
        workflow(
            actions=[
                {"type": "add_tag", "user_id": "{{ 1 / 0 }}", "tag": "x"},
                {"type": "add_tag", "user_id": "{{ userId }}", "tag": "y"},
            ]
        )
    )
    (planned,) = engine.plan(event({"userId": "u1"})).workflows
    failed, ok = planned.actions
    assert not failed.ok
    assert "ZeroDivisionError" in (failed.error or "")
    assert failed.to_dict()["status"] == "failed"
    assert ok.ok
    assert ok.params["user_id"] == "u1"


def test_missing_template_variables_are_reported_in_the_plan(engine: Engine) -> None:
    engine.upsert(workflow())
    (planned,) = engine.plan(event({})).workflows
    assert planned.actions[0].missing == ("userId",)
    assert planned.actions[0].params["user_id"] == ""


def test_templates_see_the_envelope_as_event_and_data_keys_win_over_it(engine: Engine) -> None:
    actions = [
        {"type": "add_tag", "user_id": "{{ event }}", "tag": "{{ userId }}"},
        {"type": "add_tag", "user_id": "{{ event.id }} {{ event.time }}", "tag": "t"},
    ]
    engine.upsert(workflow(id="reads-event", actions=actions))
    engine.upsert(workflow(id="data-only", actions=[actions[0] | {"user_id": "{{ userId }}"}]))
    plan = engine.plan(event({"userId": "u1"}, id="evt-7"))
    by_id = {planned.workflow_id: planned for planned in plan.workflows}
    plain, jinja = by_id["reads-event"].actions
    assert plain.params["user_id"].startswith("{'id': 'evt-7', 'type': 'order.created'")
    assert jinja.params["user_id"] == "evt-7 2026-01-10T14:30:00+00:00"
    assert by_id["data-only"].actions[0].params == {"user_id": "u1", "tag": "u1"}
    # a data key named event is what templates see, whether or not others read the envelope
    plan = engine.plan(event({"event": "from data", "userId": "u2"}))
    by_id = {planned.workflow_id: planned for planned in plan.workflows}
    assert by_id["reads-event"].actions[0].params == {"user_id": "from data", "tag": "u2"}
    assert by_id["data-only"].actions[0].params == {"user_id": "u2", "tag": "u2"}


def test_only_workflows_whose_templates_name_event_need_the_envelope(
    catalog: TriggerCatalog,
) -> None:
    def compiled(user_id: str) -> bool:
        action = {"type": "add_tag", "user_id": user_id, "tag": "{{ userId }}"}
        return compile_workflow(workflow(actions=[action]), catalog).reads_event

    assert not compiled("{{ userId }}")
    assert not compiled("fixed")
    assert not compiled("{{ events }}")
    assert compiled("{{ event }}")
    assert compiled("{{ event.id }}")  # jinja: any jinja template may read it
    assert compiled("{{ userId | upper }}")


def test_upsert_outcomes(engine: Engine) -> None:
    assert engine.upsert(workflow(version=2)) is UpsertOutcome.ADDED
    assert engine.upsert(workflow(version=2)) is UpsertOutcome.UNCHANGED
    assert engine.upsert(workflow(version=1, name="older")) is UpsertOutcome.STALE
    assert engine.get("wf").name == "A workflow"  # type: ignore[union-attr]
    assert engine.upsert(workflow(version=2, name="edited")) is UpsertOutcome.REPLACED
    assert engine.upsert(workflow(version=3, name="newer")) is UpsertOutcome.REPLACED
    assert engine.get("wf").name == "newer"  # type: ignore[union-attr]
    assert len(engine) == 1


def test_replacing_moves_a_workflow_between_triggers(engine: Engine) -> None:
    engine.upsert(workflow())
    assert engine.plan(event()).workflow_ids() == ["wf"]
    engine.upsert(workflow(version=2, trigger="user.registered"))
    assert engine.plan(event()).workflow_ids() == []
    assert engine.plan(event(type="user.registered")).workflow_ids() == ["wf"]


def test_a_bad_definition_leaves_the_old_one_in_place(engine: Engine) -> None:
    engine.upsert(workflow())
    bad = workflow(version=2, actions=[{"type": "add_tag", "user_id": "{{ x", "tag": "t"}])
    with pytest.raises(DefinitionError) as caught:
        engine.upsert(bad)
    assert caught.value.problems[0][0] == "actions.0.user_id"
    assert engine.get("wf").version == 1  # type: ignore[union-attr]
    assert engine.plan(event()).workflow_ids() == ["wf"]


def test_undeclared_trigger_is_rejected(engine: Engine) -> None:
    with pytest.raises(UnknownTriggerError) as caught:
        engine.upsert(workflow(trigger="order.create"))
    assert caught.value.problems[0][0] == "trigger"
    assert "did you mean order.created" in caught.value.problems[0][1]
    assert "wf" not in engine


def test_remove(engine: Engine) -> None:
    engine.upsert(workflow())
    assert engine.remove("wf") is True
    assert engine.remove("wf") is False
    assert engine.plan(event()).workflow_ids() == []


def test_timezone_moves_time_facts(catalog: TriggerCatalog) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        tokyo = ZoneInfo("Asia/Tokyo")
    except ZoneInfoNotFoundError:
        pytest.skip("no tz database on this machine")
    utc_engine, tokyo_engine = Engine(catalog), Engine(catalog, timezone=tokyo)
    for target in (utc_engine, tokyo_engine):
        target.upsert(workflow(conditions="dayOfWeek == 0"))
    late_saturday = event(time="2026-01-10T20:00:00Z")  # Sunday 05:00 in Tokyo
    assert utc_engine.plan(late_saturday).workflow_ids() == []
    assert tokyo_engine.plan(late_saturday).workflow_ids() == ["wf"]


def test_index_handles_two_thresholds_and_equality(engine: Engine) -> None:
    engine.upsert(workflow(id="band", conditions="total > 1 and total <= 5 and country == 'DE'"))
    engine.upsert(workflow(id="pair", conditions="total >= 3 and items < 2"))
    engine.upsert(workflow(id="bool", conditions="vip == true and total > 0"))
    assert engine.plan(event({"total": 5, "country": "DE", "items": 1})).workflow_ids() == [
        "band",
        "pair",
    ]
    assert engine.plan(event({"total": 6, "country": "DE", "items": "1"})).workflow_ids() == []
    assert engine.plan(event({"total": 1, "vip": 1})).workflow_ids() == []
    assert engine.plan(event({"total": 1, "vip": True})).workflow_ids() == ["bool"]
    assert engine.plan(event({"total": float("nan"), "vip": True})).workflow_ids() == []


# -- the indexed matcher returns exactly what evaluating every workflow returns --------------

FIELDS = ["total", "country", "items_count", "flag"]
VALUES = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([0.5, 1.0, float("inf"), float("nan")]),
    st.sampled_from(["DE", "FR", "3", ""]),
    st.booleans(),
    st.none(),
)
COMPARISON = st.builds(
    lambda field, operator, value: {"field": field, "operator": operator, "value": value},
    st.sampled_from(FIELDS),
    st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]),
    st.one_of(st.integers(-3, 3), st.sampled_from([0.5, -1.5, "DE", "FR", "3", True, False])),
)
CONDITION = st.recursive(
    COMPARISON,
    lambda children: st.one_of(
        st.builds(lambda c: {"all": c}, st.lists(children, min_size=1, max_size=4)),
        st.builds(lambda c: {"any": c}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, children),
    ),
    max_leaves=6,
)


def _valid(condition: dict[str, Any]) -> bool:
    # ordering operators refuse boolean thresholds at definition time
    if "field" in condition:
        return not (
            condition["operator"] in {"gt", "gte", "lt", "lte"}
            and isinstance(condition["value"], bool)
        )
    members = condition.get("all") or condition.get("any") or [condition.get("not")]
    return all(_valid(member) for member in members)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    definitions=st.lists(
        st.tuples(
            st.one_of(st.none(), CONDITION.filter(_valid)),
            st.integers(1, 10),
            st.booleans(),
            st.sampled_from(["order.created", "order.updated"]),
        ),
        max_size=12,
    ),
    events=st.lists(st.dictionaries(st.sampled_from(FIELDS), VALUES), min_size=1, max_size=5),
)
def test_indexed_matching_equals_naive_evaluation(
    catalog: TriggerCatalog,
    definitions: list[tuple[Any, int, bool, str]],
    events: list[dict[str, Any]],
) -> None:
    engine = Engine(catalog)
    for number, (condition, priority, enabled, trigger) in enumerate(definitions):
        engine.upsert(
            workflow(
                id=f"w{number:02d}",
                conditions=condition,
                priority=priority,
                enabled=enabled,
                trigger=trigger,
            )
        )
    compiled = {w.id: engine._compiled[w.id] for w in engine.workflows()}
    for data in events:
        subject = event(data)
        facts = engine.facts(subject)
        naive = sorted(
            (
                c
                for c in compiled.values()
                if c.workflow.enabled and c.workflow.trigger == subject.type and c.matches(facts)
            ),
            key=lambda c: c.order_key,
        )
        assert engine.plan(subject).workflow_ids() == [c.workflow.id for c in naive]
