"""Reading definition files: YAML or JSON, one or many per file, kind dispatch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventrules import DefinitionError, load_workflows, read_definition_documents

ONE = """
id: one
name: One
trigger: order.created
created_by: tests
conditions: "placed after '2026-01-01'"
actions: [{type: add_tag, user_id: u, tag: t}]
"""


def test_yaml_single_definition_defaults_kind(tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(ONE)
    (parsed,) = load_workflows(path)
    assert parsed.kind == "workflow"
    assert parsed.id == "one"


def test_yaml_dates_stay_strings(tmp_path: Path) -> None:
    path = tmp_path / "dates.yaml"
    path.write_text("id: d\nwhen: 2026-01-09\n")
    (document,) = read_definition_documents(path)
    assert document.raw["when"] == "2026-01-09"


def test_json_list_of_definitions(tmp_path: Path) -> None:
    base = {
        "name": "n",
        "trigger": "order.created",
        "created_by": "t",
        "actions": [{"type": "add_tag", "user_id": "u", "tag": "t"}],
    }
    path = tmp_path / "many.json"
    path.write_text(json.dumps([{**base, "id": "a"}, {**base, "id": "b", "kind": "workflow"}]))
    assert [w.id for w in load_workflows(path)] == ["a", "b"]
    assert [d.source for d in read_definition_documents(path)] == [f"{path}[0]", f"{path}[1]"]


def test_invalid_item_names_its_source(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(f"- {json.dumps({'id': 'x'})}\n")
    with pytest.raises(DefinitionError) as caught:
        load_workflows(path)
    assert str(caught.value).startswith(f"{path}[0]: invalid workflow 'x'")
    assert ("name", "Field required") in caught.value.problems


def test_unsupported_kind(tmp_path: Path) -> None:
    path = tmp_path / "rule.yaml"
    path.write_text("kind: rule\nid: r\n")
    with pytest.raises(DefinitionError) as caught:
        load_workflows(path)
    assert caught.value.problems[0][0] == "kind"
    assert "unsupported kind 'rule'" in caught.value.problems[0][1]


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("bad.json", "{", "invalid JSON at line 1"),
        ("bad.yaml", "a: [", "invalid YAML"),
        ("empty.yaml", "", "holds no definition"),
    ],
)
def test_unparsable_files(tmp_path: Path, name: str, content: str, fragment: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DefinitionError, match=fragment):
        read_definition_documents(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="cannot read"):
        read_definition_documents(tmp_path / "absent.yaml")
