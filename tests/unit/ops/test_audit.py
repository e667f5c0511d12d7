"""The audit trail's pure parts: diffs, marks, and rollbacks planned from it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from eventrules.definitions.files import parse_definition
from eventrules.errors import NotFoundError
from eventrules.ops.audit import AuditEntry, audit_entry, audit_marks, definition_diff
from eventrules.ops.config import Live, LiveDefinition, plan_changes, plan_rollback

AT = datetime(2026, 1, 10, tzinfo=UTC)


def _workflow(version: int, conditions: str) -> dict[str, Any]:
    return {
        "kind": "workflow",
        "id": "w",
        "version": version,
        "name": "W",
        "trigger": "order.created",
        "conditions": conditions,
        "created_by": "t",
        "actions": [{"type": "add_tag", "user_id": "1", "tag": "x"}],
    }


def _entry(version: int, action: str, definition: dict[str, Any] | None, **kw: Any) -> AuditEntry:
    body = audit_entry(
        kind="workflow",
        definition_id="w",
        action=action,
        version=version,
        previous=None,
        definition=definition,
        by="ops",
        at=AT,
        signer=None,
    )
    return AuditEntry(version, 0, "workflow", "w", body, kw.get("verified"))


def test_the_diff_names_the_fields_that_changed_but_not_the_bookkeeping() -> None:
    before, after = _workflow(1, "total > 1"), _workflow(2, "total > 2")
    after["updated_by"] = "alice"
    assert definition_diff(before, after) == [
        {"field": "conditions", "before": "total > 1", "after": "total > 2"}
    ]
    assert [d["field"] for d in definition_diff(None, after)] == sorted(
        set(after) - {"version", "created_by", "updated_by"}
    )


def test_rollback_restores_old_content_above_every_version_ever_seen() -> None:
    history = [
        _entry(1, "create", _workflow(1, "total > 1")),
        _entry(2, "update", _workflow(2, "total > 2")),
        _entry(2, "delete", None),
    ]
    live = Live(marks=audit_marks(history))
    change = plan_rollback(live, history, "workflow", "w", 1, updated_by="bob", now=AT)
    assert (change.action, change.version, change.note) == ("create", 3, "rollback to v1")
    assert change.value is not None
    assert change.value["conditions"] == "total > 1"
    assert change.value["updated_by"] == "bob"
    with pytest.raises(NotFoundError, match="holds v1, v2"):
        plan_rollback(live, history, "workflow", "w", 7)


def test_entries_with_bad_signatures_are_neither_marks_nor_rollback_targets() -> None:
    history = [
        _entry(1, "create", _workflow(1, "total > 1"), verified=True),
        _entry(9, "update", _workflow(9, "total > 9"), verified=False),
    ]
    assert audit_marks(history) == {("workflow", "w"): 1}
    with pytest.raises(NotFoundError):
        plan_rollback(Live(), history, "workflow", "w", 9)


def test_a_recreated_definition_is_planned_above_its_mark() -> None:
    definition = parse_definition(_workflow(1, "total > 1"))
    (change,) = plan_changes([definition], Live(marks={("workflow", "w"): 4}), now=AT)
    assert (change.action, change.version) == ("create", 5)
    assert change.value is not None
    assert change.value["version"] == 5
    live = Live()
    held = definition.model_dump(mode="json", exclude_none=True) | {"version": 5}
    live[("workflow", "w")] = LiveDefinition("workflow", "w", held, 0, 0)
    (same,) = plan_changes([definition], live, now=AT)
    assert same.action == "unchanged"
