"""The rule definition: fields, actions per type, windows, and reading rule files."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from eventrules import DefinitionError, load_rules, load_workflows, parse_definition, parse_rule
from eventrules.rules import Rule

from .helpers import rule


def test_a_rule_round_trips_through_json() -> None:
    parsed = rule(
        conditions="total >= 500 and country in ['DE', 'AT']",
        actions=[
            {"type": "percentage_discount", "percent": 12.5},
            {"type": "set_field", "field": "order.note", "value": {"a": 1}},
        ],
        valid_from="2026-01-01T00:00:00+01:00",
    )
    dumped = parsed.model_dump(mode="json", exclude_none=True)
    assert dumped["actions"][0] == {"type": "percentage_discount", "percent": 12.5}
    assert dumped["conditions"]["all"][0] == {"field": "total", "operator": "gte", "value": 500}
    assert parse_rule(dumped) == parsed
    assert parsed.actions[0].percent == Decimal("12.5")  # type: ignore[union-attr]


def test_order_validation_is_the_seeds_name_for_validation() -> None:
    parsed = rule(rule_type="order_validation", actions=[{"type": "block", "reason": "no"}])
    assert parsed.rule_type == "validation"


@pytest.mark.parametrize(
    ("fields", "path", "fragment"),
    [
        ({"execution_count": 3}, "", "runtime statistic"),
        ({"lastExecuted": 1}, "", "runtime statistic"),
        ({"valid_from": "2026-01-01T00:00:00"}, "valid_from", "timezone"),
        (
            {"valid_from": "2026-02-01T00:00:00Z", "valid_until": "2026-01-01T00:00:00Z"},
            "",
            "valid_from must be earlier than valid_until",
        ),
        ({"actions": [{"type": "block", "reason": "x"}]}, "", "cannot use action 'block'"),
        ({"actions": [{"type": "add_tag", "tag": "x"}]}, "", "needs one of these actions"),
        ({"actions": [{"type": "percentage_discount", "percent": 120}]}, "actions.0.percent", ""),
        ({"actions": [{"type": "fixed_discount", "amount": 0}]}, "actions.0.amount", ""),
        ({"actions": [{"type": "fixed_discount", "amount": True}]}, "actions.0.amount", ""),
        ({"actions": [{"type": "set_field", "field": "a..b", "value": 1}]}, "actions.0.field", ""),
        ({"conditions": "total >> 5"}, "conditions", "column 8"),
        ({"rule_type": "shipping"}, "rule_type", ""),
        ({"priority": 0}, "priority", ""),
    ],
)
def test_invalid_rules_name_the_field(fields: dict[str, object], path: str, fragment: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        rule(**fields)
    assert caught.value.definition_id == "r"
    paths = [problem_path for problem_path, _ in caught.value.problems]
    assert path in paths, caught.value.problems
    assert fragment in str(caught.value)


def test_parse_definition_dispatches_on_kind() -> None:
    raw = rule().model_dump(mode="json")
    assert isinstance(parse_definition(raw), Rule)
    with pytest.raises(DefinitionError, match="unsupported definition kind"):
        parse_definition({**raw, "kind": "gadget"})


def test_load_rules_and_load_workflows_keep_to_their_kind(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "- {kind: rule, id: a, name: a, rule_type: validation, created_by: me,"
        " conditions: 'total < 20', actions: [{type: block, reason: too small}]}\n"
    )
    (loaded,) = load_rules(path)
    assert loaded.id == "a"
    with pytest.raises(DefinitionError) as caught:
        load_workflows(path)
    assert str(caught.value).startswith(f"{path}[0]: unsupported definition kind")
    workflow = tmp_path / "workflow.yaml"
    workflow.write_text("id: w\n")
    with pytest.raises(DefinitionError, match="unsupported kind 'workflow' here"):
        load_rules(workflow)
