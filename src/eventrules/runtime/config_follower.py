"""Follows the config topic: every worker reads ALL its partitions from the start (no consumer
group, so no share of it) and keeps following, so a change reaches every worker.

The ready gate opens once the table has caught up to the end offsets seen at start-up.

**Guarding the topic.** Compaction keeps only a key's latest record; if that record is one the
table rejected (invalid, unsigned, stale), a worker started after compaction would not hold the
version the running ones hold. So the one worker that ``leads`` (the scheduler group's leader)
republishes, byte for byte with its signature headers, the last accepted record of every key
whose latest record was rejected. Every worker accepts the republished record as unchanged, and
the topic's latest record for the key is again one the fleet accepts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, cast

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from eventrules.errors import TopicError
from eventrules.kafka.clients import consumer_config, private_group, producer_config, watermarks
from eventrules.kafka.records import Headers
from eventrules.runtime.config_table import ConfigTable

__all__ = ["ConfigFollower"]

log = logging.getLogger(__name__)

_OFFSET_BEGINNING = -2


class ConfigFollower:
    def __init__(
        self,
        table: ConfigTable,
        *,
        topic: str,
        client_config: dict[str, Any],
        ready: asyncio.Event | None = None,
        on_ready: Callable[[], None] = lambda: None,
        leads: Callable[[], bool] = lambda: False,
        on_restore: Callable[[str], None] = lambda kind: None,
    ) -> None:
        self.table = table
        self.on_ready = on_ready
        self.topic = topic
        self.client_config = client_config
        self.ready = ready or asyncio.Event()
        self.leads = leads
        self.on_restore = on_restore
        self._stopping = False
        self._producer: Producer | None = None
        # keys republished and not yet read back: not sent twice
        self._restoring: set[bytes] = set()

    def stop(self) -> None:
        self._stopping = True

    def _open(self) -> tuple[Consumer, dict[int, int]]:
        # Never used to commit: assign() reads everything, whoever else runs.
        consumer = Consumer(consumer_config(self.client_config, private_group("config")))
        for _ in range(120):
            info = consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
            if info is not None and info.error is None and info.partitions:
                break
            log.warning("config topic %s not found yet; run `eventrules topics apply`", self.topic)
        else:
            consumer.close()
            raise TopicError(f"config topic {self.topic} does not exist", topic=self.topic)
        partitions = sorted(info.partitions)
        ends = {
            p: watermarks(consumer, TopicPartition(self.topic, p), timeout=60)[1]
            for p in partitions
        }
        consumer.assign([TopicPartition(self.topic, p, _OFFSET_BEGINNING) for p in partitions])
        return consumer, ends

    def _apply(self, message: Message) -> None:
        # ConfigTable.apply rejects bad content itself; this is the last line of defence, so
        # that no record can stop the follower (and with it the ready gate).
        key = message.key()
        self._restoring.discard(key or b"")
        try:
            self.table.apply(key, message.value(), cast(Headers, message.headers() or []))
        except Exception:
            log.exception("config: the record at offset %s was rejected", message.offset())
            if self.table.metrics is not None:
                self.table.metrics.config_rejects.labels("unknown", "internal_error").inc()

    def _caught_up(self, consumer: Consumer, ends: dict[int, int]) -> bool:
        positions = consumer.position([TopicPartition(self.topic, p) for p in ends])
        # A position below 0 means "nothing read yet": caught up only if the partition is empty.
        return all((tp.offset if tp.offset >= 0 else 0) >= ends[tp.partition] for tp in positions)

    def _restore(self, keys: list[bytes]) -> None:
        """Republish the last accepted record of ``keys`` (their latest record was rejected)."""
        if self._producer is None:
            self._producer = Producer(producer_config(self.client_config))
        for key in keys:
            record = self.table.accepted[key]
            self._producer.produce(
                self.topic, key=record.key, value=record.value, headers=list(record.headers)
            )
        remaining = self._producer.flush(30)
        if remaining:
            log.warning("config guard: %d republished record(s) undelivered; retrying", remaining)
            self._restoring.difference_update(keys)
            return
        for key in keys:
            self.on_restore(key.decode(errors="replace").partition(":")[0])
        log.warning(
            "config guard: republished the last accepted version of %s after a rejected record",
            ", ".join(key.decode(errors="replace") for key in keys),
        )

    async def run(self) -> None:
        """Read the config topic until :meth:`stop`."""
        consumer, ends = await asyncio.to_thread(self._open)
        log.info("config: catching up on %s to %s", self.topic, ends)
        try:
            while not self._stopping:
                if not self.ready.is_set() and await asyncio.to_thread(
                    self._caught_up, consumer, ends
                ):
                    self.on_ready()
                    log.info("config: ready after %d config records", self.table.applied)
                    self.ready.set()
                messages = await asyncio.to_thread(consumer.consume, 2000, 0.2)
                for message in messages:
                    if message.error() is None:
                        self._apply(message)
                if messages and not self.ready.is_set():
                    self.table.settle()
                pending = sorted(self.table.rejected_latest - self._restoring)
                if pending and self.ready.is_set() and self.leads():
                    self._restoring.update(pending)
                    await asyncio.to_thread(self._restore, pending)
        finally:
            await asyncio.to_thread(self._close, consumer)

    def _close(self, consumer: Consumer) -> None:
        if self._producer is not None:
            self._producer.flush(10)
        consumer.close()
