"""History and replay on the real broker: dead letters back to their source, executions re-run."""

from __future__ import annotations

import json

import orjson
import pytest
from click.testing import CliRunner

from eventrules.errors import KafkaError, OperationError
from eventrules.ops.dlq import choose_dead_letters, read_dead_letters, replay_dead_letters
from eventrules.settings import Settings
from integration.harness import TEMPLATES, Deployment, cli_ok, cloudevent

pytestmark = pytest.mark.integration


def test_a_fixed_dead_letter_replays_to_an_execution_and_an_execution_replays(
    runner: CliRunner, deployment: Deployment
) -> None:
    cli_ok(runner, "templates", "install", "low-stock-alert", "--yes", "--as", "tests")
    # A worker whose event size limit is too small dead-letters the event ...
    strict = deployment.start_worker(EVENTRULES_MAX_EVENT_BYTES="200")
    strict.wait_ready()
    event = cloudevent(
        "product.low_stock",
        {"productName": "Widget", "stock": 2, "notes": "x" * 300},
        event_id="big-1",
    )
    deployment.produce(
        "events.products", orjson.dumps(event), key=b"p-1", headers=[("trace", b"abc")]
    )
    deployment.read("dlq", until=lambda records: len(records) >= 1)
    strict.stop()

    listed = cli_ok(runner, "dlq", "list", "--json")
    (letter,) = [json.loads(line) for line in listed.splitlines()]
    assert letter["dlq.reason"] == "oversized"
    assert letter["dlq.source.topic"] == deployment.topic("events.products")
    assert letter["replays"] == []
    assert "1 of 1 dead letter(s)" in cli_ok(runner, "dlq", "list")

    # ... the limit is fixed, and the replay produces the execution.
    deployment.start_worker().wait_ready()
    replayed = cli_ok(runner, "dlq", "replay", "--offset", str(letter["offset"]), "--yes")
    assert f"dlq@{letter['offset']} -> {deployment.topic('events.products')}" in replayed
    executions = deployment.executions(
        until=lambda found: any(r["trigger_event_id"] == "big-1" for r in found)
    )
    original = next(r for r in executions if r["trigger_event_id"] == "big-1")
    assert original["status"] == "success"
    assert original["triggered_by"] == "event"

    resent = deployment.read("events.products", until=lambda records: len(records) >= 2)
    headers = dict(resent[-1].headers() or [])
    assert resent[-1].key() == b"p-1"
    assert resent[-1].value() == orjson.dumps(event)
    assert headers["trace"] == b"abc"
    assert headers["eventrules-replayed-from"] == f"dlq@{letter['offset']}".encode()
    assert not any(name.startswith("dlq.") for name in headers)

    # The replay is recorded: listed as replayed, and not replayed twice by accident.
    (after,) = [json.loads(line) for line in cli_ok(runner, "dlq", "list", "--json").splitlines()]
    assert len(after["replays"]) == 1
    assert "nothing to replay" in cli_ok(runner, "dlq", "replay", "--all", "--yes")

    # executions replay: the same event again, a distinct event id and execution id.
    output = cli_ok(runner, "executions", "replay", original["execution_id"])
    replay = json.loads(output)
    assert replay["triggered_by"] == "replay"
    assert replay["trigger_event_id"] == "big-1#replay-1"
    assert replay["execution_id"] != original["execution_id"]
    assert replay["replay_of"] == original["execution_id"]
    recorded = deployment.executions(
        until=lambda found: any(r["trigger_event_id"] == "big-1#replay-1" for r in found)
    )
    assert sum(1 for r in recorded if r["triggered_by"] == "replay") == 1

    # --recorded-version runs v1 even after an update; the next replay is #replay-2.
    changed = TEMPLATES / "workflows" / "low-stock-alert.yaml"
    text = changed.read_text().replace("stock < 10", "stock < 5")
    (deployment.tmp / "ls.yaml").write_text(text)
    cli_ok(runner, "config", "apply", "-f", str(deployment.tmp / "ls.yaml"), "--yes")
    again = json.loads(
        cli_ok(runner, "executions", "replay", original["execution_id"], "--recorded-version")
    )
    assert (again["workflow_version"], again["trigger_event_id"]) == (1, "big-1#replay-2")
    current = json.loads(cli_ok(runner, "executions", "replay", original["execution_id"]))
    assert current["workflow_version"] == 2


def test_one_dead_letter_that_cannot_be_replayed_does_not_stop_the_others(
    deployment: Deployment,
) -> None:
    def letter(source_topic: str, value: bytes, **extra: str) -> None:
        headers = [
            ("dlq.reason", b"not_json"),
            ("dlq.error", b"test"),
            ("dlq.source.topic", source_topic.encode()),
            ("dlq.source.partition", b"0"),
            ("dlq.source.offset", b"0"),
            *((f"dlq.{name}", text.encode()) for name, text in extra.items()),
        ]
        deployment.produce("dlq", value, key=b"k", headers=headers)

    letter("bad topic!", b"to nowhere")
    letter(deployment.topic("events.orders"), b"back home")
    letter(deployment.topic("events.orders"), b"cut", truncated="true")
    settings = Settings(bootstrap_servers=deployment.bootstrap, topic_prefix=deployment.prefix)
    letters = read_dead_letters(settings)
    with pytest.raises(OperationError, match="truncated"):
        choose_dead_letters(letters, everything=True)
    chosen = [letter for letter in letters if letter.info.get("truncated") != "true"]
    with pytest.raises(KafkaError, match=r"replayed 1 of 2; not replayed: dlq@0"):
        replay_dead_letters(settings, chosen, by="tests")
    home = deployment.read("events.orders", until=lambda found: len(found) >= 1)
    assert [record.value() for record in home] == [b"back home"]
    replayed = {letter.offset: letter.replays for letter in read_dead_letters(settings)}
    assert replayed[0] == []
    assert replayed[1][0]["by"] == "tests"
