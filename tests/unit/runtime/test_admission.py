"""Topic bindings of triggers and signed schedule ticks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from eventrules.errors import ConfigurationError
from eventrules.kafka.records import Record
from eventrules.models.events import Event
from eventrules.runtime.admission import EventAdmission, TickAuthenticator
from eventrules.settings import TopicNames
from eventrules.workflows.catalog import TriggerCatalog

SECRET = "s" * 32


def _record(
    topic: str, value: bytes = b"{}", headers: list[tuple[str, bytes | None]] | None = None
) -> Record:
    return Record(topic, 0, 0, b"k", value, headers or [])


def _event(type_: str) -> Event:
    return Event(id="e", type=type_, time=datetime(2026, 1, 1, tzinfo=UTC))


def test_a_trigger_is_admitted_only_from_its_topics() -> None:
    admit = EventAdmission(TriggerCatalog.load(), TopicNames("p."))
    assert admit(_record("p.events.users"), _event("user.registered")) is None
    refused = admit(_record("p.events.reviews"), _event("user.registered"))
    assert refused is not None
    assert refused[0] == "topic_mismatch"
    assert admit(_record("p.events.orders"), _event("scheduled.monthly")) is not None
    # a type no workflow can name runs nothing anyway: not dead-lettered here
    assert admit(_record("p.events.orders"), _event("order.teleported")) is None


def test_unbound_operator_triggers_are_admitted_anywhere(tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "triggers:\n"
        "  - {name: loyalty.points_earned}\n"
        "  - {name: loyalty.tier_changed, topics: [events.loyalty]}\n"
    )
    catalog = TriggerCatalog.load(extra)
    assert catalog.arrives_on("loyalty.points_earned", "events.orders")
    assert catalog.arrives_on("loyalty.tier_changed", "events.loyalty")
    assert not catalog.arrives_on("loyalty.tier_changed", "events.orders")
    extra.write_text("triggers:\n  - {name: loyalty.x, topics: events.loyalty}\n")
    with pytest.raises(ConfigurationError, match="list of topic names"):
        TriggerCatalog.load(extra)


def test_ticks_are_admitted_only_with_the_schedulers_signature() -> None:
    ticks = TickAuthenticator(SECRET)
    admit = EventAdmission(TriggerCatalog.load(), TopicNames("p."), ticks)
    tick = _event("scheduled.daily")
    signed = ticks.headers("p.events.scheduled", b"k", b"{}")
    assert admit(_record("p.events.scheduled", headers=list(signed)), tick) is None
    unsigned = admit(_record("p.events.scheduled"), tick)
    assert unsigned is not None
    assert unsigned[0] == "forged_tick"
    # the signature covers the value: an edited tick is forged
    edited = _record("p.events.scheduled", b'{"x": 1}', list(signed))
    assert admit(edited, tick) is not None
    other_key = TickAuthenticator("t" * 32).headers("p.events.scheduled", b"k", b"{}")
    assert admit(_record("p.events.scheduled", headers=list(other_key)), tick) is not None


def test_a_short_scheduler_secret_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError) as caught:
        TickAuthenticator("hunter2-secret")
    assert "hunter2" not in str(caught.value)
