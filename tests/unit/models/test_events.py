"""The event: a plain (compiled) class that keeps the pydantic model's checks and API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from eventrules.models.event_fields import EventFields
from eventrules.models.events import Event

WHEN = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)


def test_plain_values_are_kept_as_given() -> None:
    data = {"total": 12}
    event = Event(id="e1", type="order.created", time=WHEN, data=data, subject="o-1")
    assert (event.id, event.type, event.source, event.time, event.subject) == (
        "e1",
        "order.created",
        "eventrules",
        WHEN,
        "o-1",
    )
    assert event.data is data
    assert Event(id="e1", type="t", time=WHEN).data == {}


@pytest.mark.parametrize(
    "fields",
    [
        {"id": ""},
        {"type": ""},
        {"id": 7},
        {"time": datetime(2026, 1, 10)},  # naive: no timezone
        {"time": "not a time"},
        {"subject": 3},
        {"data": [1, 2]},
        {"source": None},
    ],
)
def test_what_the_model_refuses_raises_its_validation_error(fields: dict[str, Any]) -> None:
    values: dict[str, Any] = {"id": "e1", "type": "order.created", "time": WHEN, **fields}
    with pytest.raises(ValidationError):
        EventFields(**values)
    with pytest.raises(ValidationError):
        Event(**values)
    with pytest.raises(ValidationError):
        Event.model_validate(values)


def test_what_the_model_coerces_is_coerced_the_same_way() -> None:
    event = Event(id="e1", type="t", time="2026-01-10T09:00:00+01:00")  # type: ignore[arg-type]
    assert event.time == WHEN
    assert event.time.utcoffset() == timedelta(hours=1)
    assert Event.model_validate({"id": "e1", "type": "t", "time": "2026-01-10T08:00:00Z"}) == (
        Event(id="e1", type="t", time=WHEN)
    )
    with pytest.raises(ValidationError):
        Event.model_validate({"id": "e1", "type": "t", "time": WHEN, "extra": 1})


def test_dumps_copies_and_equality_match_the_model() -> None:
    plus_two = timezone(timedelta(hours=2))
    values: dict[str, Any] = {
        "id": "e1",
        "type": "order.created",
        "source": "shop",
        "time": datetime(2026, 1, 10, 10, 0, tzinfo=plus_two),
        "subject": None,
        "data": {"items": [1, {"a": None}]},
    }
    event, model = Event(**values), EventFields(**values)
    for mode in ("python", "json"):
        assert event.model_dump(mode=mode) == model.model_dump(mode=mode)
    assert Event.model_validate(event.model_dump()) == event
    assert Event.model_validate(event) is event
    other = event.model_copy(update={"id": "e2"})
    assert (other.id, other.data, event.id) == ("e2", event.data, "e1")
    assert other != event
    assert event != values  # an event equals only an event
    assert event.model_fields_set == set(EventFields.model_fields)
    assert set(Event.model_fields) == {"id", "type", "source", "time", "subject", "data"}
    assert "Event(id='e1'" in repr(event)
    with pytest.raises(TypeError):
        hash(event)
    with pytest.raises(ValidationError):
        event.model_copy(update={"type": ""})
