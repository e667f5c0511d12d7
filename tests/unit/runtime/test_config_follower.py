"""The config follower outlives any record: one that makes the table raise is rejected."""

from __future__ import annotations

from typing import Any

from eventrules.metrics import Metrics
from eventrules.runtime.config_follower import ConfigFollower


class ExplodingTable:
    def __init__(self) -> None:
        self.metrics = Metrics.create()
        self.applied: list[Any] = []

    def apply(self, key: bytes | None, value: bytes | None, headers: Any = None) -> None:
        if value == b"boom":
            raise RecursionError("maximum recursion depth exceeded")
        self.applied.append(key)


class Message:
    def __init__(self, key: bytes, value: bytes) -> None:
        self._key, self._value = key, value

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def offset(self) -> int:
        return 7

    def headers(self) -> list[tuple[str, bytes]]:
        return []


def test_a_record_that_makes_the_table_raise_is_rejected_and_the_next_applied() -> None:
    table = ExplodingTable()
    follower = ConfigFollower(table, topic="config", client_config={})  # type: ignore[arg-type]
    follower._apply(Message(b"workflow:a", b"boom"))  # type: ignore[arg-type]
    follower._apply(Message(b"workflow:b", b"{}"))  # type: ignore[arg-type]
    assert table.applied == [b"workflow:b"]
    rejected = table.metrics.config_rejects.labels("unknown", "internal_error")._value.get()
    assert rejected == 1
