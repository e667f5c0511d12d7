"""The console's side of plan-and-publish: what a plan was made against travels with the
review page, so the publish that follows refuses (through ``ops.config.publish_checked``) when
someone changed a planned definition in between, exactly as ``config apply`` does."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from eventrules.console.forms import DEFINITION_ID
from eventrules.definitions.files import DEFINITION_KINDS
from eventrules.errors import InputError
from eventrules.ops.config import Live, LiveDefinition, PlannedChange, publish_checked
from eventrules.settings import Settings

__all__ = ["Base", "bases_of", "decode_bases", "encode_bases", "planned_against", "publish_plan"]

_MAX_BASES: Final = 100


@dataclass(frozen=True)
class Base:
    """A definition as it was when a plan was shown: its record offset (-1: absent)."""

    kind: str
    definition_id: str
    offset: int
    version: int


def bases_of(live: Live, keys: Iterable[tuple[str, str]]) -> list[Base]:
    bases = []
    for kind, definition_id in keys:
        item = live.get((kind, definition_id))
        bases.append(
            Base(kind, definition_id, -1, 0)
            if item is None
            else Base(kind, definition_id, item.offset, int(item.value.get("version", 0)))
        )
    return bases


def encode_bases(bases: Sequence[Base]) -> str:
    return orjson.dumps([[b.kind, b.definition_id, b.offset, b.version] for b in bases]).decode()


def decode_bases(text: str | None) -> list[Base]:
    """The hidden field of a review page (hostile like any field)."""
    try:
        rows: Any = orjson.loads(text or "")
    except orjson.JSONDecodeError:
        raise InputError("base", "not what the review page sent") from None
    if not isinstance(rows, list) or len(rows) > _MAX_BASES:
        raise InputError("base", "not what the review page sent")
    bases = []
    for row in rows:
        if not (
            isinstance(row, list)
            and len(row) == 4
            and row[0] in DEFINITION_KINDS
            and isinstance(row[1], str)
            and DEFINITION_ID.match(row[1])
            and all(isinstance(n, int) and not isinstance(n, bool) for n in row[2:])
        ):
            raise InputError("base", "not what the review page sent")
        bases.append(Base(row[0], row[1], row[2], row[3]))
    return bases


def planned_against(bases: Sequence[Base]) -> Live:
    """The table as the plan saw it, as far as the conflict check compares it (offsets)."""
    table = Live()
    for base in bases:
        if base.offset >= 0:
            table[(base.kind, base.definition_id)] = LiveDefinition(
                base.kind, base.definition_id, {"version": base.version}, base.offset, 0
            )
    return table


def publish_plan(
    settings: Settings,
    changes: Sequence[PlannedChange],
    bases: Sequence[Base],
    *,
    force: bool,
    author: str,
) -> int:
    """Publish ``changes`` unless a planned key moved since ``bases`` (ConfigConflictError);
    signed and audited like `config apply`, with ``author`` (the token's name) as who."""
    return publish_checked(settings, changes, planned_against(bases), force=force, author=author)
