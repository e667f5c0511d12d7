"""The config table: every kind goes through parse, key/id check and its store; bad records
are rejected with a reason and a metric, the previous version stays, and apply never raises."""

from __future__ import annotations

import functools
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventrules.definitions.gate import ConfigGate
from eventrules.definitions.signatures import ConfigSigner, ConfigVerifier
from eventrules.metrics import Metrics
from eventrules.models.workflows import parse_workflow
from eventrules.rules import RulesEngine, parse_rule
from eventrules.runtime.config_table import ConfigTable, DefinitionKind
from eventrules.workflows.catalog import TriggerCatalog
from eventrules.workflows.engine import Engine
from unit.rules.helpers import rule

CATALOG = TriggerCatalog.load()


def _table(metrics: Metrics | None = None) -> tuple[ConfigTable, Engine, RulesEngine]:
    engine, rules = Engine(CATALOG), RulesEngine()
    table = ConfigTable(
        {
            "workflow": DefinitionKind(functools.partial(parse_workflow, registry=None), engine),
            "rule": DefinitionKind(parse_rule, rules),
        },
        gate=ConfigGate("config"),
        metrics=metrics,
    )
    return table, engine, rules


def table() -> tuple[ConfigTable, Metrics, RulesEngine]:
    metrics = Metrics.create()
    config, _, rules = _table(metrics)
    return config, metrics, rules


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


def workflow(**fields: Any) -> dict[str, Any]:
    return {
        "kind": "workflow",
        "id": "w",
        "name": "w",
        "trigger": "order.created",
        "created_by": "t",
        "actions": [{"type": "add_tag", "user_id": "{{ userId }}", "tag": "t"}],
        **fields,
    }


def rule_json(**fields: Any) -> dict[str, Any]:
    return {
        "kind": "rule",
        "id": "r",
        "name": "r",
        "rule_type": "pricing",
        "created_by": "t",
        "actions": [{"type": "percentage_discount", "percent": 10}],
        **fields,
    }


def nots(depth: int) -> dict[str, Any]:
    """A structured condition ``depth`` groups deep: one JSON level per group."""
    node: dict[str, Any] = {"field": "x", "operator": "exists"}
    for _ in range(depth):
        node = {"not": node}
    return node


def with_groups(definition: dict[str, Any], depth: int) -> bytes:
    """``definition`` whose conditions nest ``depth`` all/any groups, written by hand: two
    JSON levels per group, past what orjson can write."""
    head = orjson.dumps(definition)[:-1]
    groups = b'{"all":[' * depth + b'{"field":"x","operator":"exists"}' + b"]}" * depth
    return head + b',"conditions":' + groups + b"}"


def tag_template(template: str) -> dict[str, Any]:
    return workflow(actions=[{"type": "add_tag", "user_id": template, "tag": "t"}])


def rejects(metrics: Metrics, kind: str, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "eventrules_config_rejects_total", {"kind": kind, "reason": reason}
    )
    return value or 0.0


# the table: each of these raised out of apply and killed the config follower
HOSTILE_WORKFLOWS = [
    (workflow(conditions="not " * 2000 + "x exists"), "limit_exceeded"),
    (workflow(conditions="not " * 40 + "x exists"), "limit_exceeded"),
    (with_groups(workflow(), 400), "too_deep"),
    (with_groups(workflow(), 40), "too_deep"),
    (workflow(conditions=nots(40)), "limit_exceeded"),
    (tag_template("{{" + "(" * 200 + "1" + ")" * 200 + "}}"), "limit_exceeded"),
    (tag_template("{% for a in b %}" * 25 + "x" + "{% endfor %}" * 25), "limit_exceeded"),
    (workflow(conditions="x within_last '99999999999w'"), "invalid"),
    (workflow(conditions={"field": "x", "operator": "older_than", "value": 1e300}), "invalid"),
    (tag_template("{{ ''.__class__.__mro__ }}"), "invalid"),
    (tag_template("{{ cycler.__init__.__globals__ }}"), "invalid"),
    (tag_template("{% for i in range(10**9) %}{% endfor %}"), "invalid"),
    (tag_template("{% for i in range(0, 10**6) %}{% endfor %}"), "invalid"),
    (tag_template("{% for i in range(0, 1000000) %}{% endfor %}"), "limit_exceeded"),
]


