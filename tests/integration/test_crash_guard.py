"""The crash-loop guard against a real broker: a record that kills the worker process outright
(what no exception handler can catch: an OOM kill, a segfault) is dead-lettered with reason
``crash_loop`` on the third start instead of being handled a third time, and every other
record is processed.

The crash is real: a ``sitecustomize`` module on the worker's PYTHONPATH wraps the runner so
that a record carrying ``CRASH-ME`` ends the process with ``os._exit`` (no cleanup, no commit,
no flush), like the kernel's OOM killer would.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from integration.harness import Deployment, cloudevent, ids_of, order_workflow, wait_until

pytestmark = pytest.mark.integration

# The events stream hands records to WorkflowRunner.handle_now (and awaits handle elsewhere):
# the record dies in whichever gets it.
_SITECUSTOMIZE = """
import os

from eventrules.runtime import runner

_handle = runner.WorkflowRunner.handle
_handle_now = runner.WorkflowRunner.handle_now


def _die_on(record):
    if record.value and b"CRASH-ME" in record.value:
        with open(os.environ["CRASH_LOG"], "a") as log:
            log.write(f"{record.offset}\\n")
        os._exit(137)


async def handle(self, record):
    _die_on(record)
    return await _handle(self, record)


def handle_now(self, record):
    _die_on(record)
    return _handle_now(self, record)


runner.WorkflowRunner.handle = handle
runner.WorkflowRunner.handle_now = handle_now
"""


def test_a_record_that_kills_the_worker_twice_is_dead_lettered_as_a_crash_loop(
    deployment: Deployment, tmp_path: Path
) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    crash_log = tmp_path / "crashes.log"
    env = {"PYTHONPATH": str(hooks), "CRASH_LOG": str(crash_log)}
    deployment.publish_definition(order_workflow("survivors"))

    before = [f"before-{n}" for n in range(10)]
    after = [f"after-{n}" for n in range(10)]
    # One key: one partition, so the killer sits between the others in one ordered log.
    for event_id in before:
        deployment.produce("events.orders", orjson.dumps(_order(event_id)), key=b"one")
    deployment.produce("events.orders", orjson.dumps(_order("killer", "CRASH-ME")), key=b"one")
    for event_id in after:
        deployment.produce("events.orders", orjson.dumps(_order(event_id)), key=b"one")

    for start in (1, 2):
        worker = deployment.start_worker(**env)
        assert worker.process is not None
        assert worker.process.wait(120) == 137, worker.log_tail()
        assert len(crash_log.read_text().splitlines()) == start

    worker = deployment.start_worker(**env)
    worker.wait_ready()
    wanted = set(before + after)
    executions = deployment.executions(until=lambda found: wanted <= set(ids_of(found)))
    assert set(ids_of(executions)) == wanted
    dead = deployment.read("dlq", until=lambda found: len(found) >= 1)
    assert len(dead) == 1
    headers = {name: (value or b"").decode() for name, value in dead[0].headers() or []}
    assert headers["dlq.reason"] == "crash_loop"
    assert "CRASH-ME" in dead[0].value().decode()
    assert len(crash_log.read_text().splitlines()) == 2, "never handled a third time"
    wait_until(
        lambda: (
            worker.metric("eventrules_stream_incidents_total", stream="events", kind="condemned")
            == 1
        ),
        what="the condemned record counted",
    )
    assert worker.process is not None
    assert worker.process.poll() is None, worker.log_tail()
    assert worker.get("/healthz").status_code == 200


def _order(event_id: str, note: str = "") -> dict[str, object]:
    return cloudevent("order.created", {"orderId": event_id, "note": note}, event_id=event_id)


def test_a_clean_restart_is_not_taken_for_a_crash(deployment: Deployment) -> None:
    deployment.publish_definition(order_workflow("calm"))
    worker = deployment.start_worker()
    worker.wait_ready()
    deployment.produce_orders(["calm-1"])
    deployment.executions(until=lambda found: "calm-1" in ids_of(found))
    worker.stop()
    worker = deployment.start_worker()
    worker.wait_ready()
    deployment.produce_orders(["calm-2"])
    deployment.executions(until=lambda found: "calm-2" in ids_of(found))
    assert (
        worker.metric(
            "eventrules_stream_incidents_total", stream="events", kind="careful_partition"
        )
        == 0
    ), "a clean hand-over leaves no partition careful"
