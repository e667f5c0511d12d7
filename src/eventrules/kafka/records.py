"""The parts of a consumed Kafka record that processing needs, independent of the client."""

from __future__ import annotations

from typing import NamedTuple

from eventrules.models.cloudevents import Headers

__all__ = ["Headers", "Record"]


class Record(NamedTuple):
    """One consumed record (a tuple: built per event on the hot path)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int | None = None
