"""The stats keeper in a child process of the worker.

Folding every execution record is pure Python work; in the worker's process it competed with
the event stream for the GIL and slowed it several times over while it caught up. As a child
process it uses another core. The child reads its settings as JSON on stdin, writes each
snapshot it publishes as a JSON line on stdout (the parent serves them on /workflows/stats),
stops on SIGTERM, and exits by itself if the worker that started it is gone.

    python -m eventrules.runtime.stats_process   # started by the worker, not by hand
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from eventrules.logs import configured, setup_logging
from eventrules.runtime.stats import StatsKeeper

__all__ = ["StatsProcess"]

log = logging.getLogger(__name__)

RESTART_DELAY_SECONDS = 2.0


@dataclass
class StatsProcess:
    """Runs, supervises and stops the child; ``stats`` is the share of the table it folds."""

    client_config: dict[str, Any]
    group_id: str
    executions_topic: str
    stats_topic: str
    session_timeout_ms: int = 10_000
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    restarts: int = 0
    # told what the keeper had to do to keep going: "restarted", "skipped_record" (once per
    # record of the executions topic that is not an execution record)
    on_event: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        self._stopping = False
        self._child: subprocess.Popen[bytes] | None = None

    def stopping(self) -> bool:
        return self._stopping

    def stop(self) -> None:
        self._stopping = True
        self._signal(signal.SIGTERM)

    def _signal(self, signum: int) -> None:
        child = self._child
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    async def run(self) -> None:
        """Keep a child running until :meth:`stop`; a child that dies is started again."""
        try:
            while not self.stopping():
                code = await asyncio.to_thread(self._run_child)
                if self.stopping():
                    break
                self.restarts += 1
                self._count("restarted")
                log.error("the stats keeper exited with %s; restarting it", code)
                await asyncio.sleep(RESTART_DELAY_SECONDS)
        finally:
            await asyncio.to_thread(self._reap)

    def _run_child(self) -> int:
        """Start a child, relay its snapshots until it exits; returns its exit code."""
        child = self._child = subprocess.Popen(
            [sys.executable, "-m", "eventrules.runtime.stats_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        if self.stopping():  # stop() came while it started
            child.send_signal(signal.SIGTERM)
        assert child.stdin is not None  # noqa: S101 - PIPEs above
        assert child.stdout is not None  # noqa: S101
        # The settings (with any SASL password) go over a pipe, never on the command line.
        with contextlib.suppress(BrokenPipeError):
            child.stdin.write(
                orjson.dumps(
                    {
                        "client_config": self.client_config,
                        "group_id": self.group_id,
                        "executions_topic": self.executions_topic,
                        "stats_topic": self.stats_topic,
                        "session_timeout_ms": self.session_timeout_ms,
                        "parent_pid": os.getpid(),
                        # the child logs like its worker: same level, same format
                        "log": configured(),
                    }
                )
            )
            child.stdin.close()
        for line in child.stdout:
            with contextlib.suppress(orjson.JSONDecodeError, ValueError, TypeError):
                message = orjson.loads(line)
                if isinstance(message, dict):  # {"skipped": n}: records it could not fold
                    for _ in range(min(int(message["skipped"]), 1_000_000)):
                        self._count("skipped_record")
                    continue
                workflow_id, snapshot = message
                self.stats[workflow_id] = snapshot
        return child.wait()

    def _count(self, kind: str) -> None:
        if self.on_event is not None:
            self.on_event(kind)

    def _reap(self) -> None:
        child = self._child
        if child is None:
            return
        self._signal(signal.SIGTERM)
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            log.error("the stats keeper did not stop within 20s; killing it")
            child.kill()
            child.wait(5)


def _write_snapshot(out: IO[bytes], workflow_id: str, stats: dict[str, Any]) -> None:
    out.write(orjson.dumps([workflow_id, stats]) + b"\n")
    out.flush()


def _write_skipped(out: IO[bytes], count: int) -> None:
    out.write(orjson.dumps({"skipped": count}) + b"\n")
    out.flush()


def _child_main() -> None:
    settings = orjson.loads(sys.stdin.buffer.read())
    level, log_format = settings.get("log") or ("INFO", "auto")
    setup_logging(level, log_format=log_format, tag="stats")
    # Stats may lag a little; the event stream must not: on a busy machine the scheduler
    # gives our CPU time to the worker first.
    os.nice(10)
    parent = int(settings["parent_pid"])
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    # Ctrl-C reaches the whole process group: the worker decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = sys.stdout.buffer
    keeper = StatsKeeper(
        settings["client_config"],
        settings["group_id"],
        settings["executions_topic"],
        settings["stats_topic"],
        on_change=lambda workflow_id, stats: _write_snapshot(out, workflow_id, stats),
        on_skipped=lambda count: _write_skipped(out, count),
        session_timeout_ms=int(settings["session_timeout_ms"]),
    )
    # An orphan (the worker was SIGKILLed) must not keep a group membership of its own.
    keeper.run(lambda: stopping or os.getppid() != parent)


if __name__ == "__main__":
    _child_main()
