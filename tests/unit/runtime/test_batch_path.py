"""Records handled back to back until one waits: where the loop stops, and what it hands back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest

from eventrules.kafka.records import Record
from eventrules.kafka.sender import KafkaSender
from eventrules.runtime.batch_path import CAREFUL, DONE, PENDING, RAISED, handle_until_waiting

from .test_stream import FakeMessage, FakeProducer, batch


def _sender() -> tuple[KafkaSender, FakeProducer]:
    producer = FakeProducer({})
    return KafkaSender(producer), producer  # type: ignore[arg-type]


def _attributed(producer: FakeProducer) -> list[int]:
    return [callback.source[2] for _, callback in producer.pending]


def _handler(sender: KafkaSender, *, waits: int = -1, raises: int = -1) -> tuple[Any, list[int]]:
    seen: list[int] = []

    async def later(record: Record) -> None:
        await sender.send("out", record.key, record.value)

    def handle_now(record: Record) -> Awaitable[None] | None:
        seen.append(record.offset)
        if record.offset == raises:
            raise ValueError("bad record")
        if record.offset == waits:
            return later(record)
        sender.send_now("out", record.key, record.value)
        return None

    return handle_now, seen


FAR = float("inf")
NOTHING: tuple[set[Any], set[Any]] = (set(), set())


def test_every_record_is_handled_at_once_and_attributed_to_its_input() -> None:
    sender, producer = _sender()
    handle_now, seen = _handler(sender)
    stop = handle_until_waiting(
        batch((0, 5), (1, 3), (0, 6)), 0, handle_now, sender, NOTHING, until=FAR
    )
    assert (stop.index, stop.why) == (3, DONE)
    assert seen == [5, 3, 6]
    assert _attributed(producer) == [5, 3, 6]


def test_the_loop_stops_at_a_record_that_waits_with_its_attribution_left_on() -> None:
    sender, producer = _sender()
    handle_now, seen = _handler(sender, waits=6)
    messages = batch((0, 5), (0, 6), (0, 7))
    stop = handle_until_waiting(messages, 0, handle_now, sender, NOTHING, until=FAR)
    assert (stop.index, stop.why) == (1, PENDING)
    assert stop.record is not None
    assert stop.record.offset == 6
    assert seen == [5, 6], "nothing after the waiting record is handled"
    assert stop.rest is not None
    asyncio.run(stop.rest)  # type: ignore[arg-type]
    assert _attributed(producer) == [5, 6]
    stop = handle_until_waiting(messages, 2, handle_now, sender, NOTHING, until=FAR)
    assert (stop.index, stop.why) == (3, DONE)
    assert _attributed(producer) == [5, 6, 7]


def test_a_record_that_raises_is_handed_back_with_its_exception() -> None:
    sender, _ = _sender()
    handle_now, seen = _handler(sender, raises=6)
    stop = handle_until_waiting(
        batch((0, 5), (0, 6), (0, 7)), 0, handle_now, sender, NOTHING, until=FAR
    )
    assert (stop.index, stop.why) == (1, RAISED)
    assert isinstance(stop.exception, ValueError)
    assert seen == [5, 6]


@pytest.mark.parametrize("which", ["condemned", "suspect"])
def test_condemned_and_suspect_records_are_left_to_the_stream_unhandled(which: str) -> None:
    sender, producer = _sender()
    handle_now, seen = _handler(sender)
    marked = {("events", 0, 6)}
    careful = (marked, set()) if which == "condemned" else (set(), marked)
    stop = handle_until_waiting(
        batch((0, 5), (0, 6), (0, 7)), 0, handle_now, sender, careful, until=FAR
    )
    assert (stop.index, stop.why) == (1, CAREFUL)
    assert seen == [5]
    assert _attributed(producer) == [5]


def test_past_its_time_slice_the_loop_stops_after_the_record_it_is_on() -> None:
    sender, _ = _sender()
    handle_now, seen = _handler(sender)
    messages: list[Any] = [FakeMessage("events", 0, offset) for offset in range(10)]
    stop = handle_until_waiting(messages, 4, handle_now, sender, NOTHING, until=0.0)
    assert (stop.index, stop.why) == (5, DONE), "one record per call: the stream yields between"
    assert seen == [4]
