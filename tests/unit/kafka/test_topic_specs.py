"""The declared topic files: complete, valid, with usable value schemas."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from eventrules.errors import DefinitionError
from eventrules.kafka.topics import load_topic_specs

TOPICS_DIR = Path(__file__).resolve().parents[3] / "topics"

REQUIRED = {
    "events.orders",
    "events.users",
    "events.products",
    "events.prescriptions",
    "events.reviews",
    "events.payments",
    "events.scheduled",
    "config",
    "workflow-stats",
    "executions",
    "actions.email",
    "actions.sms",
    "actions.notifications",
    "actions.tasks",
    "actions.entity-commands",
    "dlq",
    "rules.requests",
    "rules.results",
    "scheduler-state",
    "retry.5s",
    "retry.1m",
    "retry.10m",
    "action-results",
    "state-repartition",
    "state-changelog",
}


def test_every_required_topic_is_declared_with_the_prefix() -> None:
    specs = load_topic_specs(TOPICS_DIR, prefix="x.")
    assert {s.name for s in specs} >= REQUIRED
    assert all(s.topic == "x." + s.name for s in specs)


def test_config_topic_is_compacted_and_executions_have_retention() -> None:
    specs = {s.name: s for s in load_topic_specs(TOPICS_DIR)}
    assert specs["config"].configs["cleanup.policy"] == "compact"
    assert int(specs["executions"].configs["retention.ms"]) > 0


def test_json_topics_carry_a_valid_json_schema() -> None:
    for spec in load_topic_specs(TOPICS_DIR):
        if spec.value_format == "raw":
            assert spec.schema_document is None
            continue
        assert spec.schema_document is not None, spec.name
        jsonschema.Draft202012Validator.check_schema(spec.schema_document)


def test_cloudevent_schema_accepts_a_structured_event_and_rejects_one_without_type() -> None:
    orders = next(s for s in load_topic_specs(TOPICS_DIR) if s.name == "events.orders")
    validator = jsonschema.Draft202012Validator(orders.schema_document or {})
    good = {
        "specversion": "1.0",
        "id": "e1",
        "source": "/shop",
        "type": "order.created",
        "data": {"total": 10},
    }
    assert list(validator.iter_errors(good)) == []
    bad = {k: v for k, v in good.items() if k != "type"}
    assert [e.message for e in validator.iter_errors(bad)] == ["'type' is a required property"]


def test_state_changelog_is_compacted_and_partitioned_like_its_input() -> None:
    specs = {s.name: s for s in load_topic_specs(TOPICS_DIR)}
    assert specs["state-changelog"].configs["cleanup.policy"] == "compact"
    assert specs["state-changelog"].partitions == specs["state-repartition"].partitions


def test_replication_factor_override_applies_to_every_topic() -> None:
    assert {s.replication_factor for s in load_topic_specs(TOPICS_DIR, replication_factor=3)} == {3}


def test_invalid_topic_file_names_the_field(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("name: broken\npartitions: 0\n")
    with pytest.raises(DefinitionError) as caught:
        load_topic_specs(tmp_path)
    assert ("partitions", "Input should be greater than or equal to 1") in caught.value.problems


def test_file_name_must_match_topic_name(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: b\npartitions: 1\n")
    with pytest.raises(DefinitionError, match="file name must be the topic name"):
        load_topic_specs(tmp_path)
