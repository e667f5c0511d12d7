"""``eventrules executions``: read the executions log."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import click
import orjson
from confluent_kafka import Consumer, TopicPartition
from rich.console import Console
from rich.table import Table

from eventrules.cli.workflows import load_live_engine, run_workflow_now
from eventrules.errors import DefinitionError, EventRulesError
from eventrules.kafka.clients import read_to_end
from eventrules.models.events import Event
from eventrules.models.workflows import parse_workflow
from eventrules.ops.config import read_history
from eventrules.settings import Settings
from eventrules.workflows.catalog import TriggerCatalog
from eventrules.workflows.engine import Engine

_STATUS = click.Choice(["success", "failed", "partial"])
_STYLE = {"success": "green", "failed": "red", "partial": "yellow"}


def _executions_topic(settings: Settings) -> str:
    return settings.topic_prefix + "executions"


def _wanted(record: dict[str, Any], workflow: str | None, status: str | None) -> bool:
    return (workflow is None or record.get("workflow_id") == workflow) and (
        status is None or record.get("status") == status
    )


def _decode(value: bytes | None) -> dict[str, Any] | None:
    try:
        record = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _read_executions(settings: Settings, console: Console) -> list[dict[str, Any]]:
    """Every execution record the topic holds, with a progress indicator while reading."""
    topic = _executions_topic(settings)
    try:
        with console.status(f"reading {topic}"):
            return [
                record
                for message in read_to_end(settings.kafka_client_config(), topic)
                if (record := _decode(message.value())) is not None
            ]
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None


def _table(records: Iterable[dict[str, Any]]) -> Table:
    table = Table(
        "executed at", "workflow", "v", "status", "event", "trigger", "by", "ms", "actions", "error"
    )
    for record in records:
        status = str(record.get("status"))
        actions = record.get("actions") or []
        ok = sum(1 for action in actions if action.get("status") == "success")
        table.add_row(
            str(record.get("executed_at", "")),
            str(record.get("workflow_id")),
            str(record.get("workflow_version")),
            f"[{_STYLE.get(status, 'white')}]{status}[/]",
            str(record.get("trigger_event_id")),
            str(record.get("trigger_event_type")),
            str(record.get("triggered_by")),
            f"{record.get('duration_ms', 0):.1f}",
            f"{ok}/{len(actions)}",
            str(record.get("error") or ""),
        )
    return table


@click.group()
def executions() -> None:
    """The executions log: one record per workflow run."""


@executions.command("list")
@click.option("--workflow", default=None, help="Only this workflow id.")
@click.option("--status", type=_STATUS, default=None)
@click.option("--limit", type=int, default=20, show_default=True, help="Newest N records.")
@click.option("--json", "as_json", is_flag=True, help="One JSON record per line.")
def list_command(workflow: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """The newest execution records, optionally filtered."""
    settings = Settings()
    console = Console(width=200)
    found = [r for r in _read_executions(settings, console) if _wanted(r, workflow, status)]
    found.sort(key=lambda record: str(record.get("executed_at", "")))
    newest = found[-limit:] if limit > 0 else found
    if as_json:
        for record in newest:
            click.echo(orjson.dumps(record).decode())
        return
    console.print(_table(newest))
    console.print(f"{len(newest)} of {len(found)} matching record(s)")


@executions.command("tail")
@click.option("--workflow", default=None, help="Only this workflow id.")
@click.option("--status", type=_STATUS, default=None)
@click.option("--from-beginning", is_flag=True, help="Start at the oldest record, not the end.")
@click.option("--max", "max_records", type=int, default=0, help="Stop after N records (0: never).")
@click.option("--timeout", type=float, default=0.0, help="Stop after N idle seconds (0: never).")
def tail_command(
    workflow: str | None,
    status: str | None,
    from_beginning: bool,
    max_records: int,
    timeout: float,
) -> None:
    """Follow new execution records as JSON lines (Ctrl-C stops)."""
    settings = Settings()
    topic = _executions_topic(settings)
    consumer = Consumer(
        {
            **settings.kafka_client_config(),
            "group.id": f"eventrules-tail-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        info = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if info is None or info.error is not None:
            raise click.ClickException(f"{topic} does not exist; run `eventrules topics apply`")
        start = -2 if from_beginning else -1  # OFFSET_BEGINNING / OFFSET_END
        consumer.assign([TopicPartition(topic, p, start) for p in info.partitions])
        shown = idle = 0
        while max_records <= 0 or shown < max_records:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                idle += 1
                if timeout and idle * 0.5 >= timeout:
                    break
                continue
            idle = 0
            record = _decode(message.value())
            if record is not None and _wanted(record, workflow, status):
                click.echo(orjson.dumps(record).decode())
                shown += 1
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


REPLAY_MARK = "#replay-"


def replay_event_id(original: str, earlier: Iterable[str]) -> str:
    """``<original id>#replay-<n>``, n one more than the replays already recorded.

    Execution ids derive from (source, event id, workflow, version): a replay needs an event id
    of its own, or re-running the same version would reuse the original's execution id and
    action ids and downstream consumers would drop its outputs as duplicates."""
    base = original.split(REPLAY_MARK, 1)[0]
    numbers = [
        int(suffix)
        for event_id in earlier
        if event_id.startswith(base + REPLAY_MARK)
        and (suffix := event_id.removeprefix(base + REPLAY_MARK)).isdigit()
    ]
    return f"{base}{REPLAY_MARK}{max(numbers, default=0) + 1}"


def _recorded_engine(settings: Settings, workflow_id: str, version: int) -> Engine:
    history = read_history(
        settings.kafka_client_config(), settings.topic_prefix + "config", "workflow", workflow_id
    )
    value = next(
        (v.value for v in reversed(history) if v.value and v.value.get("version") == version),
        None,
    )
    if value is None:
        raise click.ClickException(
            f"the config topic no longer holds {workflow_id} v{version} (see `config history`)"
        )
    engine = Engine(
        TriggerCatalog.load(*settings.extra_trigger_files), timezone=settings.zoneinfo()
    )
    try:
        engine.upsert(parse_workflow(value))
    except DefinitionError as exc:
        raise click.ClickException(f"the recorded definition is invalid: {exc}") from None
    return engine


@executions.command("replay")
@click.argument("execution_id")
@click.option(
    "--recorded-version",
    is_flag=True,
    help="Run the workflow version the execution ran (from the config topic's history).",
)
@click.option(
    "--ignore-conditions", is_flag=True, help="Run even if the conditions no longer match."
)
def replay_command(execution_id: str, recorded_version: bool, ignore_conditions: bool) -> None:
    """Re-run the event of EXECUTION_ID against the live version of its workflow.

    The new record has triggered_by: replay and the event id ``<original>#replay-<n>``. Exits
    3 without running when the conditions no longer match (unless --ignore-conditions)."""
    settings = Settings()
    console = Console(width=200, stderr=True)
    records = _read_executions(settings, console)
    original = next((r for r in records if r.get("execution_id") == execution_id), None)
    if original is None:
        raise click.ClickException(f"no execution {execution_id!r} in the executions topic")
    recorded_event = original.get("event")
    if not isinstance(recorded_event, dict):
        raise click.ClickException(f"execution {execution_id} carries no event to replay")
    workflow_id = str(original["workflow_id"])
    try:
        with console.status("reading the config topic"):
            engine = (
                _recorded_engine(settings, workflow_id, int(original["workflow_version"]))
                if recorded_version
                else load_live_engine(settings, workflow_id)
            )
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    workflow = engine.get(workflow_id)
    if workflow is None:  # both loaders installed it; this guards the type, not a case
        raise click.ClickException(f"no workflow {workflow_id!r}")
    earlier = [
        str(r.get("trigger_event_id")) for r in records if r.get("workflow_id") == workflow_id
    ]
    try:
        event = Event.model_validate(
            {
                **{k: v for k, v in recorded_event.items() if k in Event.model_fields},
                "id": replay_event_id(str(recorded_event["id"]), earlier),
            }
        )
    except (KeyError, ValueError) as exc:
        raise click.ClickException(f"the recorded event is unusable: {exc}") from None
    trace = engine.trace(workflow_id, event)
    if not trace.fired and not ignore_conditions:
        # a disabled workflow or changed conditions: the operator decides, we do not guess
        console.print(f"[yellow]{workflow_id} v{workflow.version} would not run:[/]")
        for reason in trace.reasons:
            console.print(f"  {reason}")
        raise SystemExit(3)
    replayed = run_workflow_now(settings, engine, workflow, event, "replay")
    output = replayed.model_dump(mode="json")
    output["replay_of"] = execution_id
    click.echo(orjson.dumps(output, option=orjson.OPT_INDENT_2).decode())
    if replayed.status != "success":
        raise SystemExit(1)
