"""Decoding is bounded: what decodes can be written back, what cannot is a poison event."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventrules.errors import EventLimitError, PoisonEventError
from eventrules.kafka.records import Record
from eventrules.limits import Limits, limits_applied
from eventrules.metrics import Metrics
from eventrules.models.cloudevents import decode_event, encode_structured
from eventrules.models.events import Event
from eventrules.models.workflows import parse_workflow
from eventrules.runtime.runner import WorkflowRunner
from eventrules.settings import TopicNames
from eventrules.workflows.engine import Engine


def deep_json(depth: int) -> bytes:
    """A JSON object ``depth`` levels deep (``{}`` is one level), written by hand: orjson
    itself cannot write past 254 levels."""
    return b'{"a":' * (depth - 1) + b'{"leaf":1}' + b"}" * (depth - 1)


def structured(data: bytes, **attributes: Any) -> bytes:
    envelope = {"specversion": "1.0", "id": "e1", "source": "s", "type": "order.created"}
    head = orjson.dumps({**envelope, **attributes})[:-1]
    return head + b',"data":' + data + b"}"


BINARY_HEADERS = [
    ("ce_specversion", b"1.0"),
    ("ce_id", b"e1"),
    ("ce_source", b"s"),
    ("ce_type", b"order.created"),
]


def test_an_event_nested_300_deep_is_poison_too_deep() -> None:
    data = deep_json(300)
    for value, headers in [(structured(data), None), (data, BINARY_HEADERS)]:
        with pytest.raises(EventLimitError) as caught:
            decode_event(value, headers)
        assert caught.value.reason == "too_deep"
        assert caught.value.limit == "max_json_depth"
        assert caught.value.maximum == 64


def test_the_depth_limit_counts_the_whole_value() -> None:
    # structured: the envelope is level 1, so data may nest 63 levels
    assert decode_event(structured(deep_json(63))).data is not None
    with pytest.raises(EventLimitError):
        decode_event(structured(deep_json(64)))
    # binary: the value is the data
    assert decode_event(deep_json(64), BINARY_HEADERS).data is not None
    with pytest.raises(EventLimitError):
        decode_event(deep_json(65), BINARY_HEADERS)


def test_the_depth_limit_follows_the_setting() -> None:
    with limits_applied(dataclasses.replace(Limits(), max_json_depth=3)):
        with pytest.raises(EventLimitError):
            decode_event(structured(b'{"a": {"b": [1]}}'))  # envelope, data, a, b: 4 levels
        assert decode_event(structured(b'{"a": {"b": 1}}')).data == {"a": {"b": 1}}
    assert decode_event(structured(b'{"a": {"b": [1]}}'), max_depth=4).data is not None


def test_an_oversized_event_is_a_limit_error_with_the_old_reason() -> None:
    with pytest.raises(EventLimitError) as caught:
        decode_event(structured(orjson.dumps({"x": "y" * 2000})), max_bytes=1000)
    assert caught.value.reason == "oversized"
    assert caught.value.limit == "max_event_bytes"


@pytest.mark.parametrize(
    "time",
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"],
)
def test_a_time_that_cannot_be_moved_to_utc_is_poison(time: str) -> None:
    with pytest.raises(PoisonEventError) as caught:
        decode_event(structured(b"{}", time=time))
    assert caught.value.reason == "invalid_attribute"
    assert "out of range" in caught.value.detail


def test_a_record_timestamp_out_of_range_is_poison_only_when_it_is_needed() -> None:
    far = 2**62
    with pytest.raises(PoisonEventError) as caught:
        decode_event(structured(b"{}"), timestamp_ms=far)
    assert caught.value.reason == "invalid_attribute"
    timed = decode_event(structured(b"{}", time="2026-01-01T00:00:00+00:00"), timestamp_ms=far)
    assert timed.time.year == 2026


def runner_with_catch_all() -> tuple[WorkflowRunner, list[tuple[str, bytes | None]]]:
    engine = Engine()
    engine.upsert(
        parse_workflow(
            {
                "id": "all-orders",
                "name": "all orders",
                "trigger": "order.created",
                "created_by": "t",
                "actions": [{"type": "add_tag", "user_id": "{{ userId }}", "tag": "x"}],
            }
        )
    )
    sent: list[tuple[str, bytes | None]] = []

    class Sender:
        async def send(
            self, topic: str, key: Any, value: bytes | None, headers: Any = None
        ) -> None:
            sent.append((topic, value))

    runner = WorkflowRunner(
        engine, topics=TopicNames("p."), sender=Sender(), metrics=Metrics.create()
    )
    return runner, sent


def record(value: bytes, headers: Any = None) -> Record:
    return Record("p.events.orders", 0, 7, b"k", value, headers or [], 1_767_225_600_000)


@pytest.mark.parametrize("limit", [64, 200])
def test_whatever_decodes_is_written_back_in_the_execution_record(limit: int) -> None:
    # the deepest event the limit accepts, in both modes, must not break the record
    with limits_applied(dataclasses.replace(Limits(), max_json_depth=limit)):
        runner, sent = runner_with_catch_all()
        asyncio.run(runner.handle(record(structured(deep_json(limit - 1)))))
        asyncio.run(runner.handle(record(deep_json(limit), BINARY_HEADERS)))
    executions = [orjson.loads(value or b"") for topic, value in sent if topic == "p.executions"]
    assert len(executions) == 2
    assert [topic for topic, _ in sent if topic == "p.dlq"] == []


def test_integers_beyond_64_bits_decode_to_numbers_orjson_can_write() -> None:
    event = decode_event(structured(b'{"n": ' + b"9" * 30 + b"}"))
    assert isinstance(event.data["n"], float)
    assert orjson.loads(encode_structured(event))["data"]["n"] == event.data["n"]
    with pytest.raises(PoisonEventError) as caught:  # beyond a double: orjson refuses it
        decode_event(structured(b'{"n": ' + b"9" * 400 + b"}"))
    assert caught.value.reason == "not_json"


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what orjson reads as integers
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(data=JSON, depth=st.integers(min_value=0, max_value=400), binary=st.booleans())
def test_any_json_event_decodes_and_writes_back_or_is_poison(
    data: Any, depth: int, binary: bool
) -> None:
    inner = orjson.dumps({"payload": data})
    value = b'{"a":[' * depth + inner + b"]}" * depth
    poison: PoisonEventError | None = None
    try:
        event = decode_event(
            value if binary else structured(value), BINARY_HEADERS if binary else None
        )
    except PoisonEventError as exc:
        poison = exc
    if poison is not None:
        assert poison.reason == "too_deep"
        return
    assert 2 * depth + 1 <= 64, 'each {"a":[ wrapper is two levels'
    # what the runner writes: the event inside the execution record, two levels down
    orjson.dumps({"record": {"event": {**event.envelope(), "data": event.data}}})


NAME = st.text(min_size=1, max_size=4)
ATTRIBUTE = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=4) | st.just("")


@settings(max_examples=300, deadline=None)
@given(
    attributes=st.fixed_dictionaries(
        {},
        optional={
            "id": NAME | ATTRIBUTE,
            "source": NAME | ATTRIBUTE,
            "type": NAME | ATTRIBUTE,
            "subject": ATTRIBUTE,
            "time": st.none()
            | st.sampled_from(["2026-01-10T08:00:00Z", "2026-01-10T08:00:00", "nope", "1"]),
            "data": st.none() | JSON,
        },
    )
)
def test_a_decoded_event_is_what_the_model_validates(attributes: dict[str, Any]) -> None:
    """The decoder builds events without validating them again (it checks each field itself,
    more strictly): whatever it accepts, the Event model accepts as the same event."""
    value = orjson.dumps({"specversion": "1.0", **attributes})
    try:
        event = decode_event(value, timestamp_ms=1_700_000_000_000)
    except PoisonEventError:
        return
    validated = Event.model_validate(event.model_dump())
    assert validated == event
    assert validated.model_dump() == event.model_dump()
    assert event.model_fields_set == validated.model_fields_set


@pytest.mark.parametrize(
    ("timestamp_ms", "expected"),
    [
        (1_700_000_000_001, datetime(2023, 11, 14, 22, 13, 20, 1000, tzinfo=UTC)),
        (253_402_300_799_999, datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)),
        (-1, datetime(1969, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)),
    ],
)
def test_an_event_without_time_takes_its_record_timestamp_to_the_millisecond(
    timestamp_ms: int, expected: datetime
) -> None:
    event = decode_event(structured(b"{}"), timestamp_ms=timestamp_ms)
    assert event.time == expected
    with pytest.raises(PoisonEventError, match="out of range"):
        decode_event(structured(b"{}"), timestamp_ms=253_402_300_800_000)
