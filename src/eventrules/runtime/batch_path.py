"""A stream's records handled back to back without the event loop, until one needs it.

Compiled by mypyc (eventrules.native). A coroutine per record, with its ``try`` and the
attribution of outputs, cost the stream's interpreted loop about a sixth of the worker's main
thread; this loop does the same per record in compiled code and hands back to the stream
(``StreamLoop._handle_all``) only what must wait: a dead letter, a webhook, run state, a
record to be handled the careful way, or the end of its time slice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Container
from time import perf_counter
from typing import Any, Final

from eventrules.kafka.records import Record, record_of
from eventrules.kafka.sender import KafkaSender, Source

__all__ = ["CAREFUL", "DONE", "PENDING", "RAISED", "BatchStop", "handle_until_waiting"]

# Why handle_until_waiting stopped (BatchStop.why).
DONE: Final = 0  # every record up to ``index`` is handled: the end, or its time is up
CAREFUL: Final = 1  # the record at ``index`` is condemned or suspect: the stream's own way
RAISED: Final = 2  # handling the record at ``index`` raised ``exception``
PENDING: Final = 3  # the record at ``index`` is handled once ``rest`` is awaited


class BatchStop:
    """Where :func:`handle_until_waiting` stopped, and why."""

    def __init__(
        self,
        index: int,
        why: int,
        record: Record | None = None,
        rest: Awaitable[Any] | None = None,
        exception: Exception | None = None,
    ) -> None:
        self.index = index
        self.why = why
        self.record = record
        self.rest = rest
        self.exception = exception


def handle_until_waiting(
    messages: list[Any],
    start: int,
    handle_now: Callable[[Record], Awaitable[Any] | None],
    sender: KafkaSender,
    careful: tuple[Container[Source], Container[Source]],
    *,
    until: float,
) -> BatchStop:
    """Handle ``messages[start:]`` in order with ``handle_now`` while each finishes at once.

    ``careful`` holds the condemned and the suspect records' sources: those stop the loop.
    Stops as well, with the records before it handled, once ``perf_counter()`` passes
    ``until`` (the stream lets its web server answer). Each record's outputs are attributed
    to it (:meth:`KafkaSender.attribute_to`); the attribution of the record it stops at is
    left on for what the stream awaits, and cleared by the stream.
    """
    condemned, suspects = careful
    count = len(messages)
    index = start
    while index < count:
        record = record_of(messages[index])
        source = (record.topic, record.partition, record.offset)
        if source in condemned or source in suspects:
            return BatchStop(index, CAREFUL, record)
        sender.attribute_to(source)
        try:
            rest = handle_now(record)
        except Exception as exc:  # the stream dead-letters it: no record may stop the stream
            return BatchStop(index, RAISED, record, exception=exc)
        if rest is not None:
            return BatchStop(index, PENDING, record, rest=rest)
        index += 1
        if perf_counter() > until:
            break
    return BatchStop(index, DONE)
