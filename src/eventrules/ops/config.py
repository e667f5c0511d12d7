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

from eventrules.definitions.files import Definition, parse_definition, read_definition_documents
from eventrules.definitions.records import definition_key, parse_definition_key
from eventrules.errors import ConfigConflictError, DefinitionError, KafkaError, NotFoundError
from eventrules.kafka.clients import producer_config, read_to_end
from eventrules.rules.models import Rule, parse_rule
from eventrules.settings import Settings

__all__ = [
    "DefinitionVersion",
    "Live",
    "LiveDefinition",
    "PlannedChange",
    "check_not_changed",
    "collect_definitions",
    "definition_history",
    "live_definition",
    "live_rules",
    "plan_changes",
    "plan_toggle",
    "publish",
    "publish_checked",
    "read_history",
    "read_live",
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


def _looks_like_definition(raw: Any) -> bool:
    return isinstance(raw, dict) and "kind" in raw


def collect_definitions(
    paths: Iterable[Path], *, skipped: list[str] | None = None
) -> list[Definition]:
    """Every definition under ``paths``, all validated; raises one DefinitionError listing
    every problem in every file, so nothing is published from a partly invalid set.

    A file named explicitly is always a definition file (``kind`` defaults to workflow). In a
    directory, only documents that declare a ``kind`` are definitions: others (the sample events
    under ``config/templates/events``) are skipped and their sources appended to ``skipped``."""
    definitions: list[Definition] = []
    problems: list[tuple[str, str]] = []
    seen: dict[tuple[str, str], str] = {}
    paths = list(paths)
    explicit = {path for path in paths if not path.is_dir()}
    for file in _definition_files(paths):
        try:
            documents = read_definition_documents(file)
        except DefinitionError as exc:
            problems.append((str(file), str(exc)))
            continue
        if file not in explicit and not any(_looks_like_definition(d.raw) for d in documents):
            if skipped is not None:
                skipped.append(str(file))
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
            # The config key is kind:id, so a workflow and a rule may share an id.
            key = (definition.kind, definition.id)
            if key in seen:
                problems.append(
                    (
                        document.source,
                        f"{definition.kind} {definition.id!r} also in {seen[key]}",
                    )
                )
                continue
            seen[key] = document.source
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
    producer = Producer(producer_config(client_config))
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


def check_not_changed(
    planned_against: dict[tuple[str, str], LiveDefinition],
    live_now: dict[tuple[str, str], LiveDefinition],
    changes: Sequence[PlannedChange],
) -> None:
    """Raise ConfigConflictError when a key the plan writes changed since it was planned.

    The record offset identifies a version exactly (a republish of the same version number is
    still a change someone else made), so offsets are compared, not version numbers."""
    conflicts: list[tuple[str, str]] = []
    for change in changes:
        if change.action == "unchanged":
            continue
        key = (change.kind, change.definition_id)
        before, now = planned_against.get(key), live_now.get(key)
        if before is None and now is None:
            continue
        if before is None and now is not None:
            conflicts.append(
                (f"{key[0]}:{key[1]}", f"created meanwhile (v{now.value.get('version')})")
            )
        elif before is not None and now is None:
            conflicts.append((f"{key[0]}:{key[1]}", "deleted meanwhile"))
        elif before is not None and now is not None and before.offset != now.offset:
            conflicts.append(
                (
                    f"{key[0]}:{key[1]}",
                    f"v{before.value.get('version')} -> v{now.value.get('version')}"
                    f" by {now.value.get('updated_by', '?')}",
                )
            )
    if conflicts:
        raise ConfigConflictError(
            f"{len(conflicts)} definition(s) changed since the plan was made; nothing was"
            " published (re-run to plan again, or --force)",
            conflicts=conflicts,
        )


def plan_toggle(
    current: LiveDefinition,
    *,
    enabled: bool,
    updated_by: str | None = None,
    now: datetime | None = None,
) -> PlannedChange:
    """An update that only flips ``enabled``, published as the next version."""
    now = now or datetime.now(UTC)
    live_version = int(current.value.get("version", 0))
    value = {
        **current.value,
        "enabled": enabled,
        "version": live_version + 1,
        "updated_at": now.isoformat(),
        "updated_by": updated_by or getpass.getuser(),
    }
    return PlannedChange(
        "update", current.kind, current.definition_id, live_version + 1, value, live_version
    )


@dataclass(frozen=True)
class DefinitionVersion:
    """One record of a definition's key still held by the (compacted) config topic."""

    offset: int
    timestamp_ms: int
    value: dict[str, Any] | None  # None: a tombstone (deleted)


def read_history(
    client_config: dict[str, Any], topic: str, kind: str, definition_id: str
) -> list[DefinitionVersion]:
    """Every version of one definition the config topic still holds, oldest first.

    Compaction eventually keeps only the newest record per key, so this is the history the
    topic retains, not necessarily every version ever published."""
    wanted = definition_key(kind, definition_id)
    versions: list[DefinitionVersion] = []
    for message in read_to_end(client_config, topic):
        if message.key() != wanted:
            continue
        raw = message.value()
        value: dict[str, Any] | None = None
        if raw is not None:
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(parsed, dict):
                continue
            value = parsed
        versions.append(DefinitionVersion(message.offset() or 0, message.timestamp()[1], value))
    return versions


Live = dict[tuple[str, str], LiveDefinition]


def read_live(settings: Settings) -> Live:
    """The live table of the deployment ``settings`` names."""
    return read_live_definitions(settings.kafka_client_config(), settings.topic("config"))


def live_definition(
    settings: Settings, kind: str, definition_id: str
) -> tuple[LiveDefinition, Live]:
    """One live definition, and the table it was read from (to plan a guarded change)."""
    live = read_live(settings)
    item = live.get((kind, definition_id))
    if item is None:
        raise NotFoundError(f"no live {kind} {definition_id!r}")
    return item, live


def publish_checked(
    settings: Settings, changes: Sequence[PlannedChange], planned_against: Live, *, force: bool
) -> int:
    """Re-read the live versions, refuse (ConfigConflictError) if a planned key changed since
    ``planned_against`` was read, unless ``force``; then publish. Returns records written."""
    client = settings.kafka_client_config()
    topic = settings.topic("config")
    if not force:
        check_not_changed(planned_against, read_live_definitions(client, topic), changes)
    return publish(client, topic, changes)


def definition_history(
    settings: Settings, kind: str, definition_id: str
) -> list[DefinitionVersion]:
    return read_history(
        settings.kafka_client_config(), settings.topic("config"), kind, definition_id
    )


def live_rules(settings: Settings) -> list[Rule]:
    """The rules on the config topic (what running workers use)."""
    rules: list[Rule] = []
    for (kind, definition_id), item in sorted(read_live(settings).items()):
        if kind != "rule":
            continue
        try:
            rules.append(parse_rule(item.value))
        except DefinitionError as exc:
            raise DefinitionError(f"live rule {definition_id}: {exc}") from None
    return rules
