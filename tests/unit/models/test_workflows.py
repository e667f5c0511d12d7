"""Workflow and action validation: errors name the field path and the reason."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from tests.unit.conftest import WORKFLOW_FIELDS, workflow

from eventrules import ActionBase, ActionRegistry, DefinitionError, parse_workflow
from eventrules.errors import ConfigurationError
from eventrules.models import BUILTIN_ACTIONS, CallWebhook, SendEmail

BASE: dict[str, Any] = {**WORKFLOW_FIELDS, "name": "n"}


def problems(raw: dict[str, Any], registry: ActionRegistry | None = None) -> dict[str, str]:
    with pytest.raises(DefinitionError) as caught:
        parse_workflow(raw, registry)
    return dict(caught.value.problems)


def test_defaults_and_seed_fields() -> None:
    parsed = workflow(created_at=1767225600000)
    assert (parsed.kind, parsed.version, parsed.priority, parsed.enabled) == (
        "workflow",
        1,
        5,
        True,
    )
    assert parsed.created_at is not None
    assert parsed.created_at.year == 2026
    assert parsed.description == ""


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        ({"priority": 11}, "priority", "less than or equal to 10"),
        ({"priority": 0}, "priority", "greater than or equal to 1"),
        ({"version": 0}, "version", "greater than or equal to 1"),
        ({"id": "has space"}, "id", "pattern"),
        ({"actions": []}, "actions", "at least 1"),
        ({"surprise": 1}, "surprise", "Extra inputs"),
        ({"kind": "rule"}, "kind", "'workflow'"),
        ({"created_at": "2026-01-01T00:00:00"}, "created_at", "timezone"),
        ({"conditions": "total >"}, "conditions", "column 8"),
        (
            {"conditions": {"all": ["a > 1", {"field": "b", "operator": "?"}]}},
            "conditions.all.1.operator",
            "unknown operator",
        ),
        ({"actions": [{"type": "launch_rocket"}]}, "actions.0", "does not match any"),
        (
            {"actions": [{"type": "send_email", "to": "a@b", "subject": "s"}]},
            "actions.0.body",
            "Field required",
        ),
        ({"actions": [{"type": "call_webhook", "url": "ftp://x"}]}, "actions.0.url", "http"),
        (
            {"actions": [{"type": "call_webhook", "url": "https://{{ host }}/x"}]},
            "actions.0.url",
            "literal host",
        ),
        (
            {"actions": [{"type": "call_webhook", "url": "https://h/x", "secret": "a b"}]},
            "actions.0.secret",
            "pattern",
        ),
        (
            {"actions": [{"type": "call_webhook", "url": "https://h", "max_attempts": 0}]},
            "actions.0.max_attempts",
            "greater than or equal to 1",
        ),
        ({"actions": [{"type": "send_sms", "to": "+1"}]}, "actions.0.message", "Field required"),
    ],
)
def test_invalid_definition_names_path_and_reason(
    change: dict[str, Any], path: str, fragment: str
) -> None:
    found = problems({**BASE, **change})
    assert path in found, found
    assert fragment in found[path]


def test_error_message_lists_every_problem() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_workflow({**BASE, "priority": 99, "name": ""})
    text = str(caught.value)
    assert text.startswith("invalid workflow 'wf'")
    assert "  - priority:" in text
    assert "  - name:" in text
    assert caught.value.definition_id == "wf"


def test_non_mapping_is_rejected() -> None:
    assert problems(["not", "a", "mapping"]) == {"": "expected a mapping, got list"}  # type: ignore[arg-type]


def test_webhook_parameters() -> None:
    parsed = workflow(
        actions=[
            {
                "type": "call_webhook",
                "url": "https://hooks.example.com/orders/{{ orderId }}",
                "method": "put",
                "headers": {"X-Source": "eventrules"},
                "body": {"id": "{{ orderId }}", "n": 1},
                "timeout_seconds": 2.5,
                "max_attempts": 5,
                "secret": "orders-hook",
            }
        ]
    )
    action = parsed.actions[0]
    assert isinstance(action, CallWebhook)
    assert (action.method, action.secret, action.max_attempts) == ("PUT", "orders-hook", 5)
    assert {"secret", "method"} <= CallWebhook.untemplated


def test_seed_template_key_is_accepted_for_email_body() -> None:
    action = workflow(
        actions=[{"type": "send_email", "to": "a@b", "subject": "s", "template": "hi"}]
    ).actions[0]
    assert isinstance(action, SendEmail)
    assert action.body == "hi"


def test_eight_builtin_action_types() -> None:
    assert ActionRegistry().names() == sorted(
        [
            "send_email",
            "send_sms",
            "update_field",
            "create_task",
            "call_webhook",
            "add_tag",
            "suspend_user",
            "send_notification",
        ]
    )
    assert len(BUILTIN_ACTIONS) == 8


class PageOnCall(ActionBase):
    type: Literal["page_on_call"]
    team: str


def test_registry_adds_a_custom_action_type() -> None:
    registry = ActionRegistry()
    registry.register(PageOnCall)
    raw = {**BASE, "actions": [{"type": "page_on_call", "team": "{{ team }}"}]}
    parsed = parse_workflow(raw, registry)
    assert isinstance(parsed.actions[0], PageOnCall)
    assert "does not match any" in problems(raw)["actions.0"]
    assert problems({**raw, "actions": [{"type": "page_on_call"}]}, registry) == {
        "actions.0.team": "Field required"
    }


def test_registry_rejects_conflicts_and_untyped_classes() -> None:
    class Clash(ActionBase):
        type: Literal["send_email"]

    class Untyped(ActionBase):
        pass

    registry = ActionRegistry()
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.register(Clash)
    with pytest.raises(ConfigurationError, match="Literal"):
        registry.register(Untyped)


def test_entry_point_registry_loads_builtins_without_plugins() -> None:
    assert ActionRegistry.from_entry_points("eventrules.tests.none").names() == (
        ActionRegistry().names()
    )


def test_condition_round_trips_through_model_dump() -> None:
    parsed = workflow(conditions="total > 5 and country in ['DE']")
    dumped = parsed.model_dump(mode="json")
    assert dumped["conditions"] == {
        "all": [
            {"field": "total", "operator": "gt", "value": 5},
            {"field": "country", "operator": "in", "value": ["DE"]},
        ]
    }
    assert parse_workflow(dumped) == parsed
