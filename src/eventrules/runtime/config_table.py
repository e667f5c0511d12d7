"""The config table: every definition on the compacted config topic, compiled and current.

Key ``<kind>:<id>`` (``workflow:low-stock-alert``); value the definition's JSON; a null value
(tombstone) deletes it. A message that fails validation is rejected with a logged reason and a
metric, and the previous version stays active. A lower version than the one held is stale and
ignored, so a replayed old message cannot roll a definition back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson

from eventrules.definitions.records import ConfigChange, parse_definition_key
from eventrules.errors import DefinitionError
from eventrules.metrics import Metrics
from eventrules.models.actions import ActionRegistry
from eventrules.models.workflows import parse_workflow
from eventrules.workflows.engine import Engine, UpsertOutcome

__all__ = ["ConfigTable"]

log = logging.getLogger(__name__)


class ConfigTable:
    """Applies config messages to the workflow engine (and, through ``extra_kinds``, to other
    engines such as the rules engine). Single-threaded, like the worker loop that calls it."""

    def __init__(
        self,
        engine: Engine,
        *,
        metrics: Metrics | None = None,
        registry: ActionRegistry | None = None,
        extra_kinds: dict[str, Callable[[str, Any | None], ConfigChange]] | None = None,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.registry = registry
        self.extra_kinds = extra_kinds or {}
        self.applied = 0

    def apply(self, key: bytes | None, value: bytes | None) -> ConfigChange:
        """Apply one record of the config topic; never raises for bad content."""
        self.applied += 1
        try:
            kind, definition_id = parse_definition_key(key)
        except DefinitionError as exc:
            return self._reject("unknown", "?", "bad_key", str(exc))
        raw: Any | None = None
        if value is not None:
            try:
                raw = orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                return self._reject(kind, definition_id, "not_json", f"value is not JSON: {exc}")
        if kind != "workflow":
            handler = self.extra_kinds.get(kind)
            if handler is None:
                return self._reject(
                    kind, definition_id, "unsupported_kind", f"no engine for {kind}"
                )
            change = handler(definition_id, raw)
            self._after(change)
            return change
        return self._apply_workflow(definition_id, raw)

    def _apply_workflow(self, definition_id: str, raw: Any | None) -> ConfigChange:
        if raw is None:
            removed = self.engine.remove(definition_id)
            change = ConfigChange("workflow", definition_id, "deleted" if removed else "absent")
            self._after(change)
            return change
        try:
            workflow = parse_workflow(raw, self.registry)
            if workflow.id != definition_id:
                raise DefinitionError(
                    f"key names {definition_id!r} but the value's id is {workflow.id!r}",
                    definition_id=definition_id,
                )
            outcome = self.engine.upsert(workflow)
        except DefinitionError as exc:
            return self._reject("workflow", definition_id, "invalid", str(exc))
        verb = {
            UpsertOutcome.ADDED: "added",
            UpsertOutcome.REPLACED: "replaced",
            UpsertOutcome.UNCHANGED: "unchanged",
            UpsertOutcome.STALE: "stale",
        }[outcome]
        change = ConfigChange("workflow", definition_id, verb, version=workflow.version)  # type: ignore[arg-type]
        if outcome is UpsertOutcome.STALE:
            log.warning("config: ignored stale workflow %s v%s", definition_id, workflow.version)
            if self.metrics is not None:
                self.metrics.config_rejects.labels("workflow", "stale_version").inc()
        self._after(change)
        return change

    def _reject(self, kind: str, definition_id: str, reason: str, error: str) -> ConfigChange:
        log.error("config: rejected %s %s (%s): %s", kind, definition_id, reason, error)
        if self.metrics is not None:
            self.metrics.config_rejects.labels(kind, reason).inc()
        return ConfigChange(kind, definition_id, "rejected", error=error)

    def _after(self, change: ConfigChange) -> None:
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

    def refresh_gauges(self) -> None:
        if self.metrics is None:
            return
        enabled = sum(1 for workflow in self.engine.workflows() if workflow.enabled)
        gauge = self.metrics.definitions_loaded
        gauge.labels("workflow", "true").set(enabled)
        gauge.labels("workflow", "false").set(len(self.engine) - enabled)
