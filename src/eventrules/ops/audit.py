"""The audit trail of definitions: every published change also goes to the ``config-audit``
topic, a plain log (not compacted, long retention), so who changed what, and every version ever
published, outlive the config topic's compaction.

One record per change, keyed ``<kind>:<id>`` like the config topic, signed like it (the
signature covers the audit topic, key, version and entry). The entry (JSON)::

    {"kind", "id", "action": "create"|"update"|"delete", "note", "version", "previous_version",
     "by", "at", "signer", "diff": [{"field", "before", "after"}], "definition"}

``version`` is the new version (for a delete: the deleted one); ``definition`` the published
value (null for a delete).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson

from eventrules.definitions.records import definition_key, parse_definition_key
from eventrules.definitions.signatures import ConfigVerifier, RecordHeaders
from eventrules.errors import DefinitionError, NotFoundError, SignatureError
from eventrules.kafka.clients import read_to_end

__all__ = [
    "AuditEntry",
    "audit_entry",
    "audit_marks",
    "definition_diff",
    "read_audit",
    "version_in_audit",
]

# Fields that say who/when, not what: left out of diffs.
_BOOKKEEPING = frozenset({"version", "created_at", "updated_at", "created_by", "updated_by"})


@dataclass(frozen=True)
class AuditEntry:
    offset: int
    timestamp_ms: int
    kind: str
    definition_id: str
    entry: dict[str, Any]
    verified: bool | None  # None: no trusted keys configured, nothing was checked

    @property
    def version(self) -> int:
        return int(self.entry.get("version") or 0)

    @property
    def definition(self) -> dict[str, Any] | None:
        value = self.entry.get("definition")
        return value if isinstance(value, dict) else None


def definition_diff(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """The top-level fields that differ (bookkeeping aside), in name order."""
    old, new = before or {}, after or {}
    fields = sorted((set(old) | set(new)) - _BOOKKEEPING)
    return [
        {"field": name, "before": old.get(name), "after": new.get(name)}
        for name in fields
        if old.get(name) != new.get(name)
    ]


def audit_entry(
    *,
    kind: str,
    definition_id: str,
    action: str,
    version: int,
    previous: Mapping[str, Any] | None,
    definition: Mapping[str, Any] | None,
    by: str,
    at: datetime,
    signer: str | None,
    note: str | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "id": definition_id,
        "action": action,
        "note": note,
        "version": version,
        "previous_version": int(previous.get("version", 0)) if previous is not None else None,
        "by": by,
        "at": at.isoformat(),
        "signer": signer,
        "diff": definition_diff(previous, definition),
        "definition": dict(definition) if definition is not None else None,
    }


def read_audit(
    client_config: dict[str, Any],
    topic: str,
    *,
    verifier: ConfigVerifier | None = None,
    kind: str | None = None,
    definition_id: str | None = None,
) -> list[AuditEntry]:
    """The audit entries (of one definition when named), oldest first. With trusted keys, each
    entry's signature is checked and its ``verified`` flag set; nothing is dropped."""
    verifier = verifier or ConfigVerifier()
    wanted = definition_key(kind, definition_id) if kind and definition_id else None
    entries: list[AuditEntry] = []
    for message in read_to_end(client_config, topic):
        key, raw = message.key(), message.value()
        if (wanted is not None and key != wanted) or raw is None or key is None:
            continue
        try:
            entry_kind, entry_id = parse_definition_key(key)
            parsed = orjson.loads(raw)
        except (DefinitionError, orjson.JSONDecodeError):
            continue
        if not isinstance(parsed, dict):
            continue
        verified: bool | None = None
        if verifier.enforced:
            try:
                headers = cast(RecordHeaders, message.headers() or [])
                _, signed_version = verifier.verify(topic, key, raw, headers)
                verified = signed_version == parsed.get("version")
            except SignatureError:
                verified = False
        offset, timestamp_ms = message.offset() or 0, message.timestamp()[1]
        entries.append(AuditEntry(offset, timestamp_ms, entry_kind, entry_id, parsed, verified))
    return entries


def audit_marks(entries: list[AuditEntry]) -> dict[tuple[str, str], int]:
    """The highest version each definition ever had, from the trustworthy entries."""
    marks: dict[tuple[str, str], int] = {}
    for entry in entries:
        if entry.verified is False:
            continue
        ident = (entry.kind, entry.definition_id)
        marks[ident] = max(marks.get(ident, 0), entry.version)
    return marks


def version_in_audit(entries: list[AuditEntry], version: int) -> dict[str, Any]:
    """The definition as published at ``version`` (the latest trustworthy entry with it)."""
    for entry in reversed(entries):
        definition = entry.definition
        if entry.verified is not False and definition is not None and entry.version == version:
            return definition
    published = sorted({e.version for e in entries if e.definition and e.verified is not False})
    raise NotFoundError(
        f"the audit trail holds no published v{version}"
        + (f" (it holds v{', v'.join(map(str, published))})" if published else "")
    )