@pytest.mark.parametrize(("definition", "reason"), HOSTILE_WORKFLOWS)
def test_hostile_workflows_are_rejected_with_a_reason(definition: Any, reason: str) -> None:
    config, metrics, _ = table()
    value = definition if isinstance(definition, bytes) else orjson.dumps(definition)
    change = config.apply(b"workflow:w", value)
    assert (change.outcome, change.reason) == ("rejected", reason), change.error
    assert rejects(metrics, "workflow", reason) == 1
    assert "w" not in config.kinds["workflow"].store


@pytest.mark.parametrize(
    ("definition", "reason"),
    [
        (rule_json(conditions="not " * 2000 + "x exists"), "limit_exceeded"),
        (rule_json(conditions=nots(40)), "limit_exceeded"),
        (rule_json(conditions="x within_last '99999999999w'"), "invalid"),
        (rule_json(conditions={"field": "x", "operator": "older_than", "value": 1e300}), "invalid"),
        (rule_json(actions=[{"type": "fixed_discount", "amount": 1e300}]), "invalid"),
        (rule_json(actions=[{"type": "set_field", "field": "x", "value": nots(70)}]), "too_deep"),
    ],
)
def test_hostile_rules_are_rejected_with_a_reason(definition: Any, reason: str) -> None:
    config, metrics, rules = table()
    change = config.apply(b"rule:r", orjson.dumps(definition))
    assert (change.outcome, change.reason) == ("rejected", reason), change.error
    assert rejects(metrics, "rule", reason) == 1
    assert len(rules) == 0


def test_values_orjson_reads_but_could_not_write_back_are_too_deep() -> None:
    config, metrics, _ = table()
    deep = b'{"a":' * 300 + b"1" + b"}" * 300
    assert config.apply(b"workflow:w", deep).reason == "too_deep"
    deeper = b"[" * 2000 + b"]" * 2000  # past orjson's own 1024
    assert config.apply(b"workflow:w", deeper).reason == "not_json"
    assert rejects(metrics, "workflow", "too_deep") == 1


def test_anything_unforeseen_is_an_internal_error_rejection() -> None:
    def explodes(raw: Any) -> Any:
        raise RecursionError("a bug we did not foresee")

    config, metrics, _ = table()
    config.kinds["rule"] = DefinitionKind(explodes, RulesEngine())
    change = config.apply(b"rule:r", b"{}")
    assert (change.outcome, change.reason) == ("rejected", "internal_error")
    assert "RecursionError" in (change.error or "")
    assert rejects(metrics, "rule", "internal_error") == 1
    # and the table goes on
    assert config.apply(b"workflow:w", orjson.dumps(workflow())).outcome == "added"


def test_a_good_definition_after_the_bad_ones_is_applied() -> None:
    config, _, _ = table()
    for definition, _ in HOSTILE_WORKFLOWS:
        value = definition if isinstance(definition, bytes) else orjson.dumps(definition)
        assert config.apply(b"workflow:w", value).outcome == "rejected"
    assert config.apply(b"workflow:w", orjson.dumps(workflow())).outcome == "added"


VALUES = st.one_of(
    st.binary(max_size=40),
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=8),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(
                st.sampled_from(["id", "conditions", "actions", "all", "not", "x"]),
                children,
                max_size=3,
            )
        ),
        max_leaves=20,
    ).map(lambda value: orjson.dumps(workflow(conditions=value))),
)


@settings(max_examples=200, deadline=None)
@given(
    key=st.one_of(
        st.none(), st.binary(max_size=12), st.sampled_from([b"workflow:w", b"rule:r", b"x:y"])
    ),
    value=st.one_of(st.none(), VALUES),
)
def test_apply_never_raises(key: bytes | None, value: bytes | None) -> None:
    config, _, _ = table()
    change = config.apply(key, value)
    assert change.outcome in {"added", "deleted", "absent", "rejected"}
    if change.outcome == "rejected":
        assert change.reason
