"""The definition reference (``docs/definitions.md``), generated from the pydantic models so it
cannot drift from them: every field of a workflow and a rule, and every action type with its
parameters, types, constraints, defaults and descriptions. A field without a description is an
error here, so a new field cannot go undocumented.

``eventrules docs definitions`` prints it (with any plugin action types installed); a unit test
compares the committed file with what the built-in models give.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import annotated_types
from pydantic import AliasChoices, AwareDatetime, BaseModel, JsonValue
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from eventrules.conditions import Compare
from eventrules.errors import ConfigurationError
from eventrules.models.actions import BUILTIN_ACTIONS, ActionBase, action_type_name
from eventrules.models.memory import Absence, Dedupe, Throttle
from eventrules.models.workflows import Workflow
from eventrules.rules.models import Rule

__all__ = ["render_reference"]

_SCALARS: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    Decimal: "number",
    bool: "boolean",
    datetime: "time (RFC 3339 with offset)",
    AwareDatetime: "time (RFC 3339 with offset)",
    timedelta: "duration (`30s`, `15m`, `6h`, `1h30m`, `2d`)",
}
# The blocks a workflow field holds, each with a table of its own below the workflow's.
_BLOCKS: dict[str, type[BaseModel]] = {"throttle": Throttle, "dedupe": Dedupe, "absence": Absence}

_HEADER = """\
# Definition reference

<!-- Generated from the models by `eventrules docs definitions -o docs/definitions.md`;
     do not edit by hand (a unit test compares this file with the models). -->

Definitions are YAML or JSON documents (`eventrules validate`, `eventrules config apply`). A
field marked **required** must be present; the others take the default shown. Unknown fields
are refused. String parameters of actions may hold `{{ placeholders }}` rendered from the event
([conditions.md, "Templates"](conditions.md#templates)) unless the table says they are not
templated.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is JsonValue or getattr(annotation, "__name__", "") == "JsonValue":
        return "any JSON"
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if origin is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in args)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin in (typing.Union, types.UnionType):
        if any(arg is Compare for arg in args):
            return "condition (tree or shorthand)"
        if all(isinstance(arg, type) and issubclass(arg, BaseModel) for arg in args):
            return "action"
        kept = [arg for arg in args if arg is not type(None)]
        rendered = " or ".join(_type(arg) for arg in kept)
        return f"{rendered} or null" if len(kept) < len(args) else rendered
    if isinstance(annotation, type) and annotation in _BLOCKS.values():
        return f"object (`{annotation.__name__.lower()}` below)"
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is dict:
        return f"object of {_type(args[1])}"
    raise ConfigurationError(f"no reference name for the type {annotation!r}")


def _constraints(field: FieldInfo) -> list[str]:
    found = []
    for item in field.metadata:
        if isinstance(item, annotated_types.MinLen):
            found.append("non-empty" if item.min_length == 1 else f"at least {item.min_length}")
        elif isinstance(item, annotated_types.Gt):
            found.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Ge):
            found.append(f">= {item.ge}")
        elif isinstance(item, annotated_types.Lt):
            found.append(f"< {item.lt}")
        elif isinstance(item, annotated_types.Le):
            found.append(f"<= {item.le}")
        elif getattr(item, "pattern", None):
            found.append(f"pattern `{item.pattern}`")
    return found


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    value = field.default
    if value is PydanticUndefined and field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    return f"`{json.dumps(value)}`"


def _rows(model: type[BaseModel], skip: Iterable[str] = ()) -> list[list[str]]:
    rows = []
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        if not field.description:
            raise ConfigurationError(f"{model.__name__}.{name} has no description")
        kind = ", ".join([_type(field.annotation), *_constraints(field)])
        description = field.description
        if isinstance(field.validation_alias, AliasChoices):
            others = [c for c in field.validation_alias.choices if c != name]
            description += "".join(f" Also accepted as `{other}`." for other in others)
        rows.append([f"`{name}`", kind, _default(field), description])
    return rows


def _table(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _summary(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").strip().split("\n\n")[0].split())


def render_reference(action_classes: Iterable[type[ActionBase]] = BUILTIN_ACTIONS) -> str:
    """The reference as Markdown, for the built-in action types and any ``action_classes``."""
    columns = ["field", "type", "default", "description"]
    parts = [
        _HEADER,
        "## Workflows (`kind: workflow`)\n",
        _table(columns, _rows(Workflow)),
    ]
    for name, block in _BLOCKS.items():
        parts += [
            f"\n### `{name}`\n",
            _summary(block) + " See [memory.md](memory.md).\n",
            _table(columns, _rows(block)),
        ]
    parts += [
        "\n## Rules (`kind: rule`)\n",
        "Rule types, decision policies and rule actions: [rules.md](rules.md).\n",
        _table(columns, _rows(Rule)),
        "\n## Action types\n",
        "The `actions` of a workflow. Each is an object with `type` and the parameters below; "
        'the worker publishes topic actions as action messages (README, "Action messages") '
        "and runs `call_webhook` itself.\n",
    ]
    for action_class in sorted(action_classes, key=action_type_name):
        untemplated = action_class.untemplated
        rows = _rows(action_class, skip=("type",))
        names = [name for name in action_class.model_fields if name != "type"]
        for row, name in zip(rows, names, strict=True):
            # placeholders render inside strings only (numbers and flags are taken as given)
            textual = "string" in row[1] or "any JSON" in row[1]
            row.insert(3, "no" if name in untemplated else "yes" if textual else "-")
        parts += [
            f"### `{action_type_name(action_class)}`\n",
            _summary(action_class) + "\n",
            _table(["parameter", "type", "default", "templated", "description"], rows),
            "",
        ]
    return "\n".join(parts).rstrip() + "\n"
