"""Consumer lag of the event stream, as a gauge per assigned partition."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from confluent_kafka import TopicPartition

from eventrules.metrics import Metrics
from eventrules.runtime.stream import StreamLoop

__all__ = ["LagReporter"]


class LagReporter:
    """Every ``interval`` seconds: refresh the worker's gauges and report each assigned
    partition's lag from the high watermark cached by the last fetch."""

    def __init__(
        self,
        stream: StreamLoop,
        metrics: Metrics,
        *,
        interval: float,
        refresh: Callable[[], None] = lambda: None,
    ) -> None:
        self.stream = stream
        self.metrics = metrics
        self.interval = interval
        self.refresh = refresh
        self._stopped = asyncio.Event()

    def stop(self) -> None:
        self._stopped.set()

    async def run(self) -> None:
        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self.interval)
            self.refresh()
            self.report()

    def report(self) -> None:
        stream = self.stream
        for (topic, partition), last in list(stream.last_offsets.items()):
            if (topic, partition) not in stream.assigned:
                # Moved to another worker: stop reporting a lag that is no longer ours.
                with contextlib.suppress(KeyError):
                    self.metrics.consumer_lag.remove(topic, str(partition))
                del stream.last_offsets[(topic, partition)]
                continue
            # The high watermark cached from the last fetch response: asking the broker
            # (cached=False) blocked the stream's consumer for seconds at a time.
            # (None or a negative offset before the first fetch of the partition.)
            watermarks: tuple[int, int] | None = stream.consumer.get_watermark_offsets(
                TopicPartition(topic, partition), cached=True
            )
            if watermarks is None or watermarks[1] < 0:
                continue
            high = watermarks[1]
            self.metrics.consumer_lag.labels(topic, str(partition)).set(max(0, high - last - 1))
