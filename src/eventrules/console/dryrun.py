"""The test button: a workflow (live or being edited) against an event, with no side effects."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from eventrules.console.forms import MAX_DOCUMENT_BYTES, choice, json_object, optional_text
from eventrules.errors import InputError
from eventrules.models.events import Event
from eventrules.models.workflows import Workflow
from eventrules.workflows.catalog import TriggerCatalog
from eventrules.workflows.engine import Engine
from eventrules.workflows.plan import RenderedAction, WorkflowTrace

__all__ = ["chosen_event", "dry_run", "event_from_json", "sample_event"]


def event_from_json(raw: dict[str, Any], trigger: str, field: str = "event") -> Event:
    """An event typed in: a whole envelope (``type``/``data``...) or only its data."""
    given: dict[str, Any] = (
        raw if "data" in raw and ("type" in raw or "specversion" in raw) else {"data": raw}
    )
    envelope = {key: value for key, value in given.items() if key in Event.model_fields}
    envelope.setdefault("type", trigger)
    envelope.setdefault("id", "console-test")
    envelope.setdefault("source", "eventrules/console")
    envelope.setdefault("time", datetime.now(UTC).isoformat())
    try:
        return Event.model_validate(envelope)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        raise InputError(field, f"not a usable event: {details}") from None


def sample_event(templates_root: Path | None, trigger: str) -> dict[str, Any]:
    """A shipped sample event of this trigger (config/templates/events), else empty data."""
    folder = templates_root / "events" if templates_root is not None else None
    if folder is not None and folder.is_dir():
        for file in sorted(folder.glob("*.json")):
            try:
                raw = orjson.loads(file.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue
            if isinstance(raw, dict) and raw.get("type") == trigger:
                return raw
    return {"type": trigger, "data": {}}


def dry_run(
    workflow: Workflow, event: Event, catalog: TriggerCatalog, timezone: Any = UTC
) -> tuple[WorkflowTrace, tuple[RenderedAction, ...]]:
    """The trace of every condition and the rendered actions, as `eventrules test` shows."""
    engine = Engine(catalog, timezone=timezone)
    engine.upsert(workflow)
    return engine.trace(workflow.id, event), engine.render_actions(workflow.id, event)


def chosen_event(form: Any, trigger: str, templates_root: Path | None) -> tuple[Event, str]:
    """The event the test form chose (``source``: sample, typed or recent) and its text."""
    source = choice(form, "source", ("sample", "typed", "recent")) or "typed"
    if source == "sample":
        raw = sample_event(templates_root, trigger)
        text = orjson.dumps(raw, option=orjson.OPT_INDENT_2).decode()
        return event_from_json(raw, trigger), text
    name = "event" if source == "typed" else "recent_event"
    text = optional_text(form, name, max_length=MAX_DOCUMENT_BYTES) or ""
    return event_from_json(json_object(text, name), trigger, name), text
