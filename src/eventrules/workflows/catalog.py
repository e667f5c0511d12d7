"""The trigger catalog: the event types workflows may name, loaded from YAML.

The built-in catalog is ``config/triggers.yaml`` (the seed's 26 events, plus the cart events
that the abandoned-cart absence workflow watches). Operators extend it
with more files or directories of ``*.yaml`` in the same shape::

    triggers:
      - {name: subscription.renewed, group: subscription, topics: [events.subscriptions],
         description: Renewal charged}

``topics`` names the (logical) topics the trigger may arrive on; an event of that type on any
other topic is refused by the worker. A trigger declared without ``topics`` is unbound: it is
accepted on every event topic. Redeclaring a built-in trigger replaces it; it never removes one.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from eventrules.errors import ConfigurationError, UnknownTriggerError
from eventrules.settings import find_project_file

__all__ = ["BUILTIN_TRIGGERS_FILE", "Trigger", "TriggerCatalog"]

BUILTIN_TRIGGERS_FILE: Final = "config/triggers.yaml"
_TRIGGER_NAME: Final = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


@dataclass(frozen=True, slots=True)
class Trigger:
    name: str
    group: str
    description: str = ""
    topics: tuple[str, ...] = ()  # logical topic names; empty: any event topic


class TriggerCatalog:
    """An immutable set of declared triggers, looked up by name."""

    def __init__(self, triggers: Iterable[Trigger]) -> None:
        self._triggers = {trigger.name: trigger for trigger in triggers}

    @classmethod
    def load(cls, *extra: Path | str, include_builtin: bool = True) -> TriggerCatalog:
        """The built-in catalog merged with each extra file or directory, in order."""
        sources: list[Path] = []
        if include_builtin:
            builtin = find_project_file(BUILTIN_TRIGGERS_FILE)
            if builtin is None:
                raise ConfigurationError(f"the built-in {BUILTIN_TRIGGERS_FILE} was not found")
            sources.append(builtin)
        for item in map(Path, extra):
            sources.extend(sorted(item.glob("*.y*ml")) if item.is_dir() else [item])
        merged: dict[str, Trigger] = {}
        for source in sources:
            for trigger in _read(source):
                merged[trigger.name] = trigger
        return cls(merged.values())

    def __contains__(self, name: object) -> bool:
        return name in self._triggers

    def __iter__(self) -> Iterator[Trigger]:
        return iter(sorted(self._triggers.values(), key=lambda trigger: trigger.name))

    def __len__(self) -> int:
        return len(self._triggers)

    def names(self) -> list[str]:
        return sorted(self._triggers)

    def arrives_on(self, name: str, logical_topic: str) -> bool:
        """Whether an event of type ``name`` may come from ``logical_topic``; a type the catalog
        does not declare, or declares without topics, may come from anywhere."""
        trigger = self._triggers.get(name)
        return trigger is None or not trigger.topics or logical_topic in trigger.topics

    def require(self, name: str, *, definition_id: str | None = None) -> Trigger:
        """The trigger called ``name``, or UnknownTriggerError with the closest names."""
        trigger = self._triggers.get(name)
        if trigger is not None:
            return trigger
        close = difflib.get_close_matches(name, self._triggers, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        reason = f"unknown trigger {name!r}{hint} (declared: {len(self)} triggers, see catalog)"
        raise UnknownTriggerError(
            f"unknown trigger {name!r}", definition_id=definition_id, problems=[("trigger", reason)]
        )


def _read(source: Path) -> list[Trigger]:
    try:
        document: Any = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read trigger catalog {source}: {exc}") from None
    entries = document.get("triggers") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ConfigurationError(f"{source}: expected a top-level 'triggers:' list")
    triggers = []
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not _TRIGGER_NAME.match(name):
            raise ConfigurationError(
                f"{source}: triggers[{index}] needs a name like 'order.created', got {entry!r}"
            )
        group = str(entry.get("group") or name.split(".", 1)[0])
        topics = entry.get("topics") or []
        if not isinstance(topics, list) or not all(isinstance(t, str) and t for t in topics):
            raise ConfigurationError(
                f"{source}: triggers[{index}] topics must be a list of topic names"
            )
        triggers.append(Trigger(name, group, str(entry.get("description") or ""), tuple(topics)))
    return triggers
