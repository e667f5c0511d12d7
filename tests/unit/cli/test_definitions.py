"""``eventrules validate`` and ``eventrules test`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from eventrules.cli import definitions as commands

TEMPLATES = Path(__file__).resolve().parents[3] / "config" / "templates"


def run(*args: str) -> tuple[int, str]:
    command = commands.validate_command if args[0] == "validate" else commands.dry_run_command
    result = CliRunner().invoke(command, list(args[1:]))
    return result.exit_code, result.output


def test_validate_accepts_the_templates() -> None:
    files = sorted(str(p) for p in (TEMPLATES / "workflows").glob("*.yaml"))
    code, output = run("validate", *files)
    assert code == 0, output
    assert "5 definition(s) valid" in output
    assert "vip-customer-tag" in output


def test_validate_reports_paths_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "id: bad\nname: x\ntrigger: order.created\ncreated_by: me\n"
        "conditions: 'total >> 5'\nactions: [{type: add_tag, user_id: u, tag: t}]\n"
    )
    code, output = run("validate", str(bad))
    assert code == 1
    assert "conditions: expected a value (string, number, true, false, null or [list])" in output
    assert "column 8" in output


def test_validate_reports_unknown_trigger_and_template_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            [
                {
                    "id": "a",
                    "name": "a",
                    "trigger": "order.create",
                    "created_by": "me",
                    "actions": [{"type": "add_tag", "user_id": "u", "tag": "t"}],
                },
                {
                    "id": "b",
                    "name": "b",
                    "trigger": "order.created",
                    "created_by": "me",
                    "actions": [{"type": "add_tag", "user_id": "{{ u ", "tag": "t"}],
                },
            ]
        )
    )
    code, output = run("validate", str(bad))
    assert code == 1
    assert "did you mean order.created" in output
    assert "actions.0.user_id: invalid template" in output


def test_validate_catches_duplicate_ids(tmp_path: Path) -> None:
    source = TEMPLATES / "workflows" / "welcome-email.yaml"
    copy = tmp_path / "copy.yaml"
    copy.write_text(source.read_text())
    code, output = run("validate", str(source), str(copy))
    assert code == 1
    assert "'welcome-email' is also defined in" in output


def test_validate_with_extra_triggers(tmp_path: Path) -> None:
    catalog = tmp_path / "triggers.yaml"
    catalog.write_text("triggers:\n  - name: subscription.renewed\n")
    definition = tmp_path / "d.yaml"
    definition.write_text(
        "id: s\nname: s\ntrigger: subscription.renewed\ncreated_by: me\n"
        "actions: [{type: add_tag, user_id: u, tag: t}]\n"
    )
    assert run("validate", str(definition))[0] == 1
    assert run("validate", str(definition), "--triggers", str(catalog))[0] == 0


def test_dry_run_shows_trace_and_rendered_actions() -> None:
    code, output = run(
        "test",
        str(TEMPLATES / "workflows" / "vip-customer-tag.yaml"),
        "--event",
        str(TEMPLATES / "events" / "order-confirmation.json"),
    )
    assert code == 0, output
    assert "would not fire" in output
    assert "total = 129.9, so 'total > 1000' is false" in output
    assert '"tag": "VIP"' in output


def test_dry_run_json_output() -> None:
    code, output = run(
        "test",
        str(TEMPLATES / "workflows" / "low-stock-alert.yaml"),
        "--event",
        str(TEMPLATES / "events" / "low-stock-alert.json"),
        "--json",
    )
    assert code == 0, output
    (result,) = json.loads(output)
    assert result["trace"]["fired"] is True
    assert result["trace"]["condition"]["actual"] == 5
    assert result["actions"][0]["params"]["subject"] == "Low Stock Alert"


def test_dry_run_rejects_invalid_event(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"data": {}}))
    code, output = run(
        "test", str(TEMPLATES / "workflows" / "welcome-email.yaml"), "--event", str(event)
    )
    assert code == 1
    assert "invalid event: type: Field required" in output


def test_dry_run_unknown_id(tmp_path: Path) -> None:
    code, output = run(
        "test",
        str(TEMPLATES / "workflows" / "welcome-email.yaml"),
        "--event",
        str(TEMPLATES / "events" / "welcome-email.json"),
        "--id",
        "nope",
    )
    assert code == 1
    assert "no definition with id 'nope'" in output
