"""``eventrules rules eval|check`` and ``eventrules validate`` on rule files, via CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from eventrules.cli.definitions import dry_run_command, validate_command
from eventrules.cli.main import cli

TEMPLATES = Path(__file__).resolve().parents[3] / "config" / "templates"
RULES = TEMPLATES / "rules"
SATURDAY = "2026-01-10T14:30:00+00:00"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_eval_prints_the_decision_as_json() -> None:
    code, output = invoke(
        "rules",
        "eval",
        "--type",
        "pricing",
        "--facts",
        '{"total": 620}',
        "--dir",
        str(RULES),
        "--at",
        SATURDAY,
        "--json",
    )
    assert code == 0, output
    decision = json.loads(output)
    assert decision["outcome"]["price"]["final"] == "527.00"
    assert [m["rule_id"] for m in decision["matched"]] == ["bulk-order-discount", "weekend-special"]


def test_eval_human_output_shows_the_outcome(tmp_path: Path) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text('{"total": 12}')
    code, output = invoke(
        "rules",
        "eval",
        "--type",
        "order_validation",
        "--facts",
        f"@{facts}",
        "--file",
        str(RULES / "minimum-order-validation.yaml"),
        "--at",
        SATURDAY,
    )
    assert code == 0, output
    assert "BLOCKED" in output
    assert "Orders must total at least 20." in output


def test_eval_policy_timezone_and_price_field() -> None:
    code, output = invoke(
        "rules",
        "eval",
        "--type",
        "pricing",
        "--facts",
        '{"o": {"sum": 600}}',
        "--dir",
        str(RULES),
        "--at",
        "2026-01-09T23:30:00+00:00",
        "--timezone",
        "Europe/Berlin",
        "--policy",
        "stack",
        "--price-field",
        "o.sum",
        "--json",
    )
    assert code == 0, output
    price = json.loads(output)["outcome"]["price"]
    # Saturday in Berlin: the weekend special applies; no bulk discount (total is absent)
    assert (price["price_field"], price["final"]) == ("o.sum", "570.00")


def test_eval_reports_unusable_input() -> None:
    for args, fragment in [
        (["--facts", "[1]"], "expected a JSON object"),
        (
            [
                "--facts",
                "{",
            ],
            "invalid JSON",
        ),
        (["--facts", "{}", "--at", "2026-01-01T00:00:00"], "add an offset"),
        (["--facts", "{}"], "pricing needs a number at 'total'"),
        (["--facts", "{}", "--policy", "collect"], "does not apply to pricing"),
    ]:
        code, output = invoke("rules", "eval", "--type", "pricing", "--dir", str(RULES), *args)
        assert code != 0
        assert fragment in output, output


def test_eval_names_invalid_rule_files(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("kind: rule\nid: bad\nname: b\nrule_type: pricing\n")
    code, output = invoke(
        "rules", "eval", "--type", "pricing", "--facts", "{}", "--dir", str(tmp_path)
    )
    assert code == 1
    assert "bad.yaml: invalid rule 'bad'" in output
    assert "created_by" in output


def test_check_passes_on_the_templates_and_fails_on_conflicts(tmp_path: Path) -> None:
    code, output = invoke("rules", "check", "--dir", str(TEMPLATES), "--at", SATURDAY)
    assert code == 0, output
    assert "checked 4 enabled rule(s)" in output
    assert "no conflicts found" in output
    (tmp_path / "r.yaml").write_text(
        "- {kind: rule, id: broad, name: b, rule_type: pricing, created_by: t, priority: 9,"
        " conditions: 'total > 0', actions: [{type: fixed_discount, amount: 1}]}\n"
        "- {kind: rule, id: never, name: n, rule_type: pricing, created_by: t,"
        " conditions: 'total < 5 and total > 10', actions: [{type: fixed_discount, amount: 1}]}\n"
        "- {kind: rule, id: narrow, name: n, rule_type: pricing, created_by: t, priority: 3,"
        " conditions: 'total > 50', actions: [{type: fixed_discount, amount: 1}]}\n"
    )
    code, output = invoke(
        "rules", "check", "--file", str(tmp_path / "r.yaml"), "--policy", "pricing=first", "--json"
    )
    assert code == 1
    report = json.loads(output)
    assert [(f["kind"], f["rule_ids"]) for f in report["findings"]] == [
        ("never_holds", ["never"]),
        ("shadowed", ["narrow", "broad"]),
    ]
    code, output = invoke(
        "rules", "check", "--file", str(tmp_path / "r.yaml"), "--policy", "pricing"
    )
    assert code == 2
    assert "expected TYPE=POLICY" in output


def test_validate_accepts_rule_files_and_test_refuses_them() -> None:
    files = sorted(str(p) for p in RULES.glob("*.yaml"))
    result = CliRunner().invoke(validate_command, files)
    assert result.exit_code == 0, result.output
    assert "4 definition(s) valid" in result.output
    assert "validation" in result.output
    result = CliRunner().invoke(
        dry_run_command,
        [
            str(RULES / "bulk-order-discount.yaml"),
            "--event",
            str(TEMPLATES / "events" / "vip-customer-tag.json"),
        ],
    )
    assert result.exit_code == 1
    assert "is a rule; try `eventrules rules eval`" in result.output
