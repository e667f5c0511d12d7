"""Schedules on the real broker: two workers, one tick per period, each tick runs its workflow."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest

from integration.harness import Deployment

pytestmark = pytest.mark.integration

HEARTBEAT = {
    "kind": "workflow",
    "id": "heartbeat",
    "version": 1,
    "name": "Heartbeat",
    "trigger": "scheduled.daily",
    # croniter's sixth field is seconds: a period every 2 s instead of waiting for days
    "schedule": "* * * * * */2",
    "created_by": "tests",
    "actions": [{"type": "create_task", "title": "beat {{period_start}}", "assignee": "ops"}],
}


def _ticks(deployment: Deployment, until: Any) -> list[dict[str, Any]]:
    return deployment.read_json(
        "events.scheduled",
        until=lambda found: until([t for t in found if t["subject"] == "workflow:heartbeat"]),
        timeout=90,
    )


def test_two_workers_emit_exactly_one_tick_per_period_across_a_leader_stop(
    deployment: Deployment,
) -> None:
    deployment.publish_definition(HEARTBEAT)
    first, second = deployment.start_worker(), deployment.start_worker()
    first.wait_ready()
    second.wait_ready()

    found = _ticks(deployment, lambda ticks: len(ticks) >= 4)
    heartbeat = [t for t in found if t["subject"] == "workflow:heartbeat"]
    # the leader may stop now: the other worker takes over the schedule
    first.stop()
    found = _ticks(deployment, lambda ticks: len(ticks) >= len(heartbeat) + 3)
    heartbeat = [t for t in found if t["subject"] == "workflow:heartbeat"]

    ids = Counter(t["id"] for t in heartbeat)
    assert [tick_id for tick_id, n in ids.items() if n > 1] == [], "a period ticked twice"
    assert all(t["type"] == "scheduled.daily" for t in heartbeat)
    assert all(t["data"]["workflow_id"] == "heartbeat" for t in heartbeat)
    starts = [t["data"]["period_start"] for t in heartbeat]
    assert starts == sorted(starts), "ticks are emitted in period order"
    assert all(t["id"] == f"tick:workflow:heartbeat:{t['data']['period_start']}" for t in heartbeat)

    executions = deployment.executions(
        until=lambda records: (
            {t["id"] for t in heartbeat} <= {r["trigger_event_id"] for r in records}
        ),
        timeout=60,
    )
    runs = Counter(r["trigger_event_id"] for r in executions if r["workflow_id"] == "heartbeat")
    assert all(runs[t["id"]] == 1 for t in heartbeat), runs
    # built-in daily/weekly/monthly schedules recorded a baseline but emitted no tick
    assert {t["subject"] for t in found} == {"workflow:heartbeat"}
    state = deployment.read(
        "scheduler-state", until=lambda records: len({r.key() for r in records}) >= 4
    )
    assert {r.key() for r in state} >= {b"daily", b"weekly", b"monthly", b"workflow:heartbeat"}
    assert orjson.loads(state[-1].value())["period_start"]
