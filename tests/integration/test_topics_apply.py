"""`topics apply` against the real broker: create, idempotence, drift, fix."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    ResourceType,
)

from eventrules.cli.main import cli
from eventrules.kafka.topics import apply_topics, describe_topics, load_topic_specs

pytestmark = pytest.mark.integration

TOPICS_DIR = Path(__file__).resolve().parents[2] / "topics"


def _topic_config(kafka_config: dict[str, object], topic: str, key: str) -> str:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    admin = AdminClient(kafka_config)  # keep a reference: a collected client fails its futures
    entries = admin.describe_configs([resource])[resource].result(timeout=30)
    value: str = entries[key].value
    return value


def _grow_partitions(kafka_config: dict[str, object], topic: str, count: int) -> None:
    admin = AdminClient(kafka_config)
    admin.create_partitions([NewPartitions(topic, count)])[topic].result(timeout=30)
    # Metadata reaches the broker's cache a moment after the controller accepts the change.
    deadline = time.monotonic() + 30
    while len(admin.list_topics(topic, timeout=10).topics[topic].partitions) != count:
        assert time.monotonic() < deadline, f"{topic} never showed {count} partitions"
        time.sleep(0.1)


def test_apply_creates_every_declared_topic_then_changes_nothing(
    kafka_config: dict[str, object], unique: str
) -> None:
    specs = load_topic_specs(TOPICS_DIR, prefix=f"t{unique}.")

    first = apply_topics(kafka_config, specs)
    assert sorted(first.created) == sorted(s.topic for s in specs)
    assert first.drift == []

    second = apply_topics(kafka_config, specs)
    assert second.created == []
    assert second.fixed == []
    assert second.drift == []
    assert sorted(second.unchanged) == sorted(s.topic for s in specs)

    config_topic = f"t{unique}.config"
    assert _topic_config(kafka_config, config_topic, "cleanup.policy") == "compact"
    executions = f"t{unique}.executions"
    assert _topic_config(kafka_config, executions, "retention.ms") == "2592000000"
    states = {s.spec.topic: s for s in describe_topics(kafka_config, specs)}
    assert states[f"t{unique}.events.orders"].partitions == 3
    assert states[f"t{unique}.dlq"].exists


def test_drift_is_reported_without_touching_data_and_fixed_on_request(
    kafka_config: dict[str, object], unique: str
) -> None:
    specs = [
        s
        for s in load_topic_specs(TOPICS_DIR, prefix=f"d{unique}.")
        if s.name in {"executions", "config"}
    ]
    apply_topics(kafka_config, specs)
    executions = f"d{unique}.executions"
    admin = AdminClient(kafka_config)
    resource = ConfigResource(
        ResourceType.TOPIC,
        executions,
        incremental_configs=[
            ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    admin.incremental_alter_configs([resource])[resource].result(timeout=30)
    # More partitions than declared cannot be undone: it must be reported, not "fixed".
    _grow_partitions(kafka_config, executions, 5)

    report = apply_topics(kafka_config, specs)
    drift = {(d.topic, d.setting): d for d in report.drift}
    assert set(drift) == {(executions, "retention.ms"), (executions, "partitions")}
    assert drift[(executions, "retention.ms")].actual == "1000"
    assert drift[(executions, "retention.ms")].fixable
    assert not drift[(executions, "partitions")].fixable
    assert _topic_config(kafka_config, executions, "retention.ms") == "1000"

    fixed = apply_topics(kafka_config, specs, fix=True)
    assert [(d.topic, d.setting) for d in fixed.fixed] == [(executions, "retention.ms")]
    assert [(d.topic, d.setting) for d in fixed.drift] == [(executions, "partitions")]
    assert _topic_config(kafka_config, executions, "retention.ms") == "2592000000"


def test_cli_apply_twice_then_list(
    kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTRULES_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("EVENTRULES_TOPIC_PREFIX", f"c{unique}.")
    runner = CliRunner()

    declared = len(list(TOPICS_DIR.glob("*.yaml")))
    first = runner.invoke(cli, ["topics", "apply", "--dir", str(TOPICS_DIR)])
    assert first.exit_code == 0, first.output
    assert f"{declared} created, 0 unchanged" in first.output

    second = runner.invoke(cli, ["topics", "apply", "--dir", str(TOPICS_DIR)])
    assert second.exit_code == 0, second.output
    assert f"0 created, {declared} unchanged, 0 fixed, 0 drifted" in second.output

    topic = f"c{unique}.dlq"
    _grow_partitions({"bootstrap.servers": kafka_bootstrap}, topic, 2)
    drifted = runner.invoke(cli, ["topics", "apply", "--dir", str(TOPICS_DIR)])
    assert drifted.exit_code == 3
    assert f"{topic}: partitions declared 1, actual 2" in drifted.output

    listed = runner.invoke(cli, ["topics", "list", "--dir", str(TOPICS_DIR)])
    assert listed.exit_code == 0, listed.output
    assert f"c{unique}.config" in listed.output
    assert "drift: partitions 1->2" in listed.output
