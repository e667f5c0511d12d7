"""The worker's log on a normal run: JSON lines (its stderr is not a terminal), no warnings,
librdkafka's lines among them rather than raw ``%4|...`` lines, and fields on the lines
about one event."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import orjson
import pytest

from integration.harness import Deployment, WorkerProcess, order_workflow, wait_until

pytestmark = pytest.mark.integration


def _lines(worker: WorkerProcess) -> tuple[list[dict[str, Any]], list[str]]:
    """The log's JSON lines, and every other line."""
    entries: list[dict[str, Any]] = []
    others: list[str] = []
    for line in worker.log_path.read_text(errors="replace").splitlines():
        try:
            entries.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            others.append(line)
    return entries, others


def test_a_normal_start_and_a_processed_event_log_no_warning(deployment: Deployment) -> None:
    deployment.publish_definition(order_workflow())
    worker = deployment.start_worker()  # --loglevel info
    worker.wait_ready()
    deployment.produce_orders(["log-1"])
    deployment.executions(until=lambda found: len(found) == 1)
    wait_until(
        lambda: (
            worker.metric("eventrules_executions_total", workflow="count-orders", status="success")
            == 1
        ),
        what="the execution counted",
    )

    entries, others = _lines(worker)
    # every line is JSON: no raw librdkafka "%4|..." lines, no plain banner
    assert [line for line in others if line.strip()] == []
    assert any(e["message"].startswith("eventrules worker ") for e in entries)
    assert any(e["message"].startswith("worker ") for e in entries)
    loud = [e for e in entries if e["level"] not in ("DEBUG", "INFO")]
    assert loud == [], loud
    assert {e.get("process") for e in entries} <= {None, "stats"}

    # a poison event is a warning, with the record's place as fields
    deployment.produce("events.orders", b"not json", key=b"k")
    wait_until(
        lambda: any(e["level"] == "WARNING" for e in _lines(worker)[0]), what="the dead letter"
    )
    (warning,) = [e for e in _lines(worker)[0] if e["level"] == "WARNING"]
    assert warning["logger"] == "eventrules.runtime.deadletters"
    assert warning["topic"] == deployment.topic("events.orders")
    assert warning["reason"] == "not_json"
    assert isinstance(warning["offset"], int)


def test_cli_commands_print_no_warnings(deployment: Deployment) -> None:
    deployment.publish_definition(order_workflow())
    for command in (["topics", "list"], ["config", "list"], ["executions", "list"]):
        done = subprocess.run(
            [sys.executable, "-m", "eventrules", *command],
            env=deployment.env(),
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        # librdkafka's lines (raw "%4|..." before) would land on stderr, as would warnings
        assert done.stderr.decode().strip() == "", command
