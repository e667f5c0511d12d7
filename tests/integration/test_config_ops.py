"""Config as code on the real broker: apply, export round trip, history, toggles, prune, races."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from eventrules.cli.main import cli
from integration.harness import TEMPLATES, Deployment, cli_ok, cloudevent, wait_until

pytestmark = pytest.mark.integration


def _low_stock(deployment: Deployment, event_id: str) -> dict[str, object]:
    event = cloudevent("product.low_stock", {"productName": "W", "stock": 7}, event_id=event_id)
    deployment.produce("events.products", orjson.dumps(event))
    records = deployment.executions(
        until=lambda found: any(r["trigger_event_id"] == event_id for r in found)
    )
    return next(r for r in records if r["trigger_event_id"] == event_id)


def test_config_as_code_round_trip(
    runner: CliRunner, deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The whole templates folder applies: the sample events are skipped, not errors.
    applied = cli_ok(runner, "config", "apply", "-f", str(TEMPLATES), "--yes", "--as", "ops")
    assert "published 11 change(s)" in applied
    assert applied.count("skipped") == 7
    worker = deployment.start_worker()
    worker.wait_ready()
    assert _low_stock(deployment, "e-1")["workflow_version"] == 1

    # An update reaches the running worker.
    changed = tmp_path / "low.yaml"
    text = (TEMPLATES / "workflows" / "low-stock-alert.yaml").read_text()
    changed.write_text(text.replace("stock < 10", "stock < 8").replace("Low Stock", "Stock"))
    cli_ok(runner, "config", "apply", "-f", str(changed), "--yes", "--as", "alice")
    # the config follower and the event stream are independent: wait for the follower first
    wait_until(
        lambda: "replaced workflow low-stock-alert v2" in worker.log_tail(200),
        what="the worker to load v2",
    )
    assert _low_stock(deployment, "e-2")["workflow_version"] == 2

    # export -> apply changes nothing.
    exported = tmp_path / "exported"
    assert "exported 11 definition(s)" in cli_ok(runner, "config", "export", "-o", str(exported))
    assert "nothing to change" in cli_ok(runner, "config", "apply", "-f", str(exported), "--yes")
    stdout_export = tmp_path / "all.yaml"
    stdout_export.write_text(cli_ok(runner, "config", "export"))
    assert "nothing to change" in cli_ok(runner, "config", "apply", "-f", str(stdout_export))

    # disable / enable with a version guard; a stale guard publishes nothing.
    refused = runner.invoke(cli, ["config", "disable", "low-stock-alert", "--expect-version", "1"])
    assert refused.exit_code == 4
    assert "is at v2" in refused.output
    cli_ok(runner, "config", "disable", "low-stock-alert", "--expect-version", "2", "--as", "bob")
    assert json.loads(cli_ok(runner, "config", "get", "low-stock-alert"))["enabled"] is False

    history = [
        json.loads(line)
        for line in cli_ok(runner, "config", "history", "low-stock-alert", "--json").splitlines()
    ]
    assert [h["definition"]["version"] for h in history] == [1, 2, 3]
    assert [h["definition"]["updated_by"] for h in history] == ["ops", "alice", "bob"]
    assert "alice" in cli_ok(runner, "config", "history", "low-stock-alert")

    # A concurrent edit between plan and publish is refused unless --force.
    def someone_else_edits(prompt: str) -> bool:
        cli_ok(runner, "config", "enable", "low-stock-alert", "--as", "carol")
        return True

    monkeypatch.setattr("eventrules.cli.config.click.confirm", someone_else_edits)
    raced = runner.invoke(cli, ["config", "apply", "-f", str(changed)])
    assert raced.exit_code == 4, raced.output
    assert "low-stock-alert: v3 -> v4 by carol" in raced.output
    assert json.loads(cli_ok(runner, "config", "get", "low-stock-alert"))["updated_by"] == "carol"

    # prune: only the changed workflow stays; everything else becomes a tombstone.
    pruned = cli_ok(runner, "config", "apply", "-f", str(changed), "--prune", "--yes")
    assert "published 10 change(s)" in pruned
    records = deployment.read(
        "config", until=lambda found: sum(1 for r in found if r.value() is None) >= 10
    )
    tombstones = {r.key() for r in records if r.value() is None}
    assert b"rule:bulk-order-discount" in tombstones
    assert b"workflow:low-stock-alert" not in tombstones
    listed = cli_ok(runner, "config", "list")
    assert "low-stock-alert" in listed
    assert "welcome-email" not in listed
    assert "deleted" in cli_ok(runner, "config", "history", "welcome-email")


def test_templates_list_and_install(runner: CliRunner) -> None:
    listed = cli_ok(runner, "templates", "list")
    for name in ("low-stock-alert", "welcome-email", "bulk-order-discount"):
        assert name in listed
    installed = cli_ok(
        runner, "templates", "install", "low-stock-alert", "bulk-order-discount", "--yes"
    )
    assert "published 2 change(s)" in installed
    assert "nothing to change" in cli_ok(runner, "templates", "install", "low-stock-alert", "--yes")
    live = json.loads(cli_ok(runner, "config", "get", "bulk-order-discount", "--kind", "rule"))
    assert live["rule_type"] == "pricing"
