"""Per-workflow statistics (the seed's run count, last run, success/failure counts, average
duration), folded from the executions log into the compacted ``workflow-stats`` topic.

Executions are keyed by workflow id, so one partition holds a workflow's whole history and the
group member owning it owns that workflow's stats. Each snapshot records the executions offset
it has folded, so a batch replayed after a crash is not counted twice; the snapshot topic is
what survives restarts and what ``eventrules workflows stats`` reads.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from eventrules.kafka_io import read_to_end

__all__ = ["StatsKeeper", "read_stats", "update_stats"]

log = logging.getLogger(__name__)


def update_stats(
    current: dict[str, Any] | None, execution: dict[str, Any], *, partition: int, offset: int
) -> dict[str, Any] | None:
    """The stats after one more execution record, or None when it was already folded."""
    stats = dict(current or {})
    if stats.get("source_partition") == partition and offset <= stats.get("source_offset", -1):
        return None
    status = execution.get("status")
    duration = float(execution.get("duration_ms") or 0.0)
    runs = int(stats.get("run_count", 0)) + 1
    total = float(stats.get("total_duration_ms", 0.0)) + duration
    stats.update(
        workflow_id=execution.get("workflow_id"),
        workflow_name=execution.get("workflow_name"),
        run_count=runs,
        success_count=int(stats.get("success_count", 0)) + (status == "success"),
        failure_count=int(stats.get("failure_count", 0)) + (status == "failed"),
        partial_count=int(stats.get("partial_count", 0)) + (status == "partial"),
        last_run=max(str(stats.get("last_run") or ""), str(execution.get("executed_at") or "")),
        last_status=status,
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
    client_config: dict[str, Any]
    group_id: str
    executions_topic: str
    stats_topic: str
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stopping = False
        self.producer = Producer({**self.client_config, "enable.idempotence": True, "acks": "all"})
        self.consumer = Consumer(
            {
                **self.client_config,
                "group.id": self.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
            }
        )

    def _restore(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Snapshots are few (one per workflow): reload them all on every assignment.
        self.stats = read_stats(self.client_config, self.stats_topic)

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> None:
        self.consumer.subscribe([self.executions_topic], on_assign=self._restore)
        try:
            while not self._stopping:
                messages = await asyncio.to_thread(self.consumer.consume, 500, 0.5)
                batch = [m for m in messages if m.error() is None]
                if batch:
                    await asyncio.to_thread(self._fold, batch)
        finally:
            await asyncio.to_thread(self._close)

    def _close(self) -> None:
        self.producer.flush(10)
        self.consumer.close()

    def _fold(self, batch: list[Message]) -> None:
        changed: set[str] = set()
        for message in batch:
            workflow_id = (message.key() or b"").decode(errors="replace")
            try:
                execution = orjson.loads(message.value() or b"")
            except orjson.JSONDecodeError:
                continue
            if not isinstance(execution, dict):
                continue
            updated = update_stats(
                self.stats.get(workflow_id),
                execution,
                partition=message.partition() or 0,
                offset=message.offset() or 0,
            )
            if updated is not None:
                self.stats[workflow_id] = updated
                changed.add(workflow_id)
        for workflow_id in changed:
            self.producer.produce(
                self.stats_topic,
                key=workflow_id.encode(),
                value=orjson.dumps(self.stats[workflow_id]),
            )
        # Snapshots first, offsets second: a crash in between replays records the snapshots
        # already hold, and update_stats skips them by offset.
        if self.producer.flush(60) == 0:
            self.consumer.commit(asynchronous=False)
