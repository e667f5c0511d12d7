"""The config table: every kind goes through parse, key/id check and its store; bad records
are rejected and the previous version stays."""

from __future__ import annotations

import functools

import orjson

from eventrules.definitions.gate import ConfigGate
from eventrules.definitions.signatures import ConfigSigner, ConfigVerifier
from eventrules.metrics import Metrics
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


def _signed_table() -> tuple[ConfigTable, RulesEngine, ConfigSigner, Metrics]:
    signer = ConfigSigner.generate()
    rules, metrics = RulesEngine(), Metrics.create()
    table = ConfigTable(
        {"rule": DefinitionKind(parse_rule, rules)},
        gate=ConfigGate("t.config", ConfigVerifier([signer.public_key])),
        metrics=metrics,
    )
    return table, rules, signer, metrics


def _rejects(metrics: Metrics, reason: str) -> float:
    return metrics.config_rejects.labels("rule", reason)._value.get()  # type: ignore[no-any-return]


def test_with_trusted_keys_only_signed_records_change_definitions() -> None:
    table, rules, signer, metrics = _signed_table()
    value = _json(rule("a").model_dump(mode="json"))
    unsigned = table.apply(b"rule:a", value)
    assert unsigned.outcome == "rejected"
    assert _rejects(metrics, "unsigned") == 1
    stranger = ConfigSigner.generate().headers("t.config", b"rule:a", 1, value)
    assert table.apply(b"rule:a", value, stranger).outcome == "rejected"
    assert _rejects(metrics, "unknown_signer") == 1
    assert "a" not in rules
    signed = signer.headers("t.config", b"rule:a", 1, value)
    assert table.apply(b"rule:a", value, signed).outcome == "added"
    # a signature made for another deployment's topic does not count here
    elsewhere = signer.headers("prod.config", b"rule:a", 2, value)
    assert table.apply(b"rule:a", value, elsewhere).outcome == "rejected"
    assert _rejects(metrics, "bad_signature") == 1
    # an unsigned tombstone deletes nothing
    assert table.apply(b"rule:a", None).outcome == "rejected"
    assert "a" in rules
    # the signed version must be the value's
    v2 = _json(rule("a", version=2).model_dump(mode="json"))
    assert table.apply(b"rule:a", v2, signer.headers("t.config", b"rule:a", 3, v2)).error


def test_a_tombstone_followed_by_an_older_version_does_not_reinstall_it() -> None:
    table, rules, signer, metrics = _signed_table()
    v1 = _json(rule("a").model_dump(mode="json"))
    v2 = _json(rule("a", version=2, priority=5).model_dump(mode="json"))
    assert table.apply(b"rule:a", v1, signer.headers("t.config", b"rule:a", 1, v1)).outcome == (
        "added"
    )
    assert table.apply(b"rule:a", v2, signer.headers("t.config", b"rule:a", 2, v2)).outcome == (
        "replaced"
    )
    deleted = table.apply(b"rule:a", None, signer.headers("t.config", b"rule:a", 2, None))
    assert deleted.outcome == "deleted"
    replayed = table.apply(b"rule:a", v1, signer.headers("t.config", b"rule:a", 1, v1))
    assert replayed.outcome == "stale"
    assert _rejects(metrics, "stale_version") == 1
    assert "a" not in rules
    v3 = _json(rule("a", version=3).model_dump(mode="json"))
    assert table.apply(b"rule:a", v3, signer.headers("t.config", b"rule:a", 3, v3)).outcome == (
        "added"
    )


def test_a_version_pinned_out_of_range_is_refused_and_later_changes_still_apply() -> None:
    table, rules, signer, metrics = _signed_table()
    v1 = _json(rule("a").model_dump(mode="json"))
    table.apply(b"rule:a", v1, signer.headers("t.config", b"rule:a", 1, v1))
    pinned = _json(rule("a", version=2**63 - 1).model_dump(mode="json"))
    headers = signer.headers("t.config", b"rule:a", 2**63 - 1, pinned)
    assert table.apply(b"rule:a", pinned, headers).outcome == "rejected"
    assert _rejects(metrics, "version_out_of_range") == 1
    v2 = _json(rule("a", version=2).model_dump(mode="json"))
    assert table.apply(b"rule:a", v2, signer.headers("t.config", b"rule:a", 2, v2)).outcome == (
        "replaced"
    )
    assert rules.get("a") is not None
    assert rules.get("a").version == 2  # type: ignore[union-attr]


def test_the_table_remembers_the_accepted_record_behind_a_rejected_latest_one() -> None:
    table, _, signer, _ = _signed_table()
    v1 = _json(rule("a").model_dump(mode="json"))
    headers = signer.headers("t.config", b"rule:a", 1, v1)
    table.apply(b"rule:a", v1, headers)
    table.apply(b"rule:a", b"garbage")
    table.apply(b"rule:b", b"garbage")  # nothing accepted for b: nothing to restore
    assert table.rejected_latest == {b"rule:a"}
    assert table.accepted[b"rule:a"].value == v1
    assert table.accepted[b"rule:a"].headers == tuple(headers)
    # the republished record is accepted as unchanged and clears the flag
    assert table.apply(b"rule:a", v1, headers).outcome == "unchanged"
    assert table.rejected_latest == set()
