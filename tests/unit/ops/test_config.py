"""Config-as-code planning without a broker: collecting files, conflicts, toggles, replay ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventrules.errors import ConfigConflictError, DefinitionError
from eventrules.ops.config import (
    LiveDefinition,
    PlannedChange,
    check_not_changed,
    collect_definitions,
    plan_toggle,
)
from eventrules.ops.executions import replay_event_id

TEMPLATES = Path(__file__).resolve().parents[3] / "config" / "templates"

WORKFLOW = """kind: workflow
id: shared
name: W
trigger: order.created
created_by: t
actions: [{type: send_email, to: a@b.c, subject: s, template: t}]
"""
RULE = """kind: rule
id: shared
name: R
rule_type: validation
created_by: t
conditions: total < 10
actions: [{type: block, reason: too small}]
"""


def test_the_templates_folder_applies_and_skips_the_sample_events() -> None:
    skipped: list[str] = []
    definitions = collect_definitions([TEMPLATES], skipped=skipped)
    assert sorted(d.kind for d in definitions) == ["rule"] * 4 + ["workflow"] * 7
    assert len(skipped) == 7
    assert all("/events/" in source for source in skipped)


def test_a_workflow_and_a_rule_may_share_an_id(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(WORKFLOW)
    (tmp_path / "r.yaml").write_text(RULE)
    assert sorted(d.kind for d in collect_definitions([tmp_path])) == ["rule", "workflow"]


def test_two_workflows_with_one_id_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(WORKFLOW)
    (tmp_path / "b.yaml").write_text(WORKFLOW)
    with pytest.raises(DefinitionError) as caught:
        collect_definitions([tmp_path])
    assert "workflow 'shared' also in" in caught.value.problems[0][1]


def test_an_explicit_file_without_kind_is_still_validated(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text((TEMPLATES / "events" / "low-stock-alert.json").read_text())
    with pytest.raises(DefinitionError):
        collect_definitions([event])


def test_templates_and_conditions_past_the_checks_are_refused_before_publishing(
    tmp_path: Path,
) -> None:
    (tmp_path / "escape.yaml").write_text(
        WORKFLOW.replace("template: t", 'template: "{{ cycler.__init__.__globals__ }}"')
    )
    (tmp_path / "deep.yaml").write_text(
        WORKFLOW.replace("id: shared", "id: deep").replace(
            "template: t", 'template: "{{' + "(" * 200 + "1" + ")" * 200 + '}}"'
        )
    )
    (tmp_path / "nots.yaml").write_text(
        WORKFLOW.replace("id: shared", "id: nots") + "conditions: " + "not " * 2000 + "x exists\n"
    )
    with pytest.raises(DefinitionError) as caught:
        collect_definitions([tmp_path])
    problems = "\n".join(f"{path}: {reason}" for path, reason in caught.value.problems)
    assert "actions.0.body: refused template: templates may not reach for the internal" in problems
    assert "the template nests deeper than 20 levels" in problems
    assert "condition_max_chars" in problems
    assert len(caught.value.problems) == 3


def _live(offset: int, version: int) -> LiveDefinition:
    return LiveDefinition("workflow", "w", {"version": version, "updated_by": "bob"}, offset, 0)


def test_a_key_changed_since_planning_is_a_conflict() -> None:
    change = PlannedChange("update", "workflow", "w", 2, {}, 1)
    before = {("workflow", "w"): _live(3, 1)}
    check_not_changed(before, {("workflow", "w"): _live(3, 1)}, [change])
    with pytest.raises(ConfigConflictError) as caught:
        check_not_changed(before, {("workflow", "w"): _live(7, 2)}, [change])
    assert caught.value.conflicts == [("workflow:w", "v1 -> v2 by bob")]
    with pytest.raises(ConfigConflictError):
        check_not_changed({}, before, [PlannedChange("create", "workflow", "w", 1, {})])
    with pytest.raises(ConfigConflictError):
        check_not_changed(before, {}, [change])


def test_unchanged_entries_never_conflict() -> None:
    unchanged = PlannedChange("unchanged", "workflow", "w", 1, None, 1)
    check_not_changed({("workflow", "w"): _live(3, 1)}, {}, [unchanged])


def test_toggle_is_the_next_version_with_the_author() -> None:
    change = plan_toggle(_live(3, 4), enabled=False, updated_by="ops")
    assert change.version == 5
    assert change.value is not None
    assert (change.value["enabled"], change.value["updated_by"]) == (False, "ops")


def test_replay_event_ids_count_up_from_the_original() -> None:
    assert replay_event_id("e1", []) == "e1#replay-1"
    assert replay_event_id("e1", ["e1", "e1#replay-1", "e1#replay-2", "e2#replay-9"]) == (
        "e1#replay-3"
    )
    # replaying a replay counts against the original, not the replay's id
    assert replay_event_id("e1#replay-2", ["e1#replay-2"]) == "e1#replay-3"
