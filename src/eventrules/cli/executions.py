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

from eventrules.errors import EventRulesError
from eventrules.kafka_io import read_to_end
from eventrules.settings import Settings

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
    try:
        with console.status(f"reading {_executions_topic(settings)}"):
            found = [
                record
                for message in read_to_end(
                    settings.kafka_client_config(), _executions_topic(settings)
                )
                if (record := _decode(message.value())) is not None
                and _wanted(record, workflow, status)
            ]
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
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
