"""Operating commands against the real broker: config apply, manual runs, executions, stats."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from eventrules.cli.main import cli
from integration.harness import TEMPLATES, Deployment, cloudevent, ids_of, wait_until

pytestmark = pytest.mark.integration


def _apply(runner: CliRunner, *paths: Path) -> str:
    args = ["config", "apply", "--yes", "--as", "tests"]
    for path in paths:
        args += ["-f", str(path)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_config_apply_plans_publishes_and_then_changes_nothing(
    runner: CliRunner, deployment: Deployment, tmp_path: Path
) -> None:
    first = _apply(runner, TEMPLATES / "workflows", TEMPLATES / "rules")
    assert "published 11 change(s)" in first  # 7 workflow and 4 rule templates
    assert "nothing to change" in _apply(runner, TEMPLATES / "workflows", TEMPLATES / "rules")

    listed = runner.invoke(cli, ["config", "list"])
    assert listed.exit_code == 0
    assert "low-stock-alert" in listed.output
    assert "bulk-order-discount" in listed.output

    changed = tmp_path / "low-stock.yaml"
    text = (TEMPLATES / "workflows" / "low-stock-alert.yaml").read_text()
    changed.write_text(text.replace("stock < 10", "stock < 5"))
    plan = runner.invoke(cli, ["config", "apply", "-f", str(changed), "--dry-run"])
    assert plan.exit_code == 0
    assert "update" in plan.output
    assert "1 -> 2" in plan.output
    _apply(runner, changed)
    live = runner.invoke(cli, ["config", "get", "low-stock-alert"])
    definition = json.loads(live.output)
    assert definition["version"] == 2
    assert definition["updated_by"] == "tests"
    assert definition["conditions"] == {"field": "stock", "operator": "lt", "value": 5}

    invalid = tmp_path / "broken.yaml"
    invalid.write_text(
        "kind: workflow\nid: broken\nname: b\ntrigger: order.teleported\n"
        "created_by: t\nactions: []\n"
    )
    refused = runner.invoke(
        cli, ["config", "apply", "-f", str(invalid), "-f", str(changed), "--yes"]
    )
    assert refused.exit_code == 1
    assert "nothing was published" in refused.output
    assert "actions" in refused.output


def test_manual_run_executions_list_tail_and_stats_across_a_restart(
    runner: CliRunner, deployment: Deployment
) -> None:
    # only the one workflow these events trigger (the throttled variant shares its trigger)
    _apply(runner, TEMPLATES / "workflows" / "low-stock-alert.yaml")
    worker = deployment.start_worker()
    worker.wait_ready()

    manual = runner.invoke(
        cli,
        [
            "workflows",
            "run",
            "low-stock-alert",
            "--data",
            '{"productName": "Widget", "stock": 50}',
            "--subject",
            "p-1",
        ],
    )
    assert manual.exit_code == 0, manual.output
    record = json.loads(manual.output)
    assert record["triggered_by"] == "manual"
    assert record["status"] == "success"
    assert record["conditions_would_match"] is False, "stock 50 is not below 10"
    email = deployment.read_json(
        "actions.email",
        until=lambda found: any(m["execution_id"] == record["execution_id"] for m in found),
    )
    assert (
        "Widget"
        in next(m for m in email if m["execution_id"] == record["execution_id"])["params"]["body"]
    )

    for number in range(3):
        event = cloudevent(
            "product.low_stock", {"productName": f"P{number}", "stock": 1}, event_id=f"ls-{number}"
        )
        deployment.produce("events.products", orjson.dumps(event))
    deployment.executions(until=lambda found: len(ids_of(found, "low-stock-alert")) >= 4)

    listed = runner.invoke(cli, ["executions", "list", "--workflow", "low-stock-alert", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert len(rows) == 4
    assert sorted(r["triggered_by"] for r in rows) == ["event", "event", "event", "manual"]
    table = runner.invoke(cli, ["executions", "list", "--status", "success", "--limit", "2"])
    assert table.exit_code == 0
    assert "2 of 4 matching record(s)" in table.output

    tail = runner.invoke(
        cli, ["executions", "tail", "--from-beginning", "--max", "4", "--timeout", "20"]
    )
    assert tail.exit_code == 0
    assert len(tail.output.splitlines()) == 4

    def stats() -> dict[str, dict[str, object]]:
        result = runner.invoke(cli, ["workflows", "stats", "--json"])
        assert result.exit_code == 0, result.output
        loaded: dict[str, dict[str, object]] = json.loads(result.output)
        return loaded

    wait_until(
        lambda: stats().get("low-stock-alert", {}).get("run_count") == 4,
        timeout=60,
        what="the stats keeper to fold four runs",
    )

    worker.stop()
    restarted = deployment.start_worker()
    restarted.wait_ready()
    event = cloudevent(
        "product.low_stock", {"productName": "again", "stock": 2}, event_id="ls-after-restart"
    )
    deployment.produce("events.products", orjson.dumps(event))
    wait_until(
        lambda: stats().get("low-stock-alert", {}).get("run_count") == 5,
        timeout=60,
        what="stats to continue from the snapshot after a restart",
    )
    final = stats()["low-stock-alert"]
    assert final["success_count"] == 5
    assert final["failure_count"] == 0
    assert float(str(final["average_duration_ms"])) >= 0


def test_manual_run_takes_the_event_as_the_topic_carries_it(
    runner: CliRunner, deployment: Deployment, tmp_path: Path
) -> None:
    _apply(runner, TEMPLATES / "workflows")
    binary = tmp_path / "binary.json"
    headers = {
        "ce_specversion": "1.0",
        "ce_id": "evt-binary-1",
        "ce_source": "shop/products",
        "ce_type": "product.low_stock",
        "ce_subject": "p-9",
        "content-type": "application/json",
    }
    binary.write_text(json.dumps({"headers": headers, "data": {"productName": "Gizmo"}}))
    manual = runner.invoke(cli, ["workflows", "run", "low-stock-alert", "--event", str(binary)])
    assert manual.exit_code == 0, manual.output
    record = json.loads(manual.output)
    assert record["trigger_event_id"] == "evt-binary-1"
    assert record["trigger_event_source"] == "shop/products"
    assert record["subject"] == "p-9"
    email = deployment.read_json(
        "actions.email",
        until=lambda found: any(m["execution_id"] == record["execution_id"] for m in found),
    )
    sent = next(m for m in email if m["execution_id"] == record["execution_id"])
    assert "Gizmo" in sent["params"]["body"]

    data = tmp_path / "data.json"
    data.write_text('{"productName": "Gadget"}')
    headers = ["ce_specversion=1.0", "ce_id=x", "ce_source=s", "ce_type=order.created"]
    wrong = runner.invoke(
        cli,
        ["workflows", "run", "low-stock-alert", "--event", str(data)]
        + [f"--header={header}" for header in headers],
    )
    assert wrong.exit_code == 1
    assert "is not low-stock-alert's trigger 'product.low_stock'" in wrong.output
    both = runner.invoke(
        cli, ["workflows", "run", "low-stock-alert", "--event", str(data), "--data", "{}"]
    )
    assert both.exit_code == 2
    assert "drop --data/--subject" in both.output
