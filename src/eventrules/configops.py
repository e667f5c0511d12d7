"""Managing definitions on the config topic: read the live table, plan changes, publish them.

The config topic is the source of truth; these functions are what ``eventrules config`` and
the worker's manual runs use to read and write it.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from confluent_kafka import Producer

from eventrules.definitions_io import Definition, parse_definition, read_definition_documents
from eventrules.errors import DefinitionError, KafkaError
from eventrules.kafka_io import read_to_end
from eventrules.runtime.config_table import definition_key, parse_definition_key

__all__ = [
    "LiveDefinition",
    "PlannedChange",
    "collect_definitions",
    "plan_changes",
    "publish",
    "read_live_definitions",
]

_DEFINITION_SUFFIXES = {".yaml", ".yml", ".json"}
# Fields that record who/when/which version: a change in these alone is not a change.
_BOOKKEEPING = {"version", "created_at", "updated_at", "created_by", "updated_by"}


@dataclass(frozen=True)
class LiveDefinition:
    kind: str
    definition_id: str
    value: dict[str, Any]
    offset: int
    timestamp_ms: int


def _definition_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.suffix.lower() in _DEFINITION_SUFFIXES)
            )
        else:
            files.append(path)
    return files


def collect_definitions(paths: Iterable[Path]) -> list[Definition]:
    """Every definition under ``paths``, all validated; raises one DefinitionError listing
    every problem in every file, so nothing is published from a partly invalid set."""
    definitions: list[Definition] = []
    problems: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for file in _definition_files(paths):
        try:
            documents = read_definition_documents(file)
        except DefinitionError as exc:
            problems.append((str(file), str(exc)))
            continue
        for document in documents:
            try:
                definition = parse_definition(document.raw)
            except DefinitionError as exc:
                problems.extend(
                    (f"{document.source}: {path}", reason)
                    for path, reason in exc.problems or [("", str(exc))]
                )
                continue
            if definition.id in seen:
                problems.append(
                    (document.source, f"id {definition.id!r} also in {seen[definition.id]}")
                )
                continue
            seen[definition.id] = document.source
            definitions.append(definition)
    if problems:
        raise DefinitionError(
            f"{len(problems)} problem(s); nothing was published", problems=problems
        )
    return definitions


def read_live_definitions(
    client_config: dict[str, Any], topic: str, *, timeout: float = 30.0
) -> dict[tuple[str, str], LiveDefinition]:
    """The current table: every partition of the config topic read to its end offset."""
    table: dict[tuple[str, str], LiveDefinition] = {}
    for message in read_to_end(client_config, topic, timeout=timeout):
        try:
            kind, definition_id = parse_definition_key(message.key())
        except DefinitionError:
            continue
        value = message.value()
        if value is None:
            table.pop((kind, definition_id), None)
            continue
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        if isinstance(parsed, dict):
            table[(kind, definition_id)] = LiveDefinition(
                kind, definition_id, parsed, message.offset() or 0, message.timestamp()[1]
            )
    return table


def _content(value: dict[str, Any]) -> dict[str, Any]:
    return {key: item for key, item in value.items() if key not in _BOOKKEEPING}


@dataclass(frozen=True)
class PlannedChange:
    action: Literal["create", "update", "unchanged", "delete"]
    kind: str
    definition_id: str
    version: int | None
    value: dict[str, Any] | None = field(default=None, repr=False)
    live_version: int | None = None


def plan_changes(
    definitions: Sequence[Definition],
    live: dict[tuple[str, str], LiveDefinition],
    *,
    updated_by: str | None = None,
    now: datetime | None = None,
    prune: bool = False,
) -> list[PlannedChange]:
    """What publishing ``definitions`` would do. Versions only grow: an update gets one more
    than the live version (or the file's, if higher); timestamps and authors are recorded."""
    now = now or datetime.now(UTC)
    author = updated_by or getpass.getuser()
    changes: list[PlannedChange] = []
    wanted: set[tuple[str, str]] = set()
    for definition in definitions:
        value = definition.model_dump(mode="json", exclude_none=True)
        key: tuple[str, str] = (definition.kind, definition.id)
        wanted.add(key)
        current = live.get(key)
        if current is None:
            value.update(
                created_at=value.get("created_at", now.isoformat()),
                updated_at=now.isoformat(),
                updated_by=author,
            )
            changes.append(
                PlannedChange("create", definition.kind, definition.id, definition.version, value)
            )
            continue
        live_version = int(current.value.get("version", 0))
        if _content(current.value) == _content(value):
            changes.append(
                PlannedChange(
                    "unchanged", definition.kind, definition.id, live_version, None, live_version
                )
            )
            continue
        version = max(definition.version, live_version + 1)
        value.update(
            version=version,
            created_at=current.value.get("created_at", now.isoformat()),
            created_by=current.value.get("created_by", value.get("created_by")),
            updated_at=now.isoformat(),
            updated_by=author,
        )
        changes.append(
            PlannedChange("update", definition.kind, definition.id, version, value, live_version)
        )
    if prune:
        for key, current in sorted(live.items()):
            if key not in wanted:
                changes.append(
                    PlannedChange(
                        "delete", key[0], key[1], None, None, int(current.value.get("version", 0))
                    )
                )
    return changes


def publish(client_config: dict[str, Any], topic: str, changes: Sequence[PlannedChange]) -> int:
    """Publish creates, updates and deletes (tombstones); returns how many were written."""
    producer = Producer({**client_config, "enable.idempotence": True, "acks": "all"})
    errors: list[str] = []

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            errors.append(f"{message.key()!r}: {error}")

    written = 0
    for change in changes:
        if change.action == "unchanged":
            continue
        value = orjson.dumps(change.value) if change.action != "delete" else None
        producer.produce(
            topic,
            key=definition_key(change.kind, change.definition_id),
            value=value,
            on_delivery=delivered,
        )
        written += 1
    remaining = producer.flush(30)
    if remaining or errors:
        raise KafkaError(f"publishing to {topic} failed: {errors or f'{remaining} undelivered'}")
    return written
