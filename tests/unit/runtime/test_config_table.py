"""The config table: every kind goes through parse, key/id check and its store; bad records
are rejected and the previous version stays."""

from __future__ import annotations

import functools

import orjson

from eventrules.definitions.gate import ConfigGate
from eventrules.models.workflows import parse_workflow
from eventrules.rules import RulesEngine, parse_rule
from eventrules.runtime.config_table import ConfigTable, DefinitionKind
from eventrules.workflows.engine import Engine
from unit.rules.helpers import rule


def _table() -> tuple[ConfigTable, Engine, RulesEngine]:
    engine, rules = Engine(), RulesEngine()
    table = ConfigTable(
        {
            "workflow": DefinitionKind(functools.partial(parse_workflow, registry=None), engine),
            "rule": DefinitionKind(parse_rule, rules),
        },
        gate=ConfigGate("config"),
    )
    return table, engine, rules


def _json(value: object) -> bytes:
    return orjson.dumps(value)


def test_rule_records_follow_the_version_rules() -> None:
    table, _, engine = _table()
    raw = rule("a").model_dump(mode="json")
    assert table.apply(b"rule:a", _json(raw)).outcome == "added"
    assert table.apply(b"rule:a", _json(raw)).outcome == "unchanged"
    bad = table.apply(b"rule:a", _json({**raw, "version": 2, "actions": []}))
    assert bad.outcome == "rejected"
    assert "actions" in (bad.error or "")
    assert engine.get("a") == rule("a")  # the previous version stays
    assert table.apply(b"rule:b", _json(raw)).outcome == "rejected"  # key and id disagree
    newer = table.apply(b"rule:a", _json({**raw, "version": 3, "priority": 7}))
    assert (newer.outcome, newer.version) == ("replaced", 3)
    assert table.apply(b"rule:a", _json(raw)).outcome == "stale"
    assert table.apply(b"rule:a", None).outcome == "deleted"
    assert table.apply(b"rule:a", None).outcome == "absent"
    assert len(engine) == 0


def test_the_config_table_routes_each_kind_to_its_store() -> None:
    table, workflows, rules = _table()
    value = _json(rule("a").model_dump(mode="json"))
    assert table.apply(b"rule:a", value).outcome == "added"
    assert "a" in rules
    assert "a" not in workflows
    workflow = {
        "id": "w",
        "name": "W",
        "trigger": "order.created",
        "created_by": "test",
        "actions": [{"type": "add_tag", "user_id": "1", "tag": "x"}],
    }
    assert table.apply(b"workflow:w", _json(workflow)).outcome == "added"
    assert "w" in workflows


def test_unusable_records_are_rejected_with_a_reason() -> None:
    table, _, _ = _table()
    assert table.apply(b"nonsense", b"{}").outcome == "rejected"
    assert table.apply(b"rule:a", b"not json").outcome == "rejected"
    assert table.apply(b"workflow:w", b'{"id": "w"}').outcome == "rejected"
    assert table.applied == 3
