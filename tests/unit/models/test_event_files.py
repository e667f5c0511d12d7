"""Events given as files decode exactly like the same bytes on the topic."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from eventrules.errors import PoisonEventError
from eventrules.models.cloudevents import decode_event
from eventrules.models.event_files import event_from_file, parse_header_options

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ENVELOPE = {
    "specversion": "1.0",
    "id": "e-1",
    "source": "shop",
    "type": "order.created",
    "datacontenttype": "application/json",
    "comexampleextension": "value",
    "data": {"total": 5},
}


def test_a_structured_file_is_what_the_decoder_makes_of_the_same_value() -> None:
    value = orjson.dumps(ENVELOPE)
    event, filled = event_from_file(value, now=NOW)
    assert filled == []
    assert event == decode_event(value, timestamp_ms=int(NOW.timestamp() * 1000))
    assert event.time == NOW, "no time: the record timestamp (now) stands in"


def test_binary_mode_in_one_file_takes_headers_as_an_object_or_pairs() -> None:
    headers = {"ce_specversion": "1.0", "ce_id": "e-2", "ce_source": "s", "ce_type": "t"}
    as_object = orjson.dumps({"headers": headers, "data": {"a": 1}})
    as_pairs = orjson.dumps({"headers": [[k, v] for k, v in headers.items()], "data": {"a": 1}})
    one, _ = event_from_file(as_object, now=NOW, fill_defaults=True)
    two, _ = event_from_file(as_pairs, now=NOW, fill_defaults=True)
    assert one == two
    assert (one.id, one.type, one.data) == ("e-2", "t", {"a": 1})


def test_defaults_fill_only_structured_envelopes_and_are_reported() -> None:
    bare = orjson.dumps({"type": "order.created", "data": {}})
    with pytest.raises(PoisonEventError) as refused:
        event_from_file(bare, now=NOW)
    assert refused.value.reason == "not_cloudevent"
    event, filled = event_from_file(bare, now=NOW, fill_defaults=True, fill_id="run-1")
    assert filled == ["specversion", "id", "source"]
    assert event.id == "run-1"
    # split binary mode: the value is the data, never an envelope to fill
    with pytest.raises(PoisonEventError) as missing:
        event_from_file(b"{}", [("ce_type", "t")], now=NOW, fill_defaults=True)
    assert missing.value.reason == "not_cloudevent"


def test_bad_headers_and_oversized_files_are_refused() -> None:
    assert parse_header_options(["ce_type=a=b", " x =y"]) == [("ce_type", "a=b"), ("x", "y")]
    with pytest.raises(PoisonEventError):
        parse_header_options(["=v"])
    with pytest.raises(PoisonEventError) as not_string:
        event_from_file(orjson.dumps({"headers": {"ce_id": 1}}), now=NOW)
    assert not_string.value.reason == "invalid_header"
    with pytest.raises(PoisonEventError) as oversized:
        event_from_file(orjson.dumps(ENVELOPE), now=NOW, max_bytes=10)
    assert oversized.value.reason == "oversized"
