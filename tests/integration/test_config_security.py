"""Who may change definitions, on the real broker: signed config, records the fleet rejects
republished by the guard so a compacted topic still agrees with the running workers, and an
audit trail that outlives compaction."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from confluent_kafka import Message
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from integration.harness import (
    Deployment,
    WorkerProcess,
    cli_ok,
    cloudevent,
    ids_of,
    order_workflow,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def signing(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A signing key made with `config keygen`, trusted by the CLI and by the test's workers."""
    key_file = tmp_path / "signing.pem"
    made = cli_ok(runner, "config", "keygen", "--out", str(key_file))
    trusted = next(line for line in made.splitlines() if line.startswith("EVENTRULES_CONFIG_"))
    public = trusted.split(": ", 1)[1]
    monkeypatch.setenv("EVENTRULES_CONFIG_SIGNING_KEY_FILE", str(key_file))
    monkeypatch.setenv("EVENTRULES_CONFIG_TRUSTED_KEYS", f"[{public}]")
    return f"[{public}]"


def _apply(runner: CliRunner, tmp_path: Path, definition: dict[str, Any], who: str) -> str:
    path = tmp_path / f"{definition['id']}.json"
    path.write_text(json.dumps(definition))
    return cli_ok(runner, "config", "apply", "-f", str(path), "--yes", "--as", who)


def _records(deployment: Deployment, key: bytes, count: int) -> list[Message]:
    found = deployment.read(
        "config", until=lambda records: sum(1 for r in records if r.key() == key) >= count
    )
    return [record for record in found if record.key() == key]


def _replay(deployment: Deployment, record: Message) -> None:
    deployment.produce(
        "config", record.value(), key=record.key(), headers=list(record.headers() or [])
    )


def _run_order(deployment: Deployment, event_id: str, workflow_id: str) -> dict[str, Any]:
    event = cloudevent("order.created", {"orderId": event_id}, event_id=event_id)
    deployment.produce("events.orders", orjson.dumps(event), key=event_id.encode())
    runs = deployment.executions(until=lambda found: event_id in ids_of(found, workflow_id))
    return next(
        r for r in runs if r["trigger_event_id"] == event_id and r["workflow_id"] == workflow_id
    )


def test_only_signed_definitions_change_what_workers_run(
    deployment: Deployment, runner: CliRunner, tmp_path: Path, signing: str
) -> None:
    worker = deployment.start_worker(EVENTRULES_CONFIG_TRUSTED_KEYS=signing)
    worker.wait_ready()
    _apply(runner, tmp_path, order_workflow("priced"), "ops")
    wait_until(lambda: "added workflow priced v1" in worker.log_tail(200), what="v1 loaded")

    # Someone who can write the config topic but holds no trusted key changes nothing.
    forged = order_workflow("priced") | {"version": 2, "name": "forged"}
    deployment.publish_definition(forged)
    deployment.delete_definition("priced")
    wait_until(
        lambda: (
            worker.metric("eventrules_config_rejects_total", kind="workflow", reason="unsigned")
            == 2
        ),
        what="the unsigned update and tombstone to be rejected",
    )
    assert _run_order(deployment, "o-1", "priced")["workflow_name"] == "count orders"

    # A signed delete, then the old signed v1 replayed: the tombstone does not reset the mark.
    (v1,) = [r for r in _records(deployment, b"workflow:priced", 1) if r.headers()][:1]
    cli_ok(runner, "config", "delete", "priced", "--yes", "--as", "ops")
    wait_until(lambda: "deleted workflow priced" in worker.log_tail(200), what="the delete")
    _replay(deployment, v1)
    wait_until(
        lambda: (
            worker.metric(
                "eventrules_config_rejects_total", kind="workflow", reason="stale_version"
            )
            >= 1
        ),
        what="the replayed v1 to be refused",
    )
    assert worker.wait_ready()["workflows"] == 0
    # Re-creating it with the CLI starts above the mark (v1, deleted at v1).
    assert "create" in _apply(runner, tmp_path, order_workflow("priced"), "ops")
    wait_until(lambda: "added workflow priced v2" in worker.log_tail(200), what="re-created")
    assert _run_order(deployment, "o-2", "priced")["workflow_version"] == 2


