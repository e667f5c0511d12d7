"""``eventrules dlq``: inspect dead letters and send them back to their source topic
(see :mod:`eventrules.ops.dlq` for how replays are recorded)."""

from __future__ import annotations

from collections.abc import Iterable

import click
import orjson
from rich.console import Console
from rich.table import Table

from eventrules.errors import EventRulesError
from eventrules.ops.dlq import (
    DeadLetter,
    choose_dead_letters,
    read_dead_letters,
    replay_dead_letters,
)
from eventrules.settings import Settings

__all__ = ["dlq"]


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


def _read(settings: Settings, console: Console) -> list[DeadLetter]:
    try:
        with console.status(f"reading {settings.topic('dlq')}"):
            return read_dead_letters(settings)
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
    try:
        chosen = choose_dead_letters(
            _read(settings, console),
            offsets=offsets,
            reason=reason,
            everything=replay_all,
            again=again,
        )
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    if not chosen:
        console.print("nothing to replay (already replayed ones need --again)")
        return
    console.print(_table(chosen))
    if dry_run:
        console.print(f"dry run: {len(chosen)} dead letter(s) not replayed")
        return
    if not yes and not click.confirm(f"replay {len(chosen)} dead letter(s)?"):
        raise SystemExit(1)
    try:
        with console.status(f"replaying {len(chosen)} dead letter(s)"):
            replay_dead_letters(settings, chosen)
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(
        f"replayed {len(chosen)} dead letter(s): "
        + ", ".join(f"dlq@{letter.offset} -> {letter.info['source.topic']}" for letter in chosen)
    )
