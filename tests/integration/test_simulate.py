"""``eventrules simulate`` over a topic holding known events: exact counts, against the live
version, with throttle and absence simulated."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner

from integration.harness import Deployment, cli_ok, cloudevent

pytestmark = pytest.mark.integration

T = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)


def _at(minutes: float) -> datetime:
    return T + timedelta(minutes=minutes)


def _produce(
    deployment: Deployment, topic: str, type_: str, data: dict[str, Any], minutes: float
) -> None:
    event = cloudevent(type_, data)
    event["time"] = _at(minutes).isoformat()
    deployment.produce(
        topic,
        orjson.dumps(event),
        key=str(next(iter(data.values()))).encode(),
        timestamp_ms=int(_at(minutes).timestamp() * 1000),
    )


def _workflow(**fields: Any) -> dict[str, Any]:
    return {"kind": "workflow", "version": 1, "created_by": "tests", **fields}


def _simulate(runner: CliRunner, tmp_path: Path, definition: dict[str, Any]) -> dict[str, Any]:
    path = tmp_path / f"{definition['id']}.yaml"
    path.write_text(yaml.safe_dump(definition))
    start, end = _at(-1).isoformat(), _at(180).isoformat()
    output = cli_ok(runner, "simulate", str(path), "--from", start, "--to", end, "--json")
    result: dict[str, Any] = json.loads(output)
    return result


def test_simulate_counts_runs_of_a_throttled_draft_against_the_live_version(
    deployment: Deployment, runner: CliRunner, tmp_path: Path
) -> None:
    email = {"type": "send_email", "to": "ops@example.com", "subject": "low", "body": "low"}
    live = _workflow(
        id="low-stock",
        name="Low",
        trigger="product.low_stock",
        conditions="stock < 10",
        actions=[email],
    )
    deployment.publish_definition(live)
    for product, stock, minutes in [
        ("p0", 1, -30),  # before the range
        ("p1", 3, 0),
        ("p2", 1, 5),
        ("p1", 4, 10),  # throttled by the draft
        ("p1", 8, 20),  # only the live version matches
        ("p1", 2, 70),  # the window is over
        ("p9", 1, 200),  # after the range
    ]:
        _produce(
            deployment,
            "events.products",
            "product.low_stock",
            {"productId": product, "stock": stock},
            minutes,
        )
    _produce(deployment, "events.orders", "order.created", {"orderId": "o-x"}, 1)

    draft = live | {
        "version": 2,
        "conditions": "stock < 5",
        "throttle": {"key": "{{ productId }}", "limit": 1, "per": "1h"},
    }
    result = _simulate(runner, tmp_path, draft)
    assert result["events"] == 5
    assert result["draft"]["executions"] == 3
    assert result["live"]["executions"] == 5
    assert result["draft"]["decisions"] == {"throttled": 1}
    assert (result["fired_by_both"], result["only_draft"], result["only_live"]) == (3, 0, 2)
    outcomes = [trace["outcome"] for trace in result["draft"]["sample_traces"]]
    assert outcomes[:2] == ["ran", "ran"]
    assert outcomes[2].startswith("throttled: throttle key 'p1'")


def test_simulate_fires_absence_watches_that_were_not_answered_in_time(
    deployment: Deployment, runner: CliRunner, tmp_path: Path
) -> None:
    for order_id, paid_after in [("o1", 30), ("o2", 120), ("o3", None)]:
        _produce(deployment, "events.orders", "order.created", {"orderId": order_id}, 0)
        if paid_after is not None:
            _produce(
                deployment, "events.payments", "payment.received", {"orderId": order_id}, paid_after
            )
    draft = _workflow(
        id="unpaid",
        name="Unpaid",
        absence={
            "after": "order.created",
            "expect": "payment.received",
            "match_on": "orderId",
            "within": "1h",
        },
        actions=[{"type": "create_task", "title": "chase {{ orderId }}"}],
    )
    result = _simulate(runner, tmp_path, draft)
    assert result["events"] == 5
    assert result["live"] is None
    assert result["draft"]["executions"] == 2
    assert result["draft"]["decisions"] == {"watching": 3, "answered": 1}
    assert (result["fired_by_both"], result["only_draft"], result["only_live"]) == (0, 2, 0)
