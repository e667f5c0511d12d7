"""Per-workflow statistics (the seed's run count, last run, success/failure counts, average
duration), folded from the executions log into the compacted ``workflow-stats`` topic.

Executions are keyed by workflow id, so one partition holds a workflow's whole history and the
group member owning it owns that workflow's stats. Each snapshot records the executions offset
it has folded, so a batch replayed after a crash is not counted twice; the snapshot topic is
what survives restarts and what ``eventrules workflows stats`` reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec
import orjson
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from eventrules.kafka.clients import consumer_config, producer_config, read_to_end

__all__ = ["ExecutionSummary", "StatsKeeper", "fold_stats", "read_stats"]

log = logging.getLogger(__name__)


class ExecutionSummary(msgspec.Struct):
    """The fields of an execution record the stats fold. Decoding only these, typed, skips
    the rest of the record unread: building whole records as dicts (orjson) cost the keeper
    several times more CPU, on a machine whose cores the worker needs. A record whose fields
    have other types (forged, or not an execution record) does not decode and is skipped."""

    workflow_id: str | None = None
    workflow_name: str | None = None
    status: str | None = None
    executed_at: str = ""
    # a forged record must not make the average meaningless (or raise): bounded, finite
    duration_ms: Annotated[float, msgspec.Meta(ge=0, le=1e12)] = 0.0


decode_summary = msgspec.json.Decoder(ExecutionSummary).decode


def fold_stats(
    current: dict[str, Any] | None,
    executions: list[ExecutionSummary],
    *,
    partition: int,
    offset: int,
) -> dict[str, Any] | None:
    """The stats after ``executions`` (in log order, the last at ``offset``), or None when that
    offset was already folded. Folding a batch at once costs one update per workflow."""
    stats = dict(current or {})
    if stats.get("source_partition") == partition and offset <= stats.get("source_offset", -1):
        return None
    runs = int(stats.get("run_count", 0))
    total = float(stats.get("total_duration_ms", 0.0))
    counts = {
        status: int(stats.get(f"{status}_count", 0)) for status in ("success", "failed", "partial")
    }
    last_run = str(stats.get("last_run") or "")
    last = executions[-1]
    for execution in executions:
        runs += 1
        total += execution.duration_ms
        status = execution.status
        if status in counts:
            counts[status] += 1
        last_run = max(last_run, execution.executed_at)
    stats.update(
        workflow_id=last.workflow_id,
        workflow_name=last.workflow_name,
        run_count=runs,
        success_count=counts["success"],
        failure_count=counts["failed"],
        partial_count=counts["partial"],
        last_run=last_run,
        last_status=last.status,
        total_duration_ms=round(total, 3),
        average_duration_ms=round(total / runs, 3),
        source_partition=partition,
        source_offset=offset,
    )
    return stats


def read_stats(client_config: dict[str, Any], topic: str) -> dict[str, dict[str, Any]]:
    """The latest snapshot of every workflow's stats."""
    table: dict[str, dict[str, Any]] = {}
    for message in read_to_end(client_config, topic):
        key = (message.key() or b"").decode(errors="replace")
        value = message.value()
        if value is None:
            table.pop(key, None)
            continue
        try:
            table[key] = orjson.loads(value)
        except orjson.JSONDecodeError:
            log.warning("ignoring a stats record that is not JSON at offset %s", message.offset())
    return table


@dataclass
class StatsKeeper:
    """Folds the executions topic into snapshots; runs in its own process (stats_process.py).

    ``on_change`` receives each snapshot written, so the parent worker can serve this member's
    share of the table.
    """

    client_config: dict[str, Any]
    group_id: str
    executions_topic: str
    stats_topic: str
    on_change: Callable[[str, dict[str, Any]], None] = lambda workflow_id, stats: None
    # told how many records of a window were skipped (the worker counts them as incidents)
    on_skipped: Callable[[int], None] = lambda count: None
    session_timeout_ms: int = 10_000
    window_seconds: float = 1.0
    max_window: int = 20_000
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    # records of the executions topic that are not execution records (not counted)
    skipped: int = 0

    def __post_init__(self) -> None:
        self.producer = Producer(producer_config(self.client_config))
        self.consumer = Consumer(
            consumer_config(
                self.client_config,
                self.group_id,
                session_timeout_ms=self.session_timeout_ms,
                # Stats are not urgent: fewer, fuller fetches (a fetch answered per trickle of
                # records cost the broker more CPU than the event stream itself).
                extra={"fetch.min.bytes": 256 * 1024, "fetch.wait.max.ms": 1000},
            )
        )

    def _restore(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Snapshots are few (one per workflow): reload them all on every assignment.
        self.stats = read_stats(self.client_config, self.stats_topic)

    def run(self, stopping: Callable[[], bool]) -> None:
        """Fold until ``stopping()``; then commit what was folded and leave the group."""
        self.consumer.subscribe([self.executions_topic], on_assign=self._restore)
        try:
            while not stopping():
                batch = self._gather(stopping)
                if batch:
                    self._fold(batch)
        finally:
            self.producer.flush(10)
            self.consumer.close()

    def _gather(self, stopping: Callable[[], bool]) -> list[Message]:
        """The records of one fold window: ``window_seconds`` from the first, or ``max_window``.

        One snapshot per workflow per window: with many workflows, folding every few hundred
        records wrote almost a snapshot (and a commit) per execution.
        """
        batch: list[Message] = []
        deadline: float | None = None
        while len(batch) < self.max_window and not stopping():
            wait = 0.5 if deadline is None else deadline - time.monotonic()
            if wait <= 0:
                break
            messages = self.consumer.consume(500, wait)
            batch.extend(m for m in messages if m.error() is None)
            if batch and deadline is None:
                deadline = time.monotonic() + self.window_seconds
            elif not batch:
                break
        return batch

    def _fold(self, batch: list[Message]) -> None:
        skipped = self.skipped
        # Per workflow: its executions of this batch, and where the last of them is.
        pending: dict[str, tuple[list[ExecutionSummary], int, int]] = {}
        for message in batch:
            workflow_id = (message.key() or b"").decode(errors="replace")
            partition, offset = message.partition() or 0, message.offset() or 0
            current = self.stats.get(workflow_id)
            if (
                current is not None
                and current.get("source_partition") == partition
                and offset <= current.get("source_offset", -1)
            ):
                continue  # folded before a crash or rebalance replayed it
            try:
                execution = decode_summary(message.value() or b"")
            except (msgspec.DecodeError, RecursionError):  # not an execution record
                self.skipped += 1
                continue
            executions, _, _ = pending.setdefault(workflow_id, ([], partition, offset))
            executions.append(execution)
            pending[workflow_id] = (executions, partition, offset)
        if self.skipped > skipped:
            log.warning(
                "skipped %d record(s) of %s that are not execution records (%d in all)",
                self.skipped - skipped,
                self.executions_topic,
                self.skipped,
            )
            self.on_skipped(self.skipped - skipped)
        for workflow_id, (executions, partition, offset) in pending.items():
            updated = fold_stats(
                self.stats.get(workflow_id), executions, partition=partition, offset=offset
            )
            if updated is None:
                continue
            self.stats[workflow_id] = updated
            self.on_change(workflow_id, updated)
            self.producer.produce(
                self.stats_topic, key=workflow_id.encode(), value=orjson.dumps(updated)
            )
        # Snapshots first, offsets second: a crash in between replays records the snapshots
        # already hold, and they are skipped by offset.
        if self.producer.flush(60) == 0:
            self.consumer.commit(asynchronous=False)
