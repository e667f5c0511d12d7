"""The config table: every definition on the compacted config topic, compiled and current.

Key ``<kind>:<id>`` (``workflow:low-stock-alert``); value the definition's JSON; a null value
(tombstone) deletes it. A record is checked in this order, and the first failure rejects it
with a logged reason and ``eventrules_config_rejects_total{kind,reason}`` while the previous
version stays active:

1. the key names a known kind;
2. when trusted keys are configured, an Ed25519 signature by one of them
   (:mod:`eventrules.definitions.signatures`): ``unsigned``, ``unknown_signer``, ``bad_signature``;
3. the value parses, nests no deeper than ``max_json_depth`` (``too_deep``: orjson reads more
   than it can write back) and validates (``not_json``, ``invalid``, ``limit_exceeded`` for a
   condition or template past its limits), and its id is the key's;
4. the version against the definition's high-water mark (:mod:`eventrules.definitions.versions`):
   ``stale_version``, ``version_out_of_range``; the signed version must be the value's
   (``version_mismatch``).

Anything unforeseen is rejected too (``internal_error``): :meth:`ConfigTable.apply` never
raises, so no record can stop the config follower.

The table remembers the last accepted record of each key (its exact bytes and headers) and which
keys' latest record was rejected, so the worker guarding the topic can republish the accepted
one (see :class:`~eventrules.runtime.config_follower.ConfigFollower`).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from eventrules.definitions.gate import ConfigGate
from eventrules.definitions.records import (
    ChangeOutcome,
    ConfigChange,
    DefinitionStore,
    UpsertOutcome,
    parse_definition_key,
)
from eventrules.errors import ConfigRecordError, DefinitionError, LimitExceededError
from eventrules.limits import active_limits, nesting_exceeds
from eventrules.metrics import Metrics

__all__ = ["AcceptedRecord", "ConfigTable", "DefinitionKind"]

log = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes | None]]


def _invalid(error: DefinitionError) -> str:
    """``limit_exceeded`` for a definition past a limit, ``invalid`` for any other problem."""
    return "limit_exceeded" if isinstance(error, LimitExceededError) else "invalid"


@dataclass(frozen=True)
class DefinitionKind:
    """How one kind of definition is read (``parse``: JSON -> a definition with ``id`` and
    ``version``, raising DefinitionError) and where it is held."""

    parse: Callable[[Any], Any]
    store: DefinitionStore


@dataclass(frozen=True)
class AcceptedRecord:
    """The exact record last accepted for a key: what a guard republishes."""

    key: bytes
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


@dataclass
class ConfigTable:
    """Applies config messages to the stores of their kinds. Single-threaded, like the worker
    loop that calls it. The gate holds the trusted keys, the topic name signatures are bound
    to, and the versions' high-water marks."""

    kinds: Mapping[str, DefinitionKind]
    # no trusted keys by default: nothing is verified, versions still follow the marks
    gate: ConfigGate = field(default_factory=lambda: ConfigGate(""))
    metrics: Metrics | None = None
    applied: int = 0
    accepted: dict[bytes, AcceptedRecord] = field(default_factory=dict)
    # keys whose latest record was rejected although an accepted record exists
    rejected_latest: set[bytes] = field(default_factory=set)

    def apply(
        self, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> ConfigChange:
        """Apply one record of the config topic; never raises for bad content."""
        self.applied += 1
        try:
            kind, definition_id = parse_definition_key(key)
        except DefinitionError as exc:
            return self._reject("unknown", "?", "bad_key", str(exc))
        key = key or b""  # parse_definition_key refused None
        handler = self.kinds.get(kind)
        if handler is None:
            return self._reject(kind, definition_id, "unsupported_kind", f"no engine for {kind}")
        try:
            change = self._apply(handler, (kind, definition_id), key, value, headers)
        except ConfigRecordError as exc:
            if key in self.accepted:
                self.rejected_latest.add(key)
            outcome: ChangeOutcome = "stale" if exc.reason == "stale_version" else "rejected"
            return self._reject(kind, definition_id, exc.reason, exc.detail, outcome)
        except Exception as exc:  # the follower must outlive any record: reject, go on
            log.exception("config: applying %s %s failed", kind, definition_id)
            if key in self.accepted:
                self.rejected_latest.add(key)
            error = f"{type(exc).__name__}: {exc}"
            return self._reject(kind, definition_id, "internal_error", error)
        self.accepted[key] = AcceptedRecord(key, value, tuple(headers or ()))
        self.rejected_latest.discard(key)
        return self._after(change)

    def _apply(
        self,
        handler: DefinitionKind,
        ident: tuple[str, str],
        key: bytes,
        value: bytes | None,
        headers: Headers | None,
    ) -> ConfigChange:
        signed_version = self.gate.signed_version(key, value, headers)
        kind, definition_id = ident
        if value is None:
            self.gate.check_delete(ident, signed_version)
            removed = handler.store.remove(definition_id)
            self.gate.marks.deleted(ident, signed_version)
            return ConfigChange(
                kind, definition_id, "deleted" if removed else "absent", version=signed_version
            )
        try:
            raw = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ConfigRecordError("not_json", f"value is not JSON: {exc}") from None
        depth = active_limits().max_json_depth
        if nesting_exceeds(raw, depth, raw=value):
            # orjson reads it, but could not write it back (exports, decisions, actions)
            error = f"the definition nests deeper than {depth} levels (limit max_json_depth)"
            raise ConfigRecordError("too_deep", error)
        try:
            definition = handler.parse(raw)
            if definition.id != definition_id:
                raise DefinitionError(
                    f"key names {definition_id!r} but the value's id is {definition.id!r}",
                    definition_id=definition_id,
                )
        except DefinitionError as exc:
            raise ConfigRecordError(_invalid(exc), str(exc)) from None
        self.gate.check_upsert(ident, definition.version, signed_version)
        try:
            outcome = handler.store.upsert(definition)
        except DefinitionError as exc:
            raise ConfigRecordError(_invalid(exc), str(exc)) from None
        if outcome is UpsertOutcome.STALE:
            raise ConfigRecordError("stale_version", f"v{definition.version} is older")
        self.gate.marks.installed(ident, definition.version)
        return ConfigChange(kind, definition_id, outcome.value, version=definition.version)

    def settle(self) -> None:
        """Mark everything loaded so far as long-lived: the follower calls it after each batch
        of its initial catch-up. Definitions live as long as the worker, and rescanning them
        at every full collection took half the time of loading 10,000 of them."""
        gc.freeze()

    def _reject(
        self,
        kind: str,
        definition_id: str,
        reason: str,
        error: str,
        outcome: ChangeOutcome = "rejected",
    ) -> ConfigChange:
        level = logging.WARNING if reason == "stale_version" else logging.ERROR
        log.log(level, "config: rejected %s %s (%s): %s", kind, definition_id, reason, error)
        if self.metrics is not None:
            self.metrics.config_rejects.labels(kind, reason).inc()
        return ConfigChange(kind, definition_id, outcome, error=error, reason=reason)

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
