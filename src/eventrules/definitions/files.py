"""Reading definition files: YAML or JSON, one definition or a list of them per file.

Every definition carries ``kind``: ``workflow`` (the default when absent) or ``rule``.
YAML dates stay strings so a definition means the same once it is serialised to JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from eventrules.errors import DefinitionError
from eventrules.models.actions import ActionRegistry
from eventrules.models.workflows import Workflow, parse_workflow
from eventrules.rules.models import Rule, parse_rule

__all__ = [
    "DEFINITION_KINDS",
    "Definition",
    "DefinitionDocument",
    "load_rules",
    "load_workflows",
    "parse_definition",
    "parse_yaml_text",
    "read_definition_documents",
]

DEFINITION_KINDS: Final = ("workflow", "rule")

Definition = Workflow | Rule


class _JsonCompatibleLoader(yaml.SafeLoader):
    """SafeLoader without the timestamp resolver: ``2026-01-09`` stays the string it is in JSON."""


_JsonCompatibleLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _NoAliasLoader(_JsonCompatibleLoader):
    """Refuses anchors and aliases: text typed by strangers must not expand exponentially."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not accepted here", event.start_mark
            )
        return super().compose_node(parent, index)


def parse_yaml_text(text: str) -> Any:
    """One YAML document typed by a person (the console's editor): dates stay strings, as in
    definition files, and aliases are refused. Raises yaml.YAMLError."""
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader


@dataclass(frozen=True, slots=True)
class DefinitionDocument:
    """One raw definition and where it came from (``file.yaml`` or ``file.yaml[2]``)."""

    source: str
    raw: Any


def read_definition_documents(path: Path | str) -> list[DefinitionDocument]:
    """The raw definitions in a file; raises DefinitionError when it cannot be read or parsed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".json":
            content = json.loads(text)
        else:
            content = yaml.load(text, Loader=_JsonCompatibleLoader)  # noqa: S506 - a SafeLoader
    except json.JSONDecodeError as exc:
        raise DefinitionError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except yaml.YAMLError as exc:
        raise DefinitionError(f"{path}: invalid YAML: {exc}") from None
    if isinstance(content, list):
        return [DefinitionDocument(f"{path}[{i}]", item) for i, item in enumerate(content)]
    if content is None:
        raise DefinitionError(f"{path}: the file holds no definition")
    return [DefinitionDocument(str(path), content)]


def parse_definition(raw: Any, *, registry: ActionRegistry | None = None) -> Definition:
    """Validate one raw definition according to its ``kind``."""
    kind = raw.get("kind", "workflow") if isinstance(raw, dict) else "workflow"
    if kind not in DEFINITION_KINDS:
        definition_id = raw.get("id") if isinstance(raw.get("id"), str) else None
        raise DefinitionError(
            "unsupported definition kind",
            definition_id=definition_id,
            problems=[("kind", f"unsupported kind {kind!r}; expected one of {DEFINITION_KINDS}")],
        )
    if kind == "rule":
        return parse_rule(raw)
    return parse_workflow(raw, registry)


def _load(path: Path | str, kind: str, registry: ActionRegistry | None) -> list[Definition]:
    definitions: list[Definition] = []
    for document in read_definition_documents(path):
        raw = document.raw
        found = raw.get("kind", "workflow") if isinstance(raw, dict) else kind
        try:
            if found != kind:
                raise DefinitionError(
                    "unsupported definition kind",
                    definition_id=raw.get("id") if isinstance(raw.get("id"), str) else None,
                    problems=[("kind", f"unsupported kind {found!r} here; expected {kind!r}")],
                )
            definitions.append(parse_definition(raw, registry=registry))
        except DefinitionError as exc:
            raise DefinitionError(
                f"{document.source}: {exc.args[0]}",
                definition_id=exc.definition_id,
                problems=exc.problems,
            ) from None
    return definitions


def load_workflows(path: Path | str, *, registry: ActionRegistry | None = None) -> list[Workflow]:
    """Every definition in the file, validated; the first invalid one raises, naming its source.

    Every definition must be a workflow (a rule in the file is an error)."""
    loaded = _load(path, "workflow", registry)
    return [definition for definition in loaded if isinstance(definition, Workflow)]


def load_rules(path: Path | str) -> list[Rule]:
    """Every rule in the file, validated; a workflow or a bad rule raises, naming its source."""
    return [definition for definition in _load(path, "rule", None) if isinstance(definition, Rule)]
