"""Which producer can trigger which workflow, on the real broker: a trigger only from its own
topic, schedule ticks only from the scheduler."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from integration.harness import Deployment, cloudevent, ids_of

pytestmark = pytest.mark.integration

SECRET = "0123456789abcdef0123456789abcdef-test-only"


def _workflow(workflow_id: str, trigger: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "workflow",
        "id": workflow_id,
        "version": 1,
        "name": workflow_id,
        "trigger": trigger,
        "created_by": "tests",
        "actions": [{"type": "suspend_user", "user_id": "{{userId}}", "reason": "test"}],
        **extra,
    }


def test_events_trigger_workflows_only_from_their_topics_and_ticks_only_from_the_scheduler(
    deployment: Deployment,
) -> None:
    deployment.publish_definition(_workflow("suspend-new-users", "user.registered"))
    # a cron workflow that must never run before next New Year
    deployment.publish_definition(
        _workflow("yearly-purge", "scheduled.monthly", schedule="0 0 1 1 *")
    )
    # and one the scheduler ticks every 2 seconds: signed ticks do run
    deployment.publish_definition(
        _workflow("heartbeat", "scheduled.daily", schedule="* * * * * */2")
        | {"actions": [{"type": "create_task", "title": "beat", "assignee": "ops"}]}
    )
    worker = deployment.start_worker(EVENTRULES_SCHEDULER_SECRET=SECRET)
    worker.wait_ready()

    # A producer allowed on events.reviews sends a user.registered event there...
    mismatched = cloudevent("user.registered", {"userId": "u-1"}, event_id="wrong-topic")
    deployment.produce("events.reviews", orjson.dumps(mismatched))
    # ...and a forged tick addressed to the cron workflow.
    forged = cloudevent(
        "scheduled.monthly",
        {"schedule": "workflow:yearly-purge", "workflow_id": "yearly-purge"},
        event_id="tick:workflow:yearly-purge:2026-01-01T00:00:00+00:00",
        subject="workflow:yearly-purge",
    )
    deployment.produce("events.scheduled", orjson.dumps(forged), key=b"workflow:yearly-purge")
    # The same event on its own topic runs.
    allowed = cloudevent("user.registered", {"userId": "u-2"}, event_id="right-topic")
    deployment.produce("events.users", orjson.dumps(allowed))

    dead = deployment.read("dlq", until=lambda found: len(found) >= 2)
    reasons = {r.value(): dict(r.headers() or [])["dlq.reason"] for r in dead}
    assert reasons == {
        orjson.dumps(mismatched): b"topic_mismatch",
        orjson.dumps(forged): b"forged_tick",
    }
    runs = deployment.executions(
        until=lambda found: "right-topic" in ids_of(found) and ids_of(found, "heartbeat")
    )
    assert ids_of(runs, "suspend-new-users") == ["right-topic"]
    assert ids_of(runs, "yearly-purge") == []
    assert worker.metric("eventrules_events_dead_lettered_total", reason="topic_mismatch") == 1
    assert worker.metric("eventrules_events_dead_lettered_total", reason="forged_tick") == 1
