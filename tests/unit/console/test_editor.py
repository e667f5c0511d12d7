"""The editor: form fields <-> a definition, the builder's operations, problems at fields."""

from __future__ import annotations

from typing import Any

import pytest

from eventrules.console.editor import (
    MAX_DEPTH,
    EditorState,
    apply_operation,
    conditions_from_form,
    definition_from_source,
    field_key,
    form_can_show,
    param_specs,
    raw_from_form,
    validate_definition,
)
from eventrules.errors import InputError
from eventrules.models.actions import ActionRegistry, CallWebhook, SendEmail
from eventrules.workflows.catalog import TriggerCatalog

REGISTRY = ActionRegistry()


def form(**fields: str) -> dict[str, str]:
    base = {
        "id": "big-orders",
        "name": "Big orders",
        "trigger": "order.created",
        "priority": "8",
        "enabled": "on",
        "created_by": "alice",
        "a.0.type": "create_task",
        "a.0.p.title": "Call {{email}}",
        "a.0.p.due_in_hours": "4",
    }
    return {**base, **fields}


def test_a_form_becomes_a_valid_workflow(catalog: TriggerCatalog) -> None:
    raw = raw_from_form(
        form(
            **{
                "c.kind": "all",
                "c.0.kind": "compare",
                "c.0.field": "total",
                "c.0.operator": "gt",
                "c.0.value": "100",
                "c.1.kind": "not",
                "c.1.0.kind": "compare",
                "c.1.0.field": "country",
                "c.1.0.operator": "in",
                "c.1.0.value": '["DE", "FR"]',
                "c.2.kind": "compare",
                "c.2.field": "email",
                "c.2.operator": "exists",
                "c.2.value": "ignored",
            }
        ),
        REGISTRY,
    )
    assert raw["priority"] == 8
    assert raw["conditions"] == {
        "all": [
            {"field": "total", "operator": "gt", "value": 100},
            {"not": {"field": "country", "operator": "in", "value": ["DE", "FR"]}},
            {"field": "email", "operator": "exists"},
        ]
    }
    assert raw["actions"] == [{"type": "create_task", "title": "Call {{email}}", "due_in_hours": 4}]
    definition, problems = validate_definition(raw, catalog, REGISTRY)
    assert problems == []
    assert definition is not None
    assert definition.priority == 8


def test_text_values_stay_text_and_json_values_are_read_as_json() -> None:
    condition = conditions_from_form(
        {"c.kind": "compare", "c.field": "tier", "c.operator": "eq", "c.value": "gold"}
    )
    assert condition == {"field": "tier", "operator": "eq", "value": "gold"}
    quoted = conditions_from_form(
        {"c.kind": "compare", "c.field": "code", "c.operator": "eq", "c.value": '"100"'}
    )
    assert quoted["value"] == "100"


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    fields = {}
    path = "c"
    for _ in range(MAX_DEPTH + 1):
        fields[f"{path}.kind"] = "all"
        path += ".0"
    fields[f"{path}.kind"] = "compare"
    with pytest.raises(InputError, match="nest"):
        conditions_from_form(fields)


def test_an_unknown_action_type_or_node_kind_is_refused() -> None:
    with pytest.raises(InputError, match=r"a\.0\.type"):
        raw_from_form(form(**{"a.0.type": "launch_missiles"}), REGISTRY)
    with pytest.raises(InputError, match=r"c\.kind"):
        conditions_from_form({"c.kind": "xor"})


def test_builder_operations_change_the_tree() -> None:
    raw: dict[str, Any] = {"actions": [{"type": "send_email"}]}
    apply_operation(raw, "cond-root:compare", new_action=None)
    apply_operation(raw, "cond-root:any", new_action=None)  # wraps the comparison in OR
    assert list(raw["conditions"]) == ["any"]
    apply_operation(raw, "cond-add-not:c", new_action=None)
    apply_operation(raw, "cond-add:c", new_action=None)
    assert [next(iter(child)) for child in raw["conditions"]["any"]] == ["field", "not", "field"]
    apply_operation(raw, "cond-remove:c.1.0", new_action=None)  # the NOT's child: a blank again
    assert raw["conditions"]["any"][1] == {"not": {"field": "", "operator": "eq", "value": ""}}
    apply_operation(raw, "cond-remove:c.1", new_action=None)
    assert len(raw["conditions"]["any"]) == 2
    apply_operation(raw, "act-add", new_action="add_tag")
    apply_operation(raw, "act-up:1", new_action=None)
    assert [a["type"] for a in raw["actions"]] == ["add_tag", "send_email"]
    apply_operation(raw, "act-remove:0", new_action=None)
    assert [a["type"] for a in raw["actions"]] == ["send_email"]
    apply_operation(raw, "cond-remove:c", new_action=None)
    assert "conditions" not in raw


