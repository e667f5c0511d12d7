"""The config topic's record format: key ``<kind>:<id>``, value the definition's JSON, a null
value (tombstone) deletes; and :class:`ConfigChange`, what applying one record did.

Pure: shared by the worker's config table, the engines that hold definitions, and the
operations that read and publish the topic.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from eventrules.errors import DefinitionError

__all__ = [
    "KINDS",
    "ChangeOutcome",
    "ConfigChange",
    "DefinitionStore",
    "UpsertOutcome",
    "definition_key",
    "parse_definition_key",
]

KINDS: Final = ("workflow", "rule")

ChangeOutcome = Literal["added", "replaced", "unchanged", "stale", "deleted", "absent", "rejected"]


def definition_key(kind: str, definition_id: str) -> bytes:
    return f"{kind}:{definition_id}".encode()


def parse_definition_key(key: bytes | None) -> tuple[str, str]:
    """``(kind, id)`` of a config key; raises DefinitionError for keys we do not understand."""
    text = (key or b"").decode(errors="replace")
    kind, sep, definition_id = text.partition(":")
    if not sep or kind not in KINDS or not definition_id:
        raise DefinitionError(f"config key {text!r} is not '<kind>:<id>' with kind in {KINDS}")
    return kind, definition_id


@dataclass(frozen=True)
class ConfigChange:
    """What applying one config message did; ``outcome`` is also the log's verb."""

    kind: str
    definition_id: str
    outcome: ChangeOutcome
    version: int | None = None
    error: str | None = None
    # why a record was rejected, the metric's label (see eventrules.runtime.config_table)
    reason: str | None = None


class UpsertOutcome(enum.Enum):
    """What installing a definition did (the same rules for every kind, see ``Engine.upsert``)."""

    ADDED = "added"
    REPLACED = "replaced"
    UNCHANGED = "unchanged"
    STALE = "stale"


class DefinitionStore(Protocol):
    """What holds the compiled definitions of one kind (the workflow engine, the rules engine)."""

    def upsert(self, definition: Any, /) -> UpsertOutcome:
        """Compile and install; raises DefinitionError and changes nothing if bad."""

    def remove(self, definition_id: str, /) -> bool:
        """Drop a definition; False when none was held."""
