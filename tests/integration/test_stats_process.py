"""The stats keeper runs as a child process of the worker: supervised, and never orphaned."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import orjson
from click.testing import CliRunner

from eventrules.cli.main import cli
from integration.harness import TEMPLATES, Deployment, WorkerProcess, cloudevent, wait_until


def _children(worker: WorkerProcess) -> list[int]:
    assert worker.process is not None
    # Children are listed per thread, and the keeper is started from a pool thread.
    tasks = Path(f"/proc/{worker.process.pid}/task").glob("*/children")
    return [int(child) for task in tasks for child in task.read_text().split()]


def _stats_child(worker: WorkerProcess) -> int:
    for child in _children(worker):
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"eventrules.runtime.stats_process" in cmdline:
            return child
    raise AssertionError("the worker has no stats keeper child")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


def _fire(deployment: Deployment, event_id: str) -> None:
    event = cloudevent("product.low_stock", {"productName": "P", "stock": 1}, event_id=event_id)
    deployment.produce("events.products", orjson.dumps(event))


def _run_count(worker: WorkerProcess) -> int:
    stats = worker.get("/workflows/stats").json()
    return int(stats.get("low-stock-alert", {}).get("run_count", 0))


def test_a_killed_stats_keeper_is_restarted_and_goes_on_folding(
    runner: CliRunner, deployment: Deployment
) -> None:
    applied = runner.invoke(
        cli, ["config", "apply", "--yes", "--as", "tests", "-f", str(TEMPLATES / "workflows")]
    )
    assert applied.exit_code == 0, applied.output
    worker = deployment.start_worker()
    worker.wait_ready()
    _fire(deployment, "stats-1")
    wait_until(lambda: _run_count(worker) == 1, timeout=60, what="the first run folded")

    first = _stats_child(worker)
    os.kill(first, signal.SIGKILL)
    wait_until(
        lambda: any(child != first for child in _children(worker)),
        timeout=30,
        what="a new stats keeper process",
    )
    _fire(deployment, "stats-2")
    wait_until(lambda: _run_count(worker) == 2, timeout=60, what="the restarted keeper to fold")
    assert worker.get("/healthz").status_code == 200
    assert "the stats keeper exited" in worker.log_tail(200)


def test_the_stats_keeper_exits_when_its_worker_is_killed(deployment: Deployment) -> None:
    worker = deployment.start_worker()
    worker.wait_ready()
    child = _stats_child(worker)
    worker.kill()
    # Orphaned, it notices within a poll interval and leaves its consumer group.
    wait_until(lambda: not _alive(child), timeout=30, what="the orphaned stats keeper to exit")


def test_a_record_the_keeper_cannot_fold_is_skipped_and_counted_not_a_crash(
    runner: CliRunner, deployment: Deployment
) -> None:
    """Anyone who can write to the executions topic can put anything there. Before, a
    duration that was not a number killed the keeper, and the restarted keeper died again on
    the same record; now such records are skipped, logged and counted, and the rest folds."""
    applied = runner.invoke(
        cli, ["config", "apply", "--yes", "--as", "tests", "-f", str(TEMPLATES / "workflows")]
    )
    assert applied.exit_code == 0, applied.output
    worker = deployment.start_worker()
    worker.wait_ready()
    keeper = _stats_child(worker)
    forged = [
        b'{"workflow_id": "low-stock-alert", "status": "success", "duration_ms": "abc"}',
        b"not json at all",
        b'{"workflow_id": "low-stock-alert", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    ]
    for value in forged:
        deployment.produce("executions", value, key=b"low-stock-alert")
    _fire(deployment, "stats-after-forged")
    wait_until(lambda: _run_count(worker) == 1, timeout=60, what="the real run folded")
    incidents = {"stream": "stats-keeper", "kind": "skipped_record"}
    wait_until(
        lambda: worker.metric("eventrules_stream_incidents_total", **incidents) == len(forged),
        timeout=30,
        what="the forged records counted",
    )
    assert _stats_child(worker) == keeper, "the keeper was not restarted"
    assert (
        worker.metric("eventrules_stream_incidents_total", stream="stats-keeper", kind="restarted")
        == 0
    )
    assert "that are not execution records" in worker.log_tail(200)
    assert worker.get("/healthz").status_code == 200
