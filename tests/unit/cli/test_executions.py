"""The executions table counts the actions done as the record's status does."""

from __future__ import annotations

from rich.console import Console

from eventrules.cli.executions import _table


def test_a_delayed_action_counts_as_done_and_a_retrying_one_does_not() -> None:
    record = {
        "workflow_id": "review",
        "workflow_version": 1,
        "status": "retrying",
        "trigger_event_id": "e1",
        "trigger_event_type": "order.delivered",
        "triggered_by": "event",
        "duration_ms": 1.0,
        "actions": [{"status": "success"}, {"status": "delayed"}, {"status": "retrying"}],
    }
    console = Console(width=200, record=True)
    console.print(_table([record]))
    assert "2/3" in console.export_text()
