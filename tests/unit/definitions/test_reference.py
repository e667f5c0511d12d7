"""docs/definitions.md is what the models say; an undocumented field cannot slip in."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from click.testing import CliRunner
from pydantic import Field

from eventrules.cli.docs import docs
from eventrules.definitions.reference import render_reference
from eventrules.errors import ConfigurationError
from eventrules.models.actions import BUILTIN_ACTIONS, ActionBase

DOC = Path(__file__).resolve().parents[3] / "docs" / "definitions.md"


def test_the_committed_reference_matches_the_models() -> None:
    assert DOC.read_text(encoding="utf-8") == render_reference(), (
        "docs/definitions.md is out of date: run `eventrules docs definitions -o "
        "docs/definitions.md`"
    )


def test_it_says_what_is_required_and_documents_every_parameter() -> None:
    text = render_reference()
    assert "| `created_by` | string, non-empty | **required** |" in text
    assert "| `priority` | integer, >= 1, <= 10 | `5` |" in text
    for name in ("user_id", "title", "message", "link", "assignee", "due_in_hours"):
        assert f"| `{name}` |" in text
    assert "### `send_notification`" in text
    assert '| `method` | one of `GET`, `POST`, `PUT`, `PATCH`, `DELETE` | `"POST"` | no |' in text


class Page(ActionBase):
    """Page the on-call engineer."""

    type: Literal["page"]
    team: str = Field(description="The team to page.")


class Undocumented(ActionBase):
    type: Literal["undocumented"]
    target: str


def test_plugin_types_are_included_and_undocumented_fields_refused() -> None:
    text = render_reference([*BUILTIN_ACTIONS, Page])
    assert "### `page`\n\nPage the on-call engineer." in text
    assert "| `team` | string | **required** | yes | The team to page. |" in text
    with pytest.raises(ConfigurationError, match=r"Undocumented.target has no description"):
        render_reference([Undocumented])


def test_the_command_writes_and_checks(tmp_path: Path) -> None:
    target = tmp_path / "definitions.md"
    runner = CliRunner()
    stale = runner.invoke(docs, ["definitions", "-o", str(target), "--check"])
    assert stale.exit_code == 1
    assert "is out of date" in stale.output
    assert runner.invoke(docs, ["definitions", "-o", str(target)]).exit_code == 0
    assert target.read_text(encoding="utf-8") == render_reference()
    fresh = runner.invoke(docs, ["definitions", "-o", str(target), "--check"])
    assert fresh.exit_code == 0, fresh.output
    assert runner.invoke(docs, ["definitions"]).output == render_reference()
