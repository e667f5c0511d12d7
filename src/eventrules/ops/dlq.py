"""Dead letters: read them with their reasons, send chosen ones back to their source topic.

A replay is recorded on the dlq topic itself: a marker record keyed ``replayed:<dlq offset>``
(header ``eventrules-dlq-marker: replayed``), so listing shows what was replayed, when and by
whom, for as long as the topic retains it, whoever ran the replay.
"""

from __future__ import annotations

import getpass
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from confluent_kafka import KafkaException, Message, Producer

from eventrules.errors import KafkaError, NotFoundError, OperationError
from eventrules.kafka.clients import producer_config, read_to_end
from eventrules.kafka.deadletter import DLQ_HEADER_PREFIX, read_dead_letter_headers
from eventrules.kafka.records import Headers
from eventrules.settings import Settings

__all__ = [
    "MARKER_HEADER",
    "REPLAYED_FROM_HEADER",
    "DeadLetter",
    "choose_dead_letters",
    "read_dead_letters",
    "replay_dead_letters",
]

MARKER_HEADER = "eventrules-dlq-marker"
REPLAYED_FROM_HEADER = "eventrules-replayed-from"
_MARKER_KEY_PREFIX = "replayed:"


@dataclass
class DeadLetter:
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    info: dict[str, str]
    replays: list[dict[str, Any]] = field(default_factory=list)

    @property
    def source(self) -> str:
        info = self.info
        topic = info.get("source.topic", "?")
        return f"{topic}[{info.get('source.partition', '?')}]@{info.get('source.offset', '?')}"


def _is_marker(message: Message) -> bool:
    headers = cast(Headers, message.headers() or [])
    return any(name == MARKER_HEADER for name, _ in headers)


def read_dead_letters(settings: Settings) -> list[DeadLetter]:
    """Every dead letter the topic holds, with the replays recorded for it."""
    letters: dict[int, DeadLetter] = {}
    markers: list[tuple[int, dict[str, Any]]] = []
    for message in read_to_end(settings.kafka_client_config(), settings.topic("dlq")):
        if _is_marker(message):
            key = (message.key() or b"").decode(errors="replace")
            try:
                replayed = int(key.removeprefix(_MARKER_KEY_PREFIX))
                detail = orjson.loads(message.value() or b"{}")
            except (ValueError, orjson.JSONDecodeError):
                continue
            markers.append((replayed, detail if isinstance(detail, dict) else {}))
            continue
        headers = cast(Headers, list(message.headers() or []))
        offset = message.offset() or 0
        letters[offset] = DeadLetter(
            offset, message.key(), message.value(), headers, read_dead_letter_headers(headers)
        )
    for replayed, detail in markers:
        if replayed in letters:
            letters[replayed].replays.append(detail)
    return [letters[offset] for offset in sorted(letters)]


def choose_dead_letters(
    letters: Sequence[DeadLetter],
    *,
    offsets: Collection[int] = (),
    reason: str | None = None,
    everything: bool = False,
    again: bool = False,
) -> list[DeadLetter]:
    """The dead letters a replay names; already replayed ones only ``again``.

    Raises NotFoundError for an offset the topic does not hold, OperationError for a chosen
    letter that does not say where it came from."""
    chosen = [
        letter
        for letter in letters
        if (everything or letter.offset in offsets or letter.info.get("reason") == reason)
        and (again or not letter.replays)
        and (reason is None or letter.info.get("reason") == reason)
    ]
    missing = sorted(set(offsets) - {letter.offset for letter in letters})
    if missing:
        raise NotFoundError(f"no dead letter at offset(s) {missing}")
    unroutable = [letter.offset for letter in chosen if "source.topic" not in letter.info]
    if unroutable:
        raise OperationError(f"dead letter(s) {unroutable} carry no dlq.source.topic")
    truncated = [letter.offset for letter in chosen if letter.info.get("truncated") == "true"]
    if truncated:
        raise OperationError(
            f"dead letter(s) {truncated} were truncated to fit the dlq topic; their original "
            "value is gone (dlq.original.size and dlq.original.sha256 identify it)"
        )
    return chosen


def _replay_headers(letter: DeadLetter) -> list[tuple[str, str | bytes | None]]:
    kept = [
        (name, value)
        for name, value in letter.headers
        if value is not None
        and not name.startswith(DLQ_HEADER_PREFIX)
        and name != REPLAYED_FROM_HEADER
    ]
    return [*kept, (REPLAYED_FROM_HEADER, f"dlq@{letter.offset}".encode())]


def replay_dead_letters(
    settings: Settings, chosen: Sequence[DeadLetter], *, by: str | None = None
) -> None:
    """Send each dead letter back to its source topic with its original key, value and headers
    (``dlq.*`` dropped, ``eventrules-replayed-from: dlq@<offset>`` added), then record the
    replay with a marker. Each letter on its own: one that cannot be sent (its topic is gone,
    it is too large) does not stop the others. Raises KafkaError naming every letter that was
    not replayed."""
    producer = Producer(producer_config(settings.kafka_client_config()))
    who = by or getpass.getuser()
    failed: list[str] = []
    for letter in chosen:
        target = letter.info["source.topic"]
        problem = _send_one(producer, target, letter.key, letter.value, _replay_headers(letter))
        if problem is None:
            # The event first, then the marker: a crash in between leaves an unrecorded replay
            # (visible as not replayed, safe to repeat: ids are the original ones), never a
            # recorded replay that did not happen.
            marker = {
                "replayed_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "to_topic": target,
                "by": who,
            }
            problem = _send_one(
                producer,
                settings.topic("dlq"),
                f"{_MARKER_KEY_PREFIX}{letter.offset}".encode(),
                orjson.dumps(marker),
                [(MARKER_HEADER, cast(bytes | None, b"replayed"))],
            )
        if problem is not None:
            failed.append(f"dlq@{letter.offset}: {problem}")
    if failed:
        done = len(chosen) - len(failed)
        raise KafkaError(f"replayed {done} of {len(chosen)}; not replayed: {'; '.join(failed)}")


def _send_one(
    producer: Producer,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, str | bytes | None]],
) -> str | None:
    """Produce one record and wait for it; the problem, or None once it is delivered."""
    failures: list[str] = []

    def delivered(error: Any, message: Message) -> None:
        if error is not None:
            failures.append(str(error))

    try:
        producer.produce(topic, key=key, value=value, headers=headers, on_delivery=delivered)
    except (KafkaException, BufferError) as exc:
        return str(exc)
    if producer.flush(30):
        return "not delivered in 30s"
    return failures[0] if failures else None
