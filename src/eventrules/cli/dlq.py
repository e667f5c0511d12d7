"""``eventrules dlq``: inspect dead letters and send them back to their source topic.

A replay is recorded on the dlq topic itself: a marker record keyed ``replayed:<dlq offset>``
(header ``eventrules-dlq-marker: replayed``), so ``dlq list`` shows what was replayed, when and
by whom, for as long as the topic retains it, whoever ran the replay.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import click
import orjson
from confluent_kafka import Message, Producer
from rich.console import Console
from rich.table import Table

from eventrules.errors import EventRulesError
from eventrules.kafka.clients import read_to_end
from eventrules.kafka.deadletter import DLQ_HEADER_PREFIX, read_dead_letter_headers
from eventrules.settings import Settings

__all__ = ["MARKER_HEADER", "REPLAYED_FROM_HEADER", "dlq"]

MARKER_HEADER = "eventrules-dlq-marker"
REPLAYED_FROM_HEADER = "eventrules-replayed-from"
_MARKER_KEY_PREFIX = "replayed:"


@dataclass
class DeadLetter:
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    info: dict[str, str]
    replays: list[dict[str, Any]] = field(default_factory=list)

    @property
    def source(self) -> str:
        info = self.info
        topic = info.get("source.topic", "?")
        return f"{topic}[{info.get('source.partition', '?')}]@{info.get('source.offset', '?')}"


def _is_marker(message: Message) -> bool:
    headers = cast(list[tuple[str, bytes | None]], message.headers() or [])
    return any(name == MARKER_HEADER for name, _ in headers)


def read_dead_letters(settings: Settings, topic: str) -> list[DeadLetter]:
    """Every dead letter the topic holds, with the replays recorded for it."""
    letters: dict[int, DeadLetter] = {}
    markers: list[tuple[int, dict[str, Any]]] = []
    for message in read_to_end(settings.kafka_client_config(), topic):
        if _is_marker(message):
            key = (message.key() or b"").decode(errors="replace")
            try:
                replayed = int(key.removeprefix(_MARKER_KEY_PREFIX))
                detail = orjson.loads(message.value() or b"{}")
            except (ValueError, orjson.JSONDecodeError):
                continue
            markers.append((replayed, detail if isinstance(detail, dict) else {}))
            continue
        headers = cast(list[tuple[str, bytes | None]], list(message.headers() or []))
        offset = message.offset() or 0
        letters[offset] = DeadLetter(
            offset, message.key(), message.value(), headers, read_dead_letter_headers(headers)
        )
    for replayed, detail in markers:
        if replayed in letters:
            letters[replayed].replays.append(detail)
    return [letters[offset] for offset in sorted(letters)]


def _table(letters: Iterable[DeadLetter]) -> Table:
    table = Table("offset", "source", "reason", "error", "dead-lettered at", "replayed")
    for letter in letters:
        replayed = (
            f"[green]{len(letter.replays)}x, last {letter.replays[-1].get('replayed_at', '')}[/]"
            if letter.replays
            else "-"
        )
        table.add_row(
            str(letter.offset),
            letter.source,
            letter.info.get("reason", ""),
            letter.info.get("error", "")[:80],
            letter.info.get("timestamp", ""),
            replayed,
        )
    return table


def _dlq_topic(settings: Settings) -> str:
    return settings.topic_prefix + "dlq"


def _read(settings: Settings, console: Console) -> list[DeadLetter]:
    topic = _dlq_topic(settings)
    try:
        with console.status(f"reading {topic}"):
            return read_dead_letters(settings, topic)
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def dlq() -> None:
    """Dead letters: list them with their reasons, replay them to their source topic."""


@dlq.command("list")
@click.option("--reason", default=None, help="Only this dlq.reason.")
@click.option("--limit", type=int, default=50, show_default=True, help="Newest N dead letters.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per dead letter.")
def list_command(reason: str | None, limit: int, as_json: bool) -> None:
    """Dead letters with their reason, source and replay status."""
    settings = Settings()
    console = Console(width=200)
    letters = [
        letter
        for letter in _read(settings, console)
        if reason is None or letter.info.get("reason") == reason
    ]
    newest = letters[-limit:] if limit > 0 else letters
    if as_json:
        for letter in newest:
            row = {
                "offset": letter.offset,
                **{f"dlq.{name}": value for name, value in letter.info.items()},
                "replays": letter.replays,
            }
            click.echo(orjson.dumps(row).decode())
        return
    console.print(_table(newest))
    console.print(f"{len(newest)} of {len(letters)} dead letter(s)")


def _replay_headers(letter: DeadLetter) -> list[tuple[str, str | bytes | None]]:
    kept = [
        (name, value)
        for name, value in letter.headers
        if value is not None
        and not name.startswith(DLQ_HEADER_PREFIX)
        and name != REPLAYED_FROM_HEADER
    ]
    return [*kept, (REPLAYED_FROM_HEADER, f"dlq@{letter.offset}".encode())]


@dlq.command("replay")
@click.option("--offset", "offsets", type=int, multiple=True, help="A dlq offset; repeatable.")
@click.option("--reason", default=None, help="Every dead letter with this dlq.reason.")
@click.option("--all", "replay_all", is_flag=True, help="Every dead letter.")
@click.option("--again", is_flag=True, help="Include dead letters already replayed.")
@click.option("--yes", is_flag=True, help="Replay without asking.")
@click.option("--dry-run", is_flag=True, help="Only show what would be replayed.")
def replay_command(
    *,
    offsets: tuple[int, ...],
    reason: str | None,
    replay_all: bool,
    again: bool,
    yes: bool,
    dry_run: bool,
) -> None:
    """Send dead letters back to their source topic with their original key, value and headers.

    The ``dlq.*`` headers are dropped and ``eventrules-replayed-from: dlq@<offset>`` added; a
    marker on the dlq topic records each replay. Already replayed ones are skipped unless
    --again."""
    if not (offsets or reason or replay_all):
        raise click.UsageError("choose dead letters with --offset, --reason or --all")
    settings = Settings()
    console = Console(width=200)
    letters = _read(settings, console)
    chosen = [
        letter
        for letter in letters
        if (replay_all or letter.offset in offsets or letter.info.get("reason") == reason)
        and (again or not letter.replays)
        and (reason is None or letter.info.get("reason") == reason)
    ]
    missing = sorted(set(offsets) - {letter.offset for letter in letters})
    if missing:
        raise click.ClickException(f"no dead letter at offset(s) {missing}")
    unroutable = [letter.offset for letter in chosen if "source.topic" not in letter.info]
    if unroutable:
        raise click.ClickException(f"dead letter(s) {unroutable} carry no dlq.source.topic")
    if not chosen:
        console.print("nothing to replay (already replayed ones need --again)")
        return
    console.print(_table(chosen))
    if dry_run:
        console.print(f"dry run: {len(chosen)} dead letter(s) not replayed")
        return
    if not yes and not click.confirm(f"replay {len(chosen)} dead letter(s)?"):
        raise SystemExit(1)
    topic = _dlq_topic(settings)
    producer = Producer(
        {**settings.kafka_client_config(), "enable.idempotence": True, "acks": "all"}
    )
    failures: list[str] = []

    def delivered(error: Any, message: Message) -> None:
        if error is not None:
            failures.append(f"{message.topic()}: {error}")

    by = getpass.getuser()
    with console.status(f"replaying {len(chosen)} dead letter(s)"):
        for letter in chosen:
            target = letter.info["source.topic"]
            producer.produce(
                target,
                key=letter.key,
                value=letter.value,
                headers=_replay_headers(letter),
                on_delivery=delivered,
            )
            # The event first, then the marker: a crash in between leaves an unrecorded replay
            # (visible as not replayed, safe to repeat: ids are the original ones), never a
            # recorded replay that did not happen.
            if producer.flush(30) or failures:
                break
            marker = {
                "replayed_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "to_topic": target,
                "by": by,
            }
            producer.produce(
                topic,
                key=f"{_MARKER_KEY_PREFIX}{letter.offset}".encode(),
                value=orjson.dumps(marker),
                headers=[(MARKER_HEADER, b"replayed")],
                on_delivery=delivered,
            )
        remaining = producer.flush(30)
    if remaining or failures:
        raise click.ClickException(f"replay incomplete: {failures or f'{remaining} undelivered'}")
    console.print(
        f"replayed {len(chosen)} dead letter(s): "
        + ", ".join(f"dlq@{letter.offset} -> {letter.info['source.topic']}" for letter in chosen)
    )
