"""Deterministic execution and action ids."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from eventrules.models.executions import action_id, execution_id
from eventrules.models.ids import _NAMESPACE


@given(st.text(), st.text(), st.text(), st.integers(min_value=1, max_value=10**9))
def test_execution_id_is_the_uuid5_of_source_event_workflow_and_version(
    source: str, event_id: str, workflow_id: str, version: int
) -> None:
    # The hand-written uuid5 must keep ids stable across releases: replays dedupe by them.
    name = f"{source}\x1f{event_id}\x1f{workflow_id}\x1f{version}"
    assert execution_id(source, event_id, workflow_id, version) == str(uuid.uuid5(_NAMESPACE, name))


def test_ids_differ_by_version_and_action_index() -> None:
    first = execution_id("svc", "e-1", "wf", 1)
    assert first != execution_id("svc", "e-1", "wf", 2)
    assert action_id(first, 0) != action_id(first, 1)
    assert uuid.UUID(first).version == 5
