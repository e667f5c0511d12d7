"""``eventrules validate`` and ``eventrules test`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from eventrules.cli import definitions as commands

TEMPLATES = Path(__file__).resolve().parents[3] / "config" / "templates"


def invoke(*args: str) -> Result:
    command = commands.validate_command if args[0] == "validate" else commands.dry_run_command
    return CliRunner().invoke(command, list(args[1:]))


def run(*args: str) -> tuple[int, str]:
    result = invoke(*args)
    return result.exit_code, result.output


def test_validate_accepts_the_templates() -> None:
    files = sorted(str(p) for p in (TEMPLATES / "workflows").glob("*.yaml"))
    code, output = run("validate", *files)
    assert code == 0, output
    assert "7 definition(s) valid" in output
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
    outcome = invoke(
        "test",
        str(TEMPLATES / "workflows" / "low-stock-alert.yaml"),
        "--event",
        str(TEMPLATES / "events" / "low-stock-alert.json"),
        "--json",
    )
    assert outcome.exit_code == 0, outcome.output
    # the sample event has no specversion: the note goes to stderr, stdout stays JSON
    assert "filled in specversion" in outcome.stderr
    (result,) = json.loads(outcome.stdout)
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
    assert "invalid event (missing_type): CloudEvents attribute 'type' is missing" in output


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


LOW_STOCK = str(TEMPLATES / "workflows" / "low-stock-alert.yaml")
DATA = {"productId": "product-77", "productName": "Vitamin D3", "stock": 5}


def test_dry_run_takes_a_structured_cloudevent_as_the_topic_carries_it(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    envelope = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "shop/products",
        "type": "product.low_stock",
        "datacontenttype": "application/json",
        "time": "2026-01-10T08:00:00Z",
        "subject": "product-77",
        # extension attributes: the worker ignores them, so must the dry run
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "partitionkey": "product-77",
        "data": DATA,
    }
    event.write_text(json.dumps(envelope))
    code, output = run("test", LOW_STOCK, "--event", str(event))
    assert code == 0, output
    assert "WOULD FIRE" in output
    assert "filled in" not in output


def test_dry_run_takes_binary_mode_as_one_file(tmp_path: Path) -> None:
    event = tmp_path / "binary.json"
    headers = {
        "ce_specversion": "1.0",
        "ce_id": "evt-2",
        "ce_source": "shop/products",
        "ce_type": "product.low_stock",
        "content-type": "application/json",
    }
    event.write_text(json.dumps({"headers": headers, "data": DATA | {"stock": 50}}))
    code, output = run("test", LOW_STOCK, "--event", str(event))
    assert code == 0, output
    assert "stock = 50, so 'stock < 10' is false" in output


def test_dry_run_takes_binary_mode_as_data_and_headers(tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    data.write_text(json.dumps(DATA))
    headers = ["ce_specversion=1.0", "ce_id=evt-3", "ce_source=shop", "ce_type=product.low_stock"]
    code, output = run("test", LOW_STOCK, "--event", str(data), *(f"--header={h}" for h in headers))
    assert code == 0, output
    assert "WOULD FIRE" in output
    # binary mode without ce_id is refused with the worker's reason (no defaults there)
    code, output = run("test", LOW_STOCK, "--event", str(data), "--header", "ce_specversion=1.0")
    assert code == 1
    assert "invalid event (missing_attribute)" in output


def test_dry_run_refuses_what_the_worker_refuses(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"specversion": "0.3", "id": "1", "source": "s", "type": "t"}))
    code, output = run("test", LOW_STOCK, "--event", str(event))
    assert code == 1
    assert "invalid event (not_cloudevent): specversion must be '1.0'" in output
    event.write_text(json.dumps({"type": "product.low_stock", "data": [1, 2]}))
    code, output = run("test", LOW_STOCK, "--event", str(event))
    assert code == 1
    assert "invalid event (data_not_object)" in output
    code, output = run("test", LOW_STOCK, "--event", str(event), "--header", "no-equals-sign")
    assert code == 1
    assert "header 'no-equals-sign' is not NAME=VALUE" in output
