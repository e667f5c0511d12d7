"""The parts of a consumed Kafka record that processing needs, independent of the client.

Compiled by mypyc (eventrules.native): :func:`record_of` runs once per consumed record.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from eventrules.models.cloudevents import Headers

__all__ = ["Headers", "Record", "record_of"]


class Record(NamedTuple):
    """One consumed record (a tuple: built per event on the hot path)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int | None = None


def record_of(message: Any) -> Record:
    """The :class:`Record` of a confluent-kafka ``Message`` (``Any``: the stream's tests hand it
    fakes). A timestamp the broker did not set (kind 0, or not positive) is None."""
    kind, timestamp = message.timestamp()
    # tuple.__new__: the NamedTuple's own __new__ is a Python frame per record
    return _new_record(
        Record,
        (
            message.topic() or "",
            message.partition() or 0,
            message.offset() or 0,
            message.key(),
            message.value(),
            message.headers() or [],
            timestamp if kind and timestamp > 0 else None,
        ),
    )


_new_record = tuple.__new__
