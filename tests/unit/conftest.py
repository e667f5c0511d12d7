"""Builders shared by the unit tests of the pure core."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from eventrules import Engine, Event, TriggerCatalog, Workflow, parse_workflow

EVENT_TIME = datetime(2026, 1, 10, 14, 30, tzinfo=UTC)  # a Saturday


@pytest.fixture(scope="session")
def catalog() -> TriggerCatalog:
    return TriggerCatalog.load()


@pytest.fixture
def engine(catalog: TriggerCatalog) -> Engine:
    return Engine(catalog)


WORKFLOW_FIELDS: dict[str, Any] = {
    "id": "wf",
    "name": "A workflow",
    "trigger": "order.created",
    "created_by": "tests",
    "actions": [{"type": "add_tag", "user_id": "{{ userId }}", "tag": "t"}],
}


def workflow(**fields: Any) -> Workflow:
    return parse_workflow({**WORKFLOW_FIELDS, **fields})


def event(data: dict[str, Any] | None = None, **fields: Any) -> Event:
    raw: dict[str, Any] = {
        "id": "evt-1",
        "type": "order.created",
        "time": EVENT_TIME,
        "data": data or {},
    }
    raw.update(fields)
    return Event.model_validate(raw)
