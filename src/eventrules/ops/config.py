"""Managing definitions on the config topic: read the live table, plan changes, publish them.

The config topic is the source of truth; these functions are what ``eventrules config`` and
the worker's manual runs use to read and write it.
"""

from __future__ import annotations

import getpass
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import orjson
from confluent_kafka import KafkaException, Producer

from eventrules.definitions.files import Definition, parse_definition, read_definition_documents
from eventrules.definitions.gate import ConfigGate
from eventrules.definitions.records import definition_key, parse_definition_key
from eventrules.definitions.signatures import (
    VERSION_HEADER,
    ConfigSigner,
    ConfigVerifier,
    RecordHeaders,
)
from eventrules.definitions.versions import VersionMarks
from eventrules.errors import (
    ConfigConflictError,
    ConfigRecordError,
    ConfigurationError,
    DefinitionError,
    KafkaError,
    NotFoundError,
)
from eventrules.kafka.clients import producer_config, read_to_end
from eventrules.ops.audit import (
    AuditEntry,
    audit_entry,
    audit_marks,
    read_audit,
    version_in_audit,
)
from eventrules.rules.models import Rule, parse_rule
from eventrules.settings import Settings
from eventrules.workflows.compiled import compile_actions

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
    "plan_rollback",
    "plan_toggle",
    "publish",
    "publish_checked",
    "read_history",
    "read_live",
    "read_live_definitions",
    "signer_from_settings",
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
                if not isinstance(definition, Rule):
                    # templates are refused when published, not first by every worker
                    compile_actions(definition)
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


class Live(dict[tuple[str, str], LiveDefinition]):
    """The live table, and ``marks``: the highest version each definition ever had (deletes
    included), which a re-created definition must exceed."""

    def __init__(self, marks: Mapping[tuple[str, str], int] | None = None) -> None:
        super().__init__()
        self.marks: dict[tuple[str, str], int] = dict(marks or {})


def read_live_definitions(
    client_config: dict[str, Any],
    topic: str,
    *,
    timeout: float = 30.0,
    verifier: ConfigVerifier | None = None,
) -> Live:
    """The current table: every partition of the config topic read to its end offset, each
    record through the same signature and version checks as the workers' (a record they
    reject is not live here either)."""
    gate = ConfigGate(topic, verifier or ConfigVerifier(), VersionMarks())
    table = Live()
    for message in read_to_end(client_config, topic, timeout=timeout):
        key, value = message.key(), message.value()
        if key is None:
            continue
        headers = cast(RecordHeaders, message.headers() or [])
        try:
            ident = parse_definition_key(key)
            signed = gate.signed_version(key, value, headers)
            if value is None:
                gate.check_delete(ident, signed)
                table.pop(ident, None)
                gate.marks.deleted(ident, signed)
                continue
            parsed = orjson.loads(value)
            if not isinstance(parsed, dict):
                continue
            version = parsed.get("version", 1)
            gate.check_upsert(ident, version if isinstance(version, int) else -1, signed)
        except (DefinitionError, ConfigRecordError, orjson.JSONDecodeError):
            continue
        gate.marks.installed(ident, int(parsed.get("version", 1)))
        table[ident] = LiveDefinition(
            ident[0], ident[1], parsed, message.offset() or 0, message.timestamp()[1]
        )
    table.marks = dict(gate.marks.marks)
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
    note: str | None = None  # why, for the audit trail (a rollback, a toggle)


def plan_changes(
    definitions: Sequence[Definition],
    live: Live,
    *,
    updated_by: str | None = None,
    now: datetime | None = None,
    prune: bool = False,
) -> list[PlannedChange]:
    """What publishing ``definitions`` would do. Versions only grow: an update gets one more
    than the live version (or the file's, if higher), a create one more than the highest
    version the definition ever had (or the file's); timestamps and authors are recorded."""
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
            version = max(definition.version, live.marks.get(key, 0) + 1)
            value.update(
                version=version,
                created_at=value.get("created_at", now.isoformat()),
                updated_at=now.isoformat(),
                updated_by=author,
            )
            changes.append(PlannedChange("create", definition.kind, definition.id, version, value))
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


def _record_headers(
    signer: ConfigSigner | None, topic: str, key: bytes, version: int, value: bytes | None
) -> list[tuple[str, str | bytes | None]]:
    if signer is None:
        return [(VERSION_HEADER, str(version).encode())]
    return list(signer.headers(topic, key, version, value))


def publish(
    client_config: dict[str, Any],
    topic: str,
    changes: Sequence[PlannedChange],
    *,
    audit_topic: str,
    author: str,
    previous: Mapping[tuple[str, str], LiveDefinition],
    signer: ConfigSigner | None = None,
    transactional_prefix: str = "eventrules-publisher",
    now: datetime | None = None,
) -> int:
    """Publish creates, updates and deletes (tombstones) with their audit entries, all in one
    Kafka transaction; each record signed by ``signer`` when given. Returns records written."""
    now = now or datetime.now(UTC)
    producer = Producer(
        producer_config(
            client_config, transactional_id=f"{transactional_prefix}-{uuid.uuid4().hex}"
        )
    )
    written = 0
    try:
        producer.init_transactions(30)
        producer.begin_transaction()
        for change in changes:
            if change.action == "unchanged":
                continue
            key = definition_key(change.kind, change.definition_id)
            deleting = change.action == "delete"
            version = (change.live_version if deleting else change.version) or 0
            value = None if deleting else orjson.dumps(change.value)
            producer.produce(
                topic,
                key=key,
                value=value,
                headers=_record_headers(signer, topic, key, version, value),
            )
            before = previous.get((change.kind, change.definition_id))
            entry = orjson.dumps(
                audit_entry(
                    kind=change.kind,
                    definition_id=change.definition_id,
                    action=change.action,
                    version=version,
                    previous=before.value if before is not None else None,
                    definition=change.value,
                    by=str((change.value or {}).get("updated_by") or author),
                    at=now,
                    signer=signer.key_id if signer is not None else None,
                    note=change.note,
                )
            )
            producer.produce(
                audit_topic,
                key=key,
                value=entry,
                headers=_record_headers(signer, audit_topic, key, version, entry),
            )
            written += 1
        producer.commit_transaction(60)
    except KafkaException as exc:
        error = exc.args[0]
        if error.txn_requires_abort():
            producer.abort_transaction(30)
        raise KafkaError(f"publishing to {topic} failed, nothing was published: {error}") from None
    return written


