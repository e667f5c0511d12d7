"""Shared by the runtime unit tests: a sender that collects what it is given."""

from __future__ import annotations

from typing import Any

import orjson


class Collect:
    """A :class:`~eventrules.runtime.deadletters.Sender` that keeps every record sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, Any]] = []

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Any = None
    ) -> None:
        self.sent.append((topic, key, value, headers))

    def to(self, topic: str) -> list[dict[str, Any]]:
        """The JSON values sent to ``topic``."""
        return [orjson.loads(v or b"") for t, _, v, _ in self.sent if t == topic]


class CollectNow(Collect):
    """:class:`Collect` that also takes records without awaiting, like a stream's
    :class:`~eventrules.kafka.sender.KafkaSender`: the runner takes its synchronous path."""

    def send_now(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Any = None
    ) -> None:
        self.sent.append((topic, key, value, headers))
