"""Execution records reference their event (issue 14): replay reads it back from the event
topic while retention keeps it, says so when it no longer can, and never follows a forged
reference to a topic that is not an event topic of the deployment."""

from __future__ import annotations

import json

import orjson
import pytest
from click.testing import CliRunner
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from eventrules.cli.main import cli
from eventrules.errors import OperationError
from eventrules.ops.executions import recorded_event
from eventrules.settings import Settings
from integration.harness import Deployment, cli_ok, cloudevent

pytestmark = pytest.mark.integration


def _low_stock(deployment: Deployment, event_id: str) -> None:
    event = cloudevent(
        "product.low_stock", {"productName": "Widget", "stock": 2}, event_id=event_id
    )
    deployment.produce("events.products", orjson.dumps(event), key=b"p-1")


def _execution(deployment: Deployment, event_id: str) -> dict[str, object]:
    found = deployment.executions(
        until=lambda records: any(r["trigger_event_id"] == event_id for r in records)
    )
    return next(r for r in found if r["trigger_event_id"] == event_id)


def _delete_up_to(deployment: Deployment, logical: str, partition: int, offset: int) -> None:
    """What retention does to old records: the partition starts later."""
    admin = AdminClient({"bootstrap.servers": deployment.bootstrap})
    tp = TopicPartition(deployment.topic(logical), partition, offset)
    for future in admin.delete_records([tp]).values():
        future.result(timeout=30)


def test_a_record_references_its_event_and_replay_reads_it_back(
    runner: CliRunner, deployment: Deployment
) -> None:
    cli_ok(runner, "templates", "install", "low-stock-alert", "--yes", "--as", "tests")
    deployment.start_worker().wait_ready()
    _low_stock(deployment, "ref-1")
    original = _execution(deployment, "ref-1")

    assert "event" not in original
    ref = original["event_ref"]
    assert isinstance(ref, dict)
    assert ref["topic"] == deployment.topic("events.products")
    assert ref["fields"] == {"stock": 2}  # what the condition (stock < 10) read
    stored = deployment.read("events.products", until=lambda records: len(records) >= 1)
    assert (stored[0].partition(), stored[0].offset()) == (ref["partition"], ref["offset"])

    replay = json.loads(cli_ok(runner, "executions", "replay", str(original["execution_id"])))
    assert replay["trigger_event_id"] == "ref-1#replay-1"
    assert replay["status"] == "success"

    # retention takes the event: replay says so instead of guessing
    _delete_up_to(deployment, "events.products", int(ref["partition"]), int(ref["offset"]) + 1)
    result = runner.invoke(cli, ["executions", "replay", str(original["execution_id"])])
    assert result.exit_code != 0
    assert "is gone: retention removed it" in result.output
    assert "EVENTRULES_EXECUTION_EVENT=full" in result.output


def test_full_copies_survive_retention(runner: CliRunner, deployment: Deployment) -> None:
    cli_ok(runner, "templates", "install", "low-stock-alert", "--yes", "--as", "tests")
    deployment.start_worker(EVENTRULES_EXECUTION_EVENT="full").wait_ready()
    _low_stock(deployment, "copy-1")
    original = _execution(deployment, "copy-1")
    assert original["event"]["data"] == {"productName": "Widget", "stock": 2}  # type: ignore[index]
    ref = original["event_ref"]
    assert isinstance(ref, dict)
    _delete_up_to(deployment, "events.products", int(ref["partition"]), int(ref["offset"]) + 1)

    replay = json.loads(cli_ok(runner, "executions", "replay", str(original["execution_id"])))
    assert replay["trigger_event_id"] == "copy-1#replay-1"


def test_a_forged_reference_is_not_followed(deployment: Deployment) -> None:
    settings = Settings(bootstrap_servers=deployment.bootstrap, topic_prefix=deployment.prefix)
    forged = {
        "execution_id": "x",
        "trigger_event_id": "e",
        "event_ref": {"topic": deployment.topic("config"), "partition": 0, "offset": 0},
    }
    with pytest.raises(OperationError, match="not an event topic of this deployment"):
        recorded_event(settings, forged)
    # a reference to another event than the record's (a topic recreated since) is refused too
    _low_stock(deployment, "real-1")
    (stored,) = deployment.read("events.products", until=lambda records: len(records) >= 1)
    moved = {
        "execution_id": "x",
        "trigger_event_id": "other",
        "event_ref": {
            "topic": deployment.topic("events.products"),
            "partition": stored.partition(),
            "offset": stored.offset(),
        },
    }
    with pytest.raises(OperationError, match="now holds event 'real-1', not 'other'"):
        recorded_event(settings, moved)
    with pytest.raises(OperationError, match="unusable event_ref"):
        recorded_event(settings, {**moved, "event_ref": {"topic": 5}})
