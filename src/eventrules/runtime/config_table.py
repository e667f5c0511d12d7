"""The config table: every definition on the compacted config topic, compiled and current.

Key ``<kind>:<id>`` (``workflow:low-stock-alert``); value the definition's JSON; a null value
(tombstone) deletes it. A message that fails validation is rejected with a logged reason and a
metric, and the previous version stays active. A lower version than the one held is stale and
ignored, so a replayed old message cannot roll a definition back. Every kind goes through the
same steps: parse, check the key names the value's id, install in the kind's store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from eventrules.definitions.records import (
    ConfigChange,
    DefinitionStore,
    UpsertOutcome,
    parse_definition_key,
)
from eventrules.errors import DefinitionError
from eventrules.metrics import Metrics

__all__ = ["ConfigTable", "DefinitionKind"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DefinitionKind:
    """How one kind of definition is read (``parse``: JSON -> a definition with ``id`` and
    ``version``, raising DefinitionError) and where it is held."""

    parse: Callable[[Any], Any]
    store: DefinitionStore


class ConfigTable:
    """Applies config messages to the stores of their kinds. Single-threaded, like the worker
    loop that calls it."""

    def __init__(
        self, kinds: Mapping[str, DefinitionKind], *, metrics: Metrics | None = None
    ) -> None:
        self.kinds = dict(kinds)
        self.metrics = metrics
        self.applied = 0

    def apply(self, key: bytes | None, value: bytes | None) -> ConfigChange:
        """Apply one record of the config topic; never raises for bad content."""
        self.applied += 1
        try:
            kind, definition_id = parse_definition_key(key)
        except DefinitionError as exc:
            return self._reject("unknown", "?", "bad_key", str(exc))
        handler = self.kinds.get(kind)
        if handler is None:
            return self._reject(kind, definition_id, "unsupported_kind", f"no engine for {kind}")
        if value is None:
            removed = handler.store.remove(definition_id)
            return self._after(
                ConfigChange(kind, definition_id, "deleted" if removed else "absent")
            )
        try:
            raw = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return self._reject(kind, definition_id, "not_json", f"value is not JSON: {exc}")
        try:
            definition = handler.parse(raw)
            if definition.id != definition_id:
                raise DefinitionError(
                    f"key names {definition_id!r} but the value's id is {definition.id!r}",
                    definition_id=definition_id,
                )
            outcome = handler.store.upsert(definition)
        except DefinitionError as exc:
            return self._reject(kind, definition_id, "invalid", str(exc))
        if outcome is UpsertOutcome.STALE:
            log.warning("config: ignored stale %s %s v%s", kind, definition_id, definition.version)
            if self.metrics is not None:
                self.metrics.config_rejects.labels(kind, "stale_version").inc()
        return self._after(
            ConfigChange(kind, definition_id, outcome.value, version=definition.version)
        )

    def _reject(self, kind: str, definition_id: str, reason: str, error: str) -> ConfigChange:
        log.error("config: rejected %s %s (%s): %s", kind, definition_id, reason, error)
        if self.metrics is not None:
            self.metrics.config_rejects.labels(kind, reason).inc()
        return ConfigChange(kind, definition_id, "rejected", error=error)

    @staticmethod
    def _after(change: ConfigChange) -> ConfigChange:
        # Gauges are refreshed by the worker (on scrape and on a timer), not per record: a
        # count over every definition per record made loading 10,000 definitions quadratic.
        if change.outcome in {"added", "replaced", "deleted"}:
            log.info(
                "config: %s %s %s v%s",
                change.outcome,
                change.kind,
                change.definition_id,
                change.version if change.version is not None else "-",
            )
        return change