def check_not_changed(
    planned_against: dict[tuple[str, str], LiveDefinition],
    live_now: dict[tuple[str, str], LiveDefinition],
    changes: Sequence[PlannedChange],
) -> None:
    """Raise ConfigConflictError when a key the plan writes changed since it was planned.

    The record offset identifies a version exactly (a republish of the same version number is
    still a change someone else made), so offsets are compared, not version numbers; a record
    republished byte for byte (by the config guard) is the same version, not a change."""
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
        elif (
            before is not None
            and now is not None
            and before.offset != now.offset
            and before.value != now.value  # the guard's republish of the same record is not
        ):
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
        "update",
        current.kind,
        current.definition_id,
        live_version + 1,
        value,
        live_version,
        note="enable" if enabled else "disable",
    )


def plan_rollback(
    live: Live,
    history: list[AuditEntry],
    kind: str,
    definition_id: str,
    to_version: int,
    *,
    updated_by: str | None = None,
    now: datetime | None = None,
) -> PlannedChange:
    """Publish the content of ``to_version`` (from the audit trail) as the next version: above
    the live one and above every version the definition ever had, so workers accept it."""
    now = now or datetime.now(UTC)
    content = version_in_audit(history, to_version)
    key = (kind, definition_id)
    current = live.get(key)
    live_version = int(current.value.get("version", 0)) if current is not None else None
    ever = max([live.marks.get(key, 0), live_version or 0, *(e.version for e in history)])
    version = ever + 1
    value = {
        **content,
        "version": version,
        "updated_at": now.isoformat(),
        "updated_by": updated_by or getpass.getuser(),
    }
    return PlannedChange(
        "update" if current is not None else "create",
        kind,
        definition_id,
        version,
        value,
        live_version,
        note=f"rollback to v{to_version}",
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


def signer_from_settings(settings: Settings) -> ConfigSigner | None:
    """The publisher's signing key; refuses to go on unsigned when workers demand signatures."""
    verifier = ConfigVerifier(settings.config_trusted_keys)
    if settings.config_signing_key_file is None:
        if verifier.enforced:
            raise ConfigurationError(
                "the deployment trusts signed config only (EVENTRULES_CONFIG_TRUSTED_KEYS) but"
                " no signing key is set: EVENTRULES_CONFIG_SIGNING_KEY_FILE"
            )
        return None
    signer = ConfigSigner.from_file(settings.config_signing_key_file)
    if verifier.enforced and signer.key_id not in verifier.key_ids:
        raise ConfigurationError(
            f"the signing key {signer.key_id} is not among the trusted keys"
            f" ({', '.join(verifier.key_ids)}): workers would reject what it signs"
        )
    return signer


def read_live(settings: Settings) -> Live:
    """The live table of the deployment ``settings`` names, with every definition's highest
    version ever (from the config topic and the audit trail)."""
    verifier = ConfigVerifier(settings.config_trusted_keys)
    client = settings.kafka_client_config()
    live = read_live_definitions(client, settings.topic("config"), verifier=verifier)
    audited = read_audit(client, settings.topics.audit, verifier=verifier)
    for key, mark in audit_marks(audited).items():
        live.marks[key] = max(live.marks.get(key, 0), mark)
    return live


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
    settings: Settings,
    changes: Sequence[PlannedChange],
    planned_against: Live,
    *,
    force: bool,
    author: str | None = None,
) -> int:
    """Re-read the live versions, refuse (ConfigConflictError) if a planned key changed since
    ``planned_against`` was read, unless ``force``; then publish, signed with the configured
    key and audited. Returns records written. ``author``: who, for deletes (default: $USER).

    The audit trail's "previous" is what is live now (equal to what was planned against unless
    ``force``), so a caller that planned from versions and offsets alone audits the real diff."""
    signer = signer_from_settings(settings)
    client = settings.kafka_client_config()
    topic = settings.topic("config")
    verifier = ConfigVerifier(settings.config_trusted_keys)
    now_live = read_live_definitions(client, topic, verifier=verifier)
    if not force:
        check_not_changed(planned_against, now_live, changes)
    return publish(
        client,
        topic,
        changes,
        audit_topic=settings.topics.audit,
        author=author or getpass.getuser(),
        previous=now_live,
        signer=signer,
        transactional_prefix=f"{settings.app_id}-publisher",
    )


def definition_history(settings: Settings, kind: str, definition_id: str) -> list[AuditEntry]:
    """Every audited change of one definition, oldest first (outlives compaction)."""
    return read_audit(
        settings.kafka_client_config(),
        settings.topics.audit,
        verifier=ConfigVerifier(settings.config_trusted_keys),
        kind=kind,
        definition_id=definition_id,
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