def _compact_config_quickly(deployment: Deployment) -> None:
    admin = AdminClient({"bootstrap.servers": deployment.bootstrap})
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        deployment.topic("config"),
        incremental_configs=[
            ConfigEntry("segment.ms", "100", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry(
                "min.cleanable.dirty.ratio", "0.001", incremental_operation=AlterConfigOpType.SET
            ),
        ],
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def _roll_segments(deployment: Deployment) -> None:
    # The cleaner never touches the active segment: close it with later records.
    for _ in range(2):
        time.sleep(0.3)
        deployment.produce("config", b"{}", key=b"workflow:filler")


def test_after_a_rejected_record_and_compaction_a_fresh_worker_runs_the_accepted_version(
    deployment: Deployment, runner: CliRunner, tmp_path: Path, signing: str
) -> None:
    running = deployment.start_worker(EVENTRULES_CONFIG_TRUSTED_KEYS=signing)
    running.wait_ready()
    _apply(runner, tmp_path, order_workflow("rolled"), "ops")
    (v1,) = _records(deployment, b"workflow:rolled", 1)
    _apply(runner, tmp_path, order_workflow("rolled") | {"name": "second"}, "ops")
    _apply(runner, tmp_path, order_workflow("broken"), "ops")
    wait_until(lambda: "replaced workflow rolled v2" in running.log_tail(200), what="v2")
    # A stale (but signed) v1 replayed, and an invalid record: both rejected by the fleet...
    _replay(deployment, v1)
    deployment.produce("config", b"{not json", key=b"workflow:broken")
    # ...and the guard (the only worker, so the leader) republishes the accepted records.
    wait_until(
        lambda: running.metric("eventrules_config_restores_total", kind="workflow") == 2,
        what="the guard to republish both",
    )
    assert orjson.loads(_records(deployment, b"workflow:rolled", 4)[-1].value())["version"] == 2
    assert orjson.loads(_records(deployment, b"workflow:broken", 3)[-1].value())["version"] == 1

    _compact_config_quickly(deployment)
    _roll_segments(deployment)
    wait_until(
        lambda: (
            len(_records(deployment, b"workflow:rolled", 1)) == 1
            and len(_records(deployment, b"workflow:broken", 1)) == 1
        ),
        timeout=120,
        what="the log cleaner to compact the config topic",
    )

    fresh = deployment.start_worker(EVENTRULES_CONFIG_TRUSTED_KEYS=signing)
    assert fresh.wait_ready()["workflows"] == 2
    for worker in (running, fresh):
        assert _loaded(worker) == {"rolled": 2, "broken": 1}
    # nothing was rejected on the way in: the compacted topic holds only accepted records
    for reason in ("not_json", "stale_version"):
        assert fresh.metric("eventrules_config_rejects_total", kind="workflow", reason=reason) == 0
    assert _run_order(deployment, "o-5", "rolled")["workflow_name"] == "second"


def _loaded(worker: WorkerProcess) -> dict[str, int]:
    """The version of each workflow the worker last installed, from its log."""
    assert worker.metric("eventrules_definitions_loaded", kind="workflow", enabled="true") == 2
    installed = re.compile(r"config: (?:added|replaced) workflow (\S+) v(\d+)")
    found: dict[str, int] = {}
    for match in installed.finditer(worker.log_path.read_text()):
        found[match.group(1)] = int(match.group(2))
    return found


def test_history_and_rollback_outlive_compaction(
    deployment: Deployment, runner: CliRunner, tmp_path: Path, signing: str
) -> None:
    first = order_workflow("audited")
    _apply(runner, tmp_path, first, "alice")
    _apply(runner, tmp_path, first | {"name": "renamed"}, "bob")
    cli_ok(runner, "config", "delete", "audited", "--yes", "--as", "carol")
    _compact_config_quickly(deployment)
    _roll_segments(deployment)
    wait_until(
        lambda: len(_records(deployment, b"workflow:audited", 1)) == 1,
        timeout=120,
        what="the log cleaner to compact the config topic",
    )

    history = [
        json.loads(line)
        for line in cli_ok(runner, "config", "history", "audited", "--json").splitlines()
    ]
    assert [(h["action"], h["version"], h["by"]) for h in history] == [
        ("create", 1, "alice"),
        ("update", 2, "bob"),
        ("delete", 2, "carol"),
    ]
    assert all(h["verified"] and h["signer"].startswith("ed25519:") for h in history)
    assert history[1]["diff"] == [{"field": "name", "before": "count orders", "after": "renamed"}]
    table = cli_ok(runner, "config", "history", "audited")
    assert "carol" in table
    assert "deleted" in table

    cli_ok(runner, "config", "rollback", "audited", "--to-version", "1", "--yes", "--as", "dave")
    restored = json.loads(cli_ok(runner, "config", "get", "audited"))
    assert (restored["version"], restored["name"], restored["updated_by"]) == (
        3,
        "count orders",
        "dave",
    )
    worker = deployment.start_worker(EVENTRULES_CONFIG_TRUSTED_KEYS=signing)
    assert worker.wait_ready()["workflows"] == 1
    assert _run_order(deployment, "o-9", "audited")["workflow_version"] == 3
