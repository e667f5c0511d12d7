"""/healthz tells the truth: a stream that has input waiting and makes no progress fails the
liveness probe after EVENTRULES_STALL_SECONDS, and passes again once it moves."""

from __future__ import annotations

import pytest

from integration.harness import Deployment, ids_of, order_workflow, wait_until

pytestmark = pytest.mark.integration


def test_healthz_fails_while_the_stream_is_stuck_with_input_waiting_and_recovers(
    deployment: Deployment,
) -> None:
    deployment.publish_definition(order_workflow("stuck"))
    worker = deployment.start_worker(EVENTRULES_STALL_SECONDS="4")
    worker.wait_ready()
    deployment.produce_orders(["free-1"])
    deployment.executions(until=lambda found: "free-1" in ids_of(found))
    assert worker.get("/healthz").status_code == 200

    # The dlq topic now refuses every dead letter (records over 64 bytes): a dead letter is
    # never given up on, so the poison event's batch is retried and nothing behind it commits.
    deployment.set_topic_config("dlq", "max.message.bytes", "64")
    deployment.produce("events.orders", b"not json at all" * 10, key=b"poison")
    deployment.produce_orders([f"stuck-{n}" for n in range(5)])
    wait_until(lambda: worker.get("/healthz").status_code == 503, timeout=60, what="503")
    body = worker.get("/healthz").json()
    assert body["status"] == "failing"
    assert worker.metric("eventrules_stream_stalled", stream="events") == 1

    deployment.set_topic_config("dlq", "max.message.bytes", "1048588")
    wanted = {f"stuck-{n}" for n in range(5)}
    deployment.executions(until=lambda found: wanted <= set(ids_of(found)), timeout=120)
    wait_until(lambda: worker.get("/healthz").status_code == 200, timeout=60, what="200 again")
    assert worker.process is not None
    assert worker.process.poll() is None, worker.log_tail()