@pytest.mark.parametrize(
    "operation", ["cond-add:c.9", "cond-add:x", "act-remove:5", "boom", "cond-add:c.0"]
)
def test_operations_on_what_is_not_there_are_refused(operation: str) -> None:
    raw: dict[str, Any] = {
        "conditions": {"all": [{"field": "a", "operator": "exists"}]},
        "actions": [],
    }
    with pytest.raises(InputError):
        apply_operation(raw, operation, new_action=None)


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("actions.0.to", "a.0.p.to"),
        ("actions.2", "a.2"),
        ("actions.1.type", "a.1.type"),
        ("conditions.all.1.value", "c.1.value"),
        ("conditions.any.0.not.field", "c.0.0.field"),
        ("conditions", "c"),
        ("priority", "priority"),
        ("", ""),
    ],
)
def test_problem_paths_map_to_the_fields_that_show_them(path: str, key: str) -> None:
    assert field_key(path) == key


def test_validation_problems_land_at_their_fields(catalog: TriggerCatalog) -> None:
    raw = raw_from_form(
        form(
            trigger="order.creatd",
            priority="11",
            **{
                "a.0.p.title": "",
                "c.kind": "all",
                "c.0.kind": "compare",
                "c.0.field": "total",
                "c.0.operator": "between",
                "c.0.value": "[10, 1]",
            },
        ),
        REGISTRY,
    )
    _, problems = validate_definition(raw, catalog, REGISTRY)
    state = EditorState("workflow", "form", raw)
    state.add_problems(problems)
    assert set(state.problems) >= {"priority", "a.0.p.title", "c.0.value"}
    raw["priority"] = 5
    _, problems = validate_definition(
        raw | {"conditions": None, "actions": [{"type": "add_tag", "user_id": "u", "tag": "t"}]},
        catalog,
        REGISTRY,
    )
    state = EditorState("workflow", "form", raw)
    state.add_problems(problems)
    assert "did you mean order.created" in state.problems["trigger"][0]


def test_source_is_one_bounded_document_without_aliases() -> None:
    assert definition_from_source("id: x\nvalid_from: 2026-01-01", "yaml")["valid_from"] == (
        "2026-01-01"
    )
    with pytest.raises(InputError, match="aliases"):
        definition_from_source("a: &x [1, 2]\nb: [*x, *x, *x]", "yaml")
    with pytest.raises(InputError, match="JSON"):
        definition_from_source("{nope", "json")
    with pytest.raises(InputError, match="KiB"):
        definition_from_source("x" * 300_000, "yaml")


def test_parameters_are_documented_from_the_action_models() -> None:
    email = {spec.name: spec for spec in param_specs(SendEmail)}
    assert email["to"].required
    assert email["to"].description
    assert email["cc"].widget == "list"
    assert email["body"].widget == "textarea"
    webhook = {spec.name: spec for spec in param_specs(CallWebhook)}
    assert webhook["method"].widget == "select"
    assert webhook["method"].options == ("GET", "POST", "PUT", "PATCH", "DELETE")
    assert not webhook["secret"].templated
    assert webhook["headers"].widget == "object"
    assert webhook["max_attempts"].default == "3"


def test_workflows_with_memory_are_edited_as_source_and_a_delay_survives_the_form(
    catalog: TriggerCatalog,
) -> None:
    assert form_can_show("workflow", raw_from_form(form(), REGISTRY))
    assert not form_can_show("rule", {})
    memory = [{"throttle": {"key": "x", "per": "1h"}}, {"dedupe": {"key": "x", "within": "1d"}}]
    for block in memory:
        assert not form_can_show("workflow", {"id": "w", **block})
    # an action's delay is one of its parameters: the form keeps it
    raw = raw_from_form(form(**{"a.0.p.delay": "24h"}), REGISTRY)
    definition, problems = validate_definition(raw, catalog, REGISTRY)
    assert problems == []
    assert definition is not None
    assert definition.model_dump(mode="json")["actions"][0]["delay"] == "1d"
