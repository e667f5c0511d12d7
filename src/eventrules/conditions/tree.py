"""The condition tree: comparisons joined by all / any / not groups, and its printed forms."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from eventrules.conditions.operators import OPERATORS, canonical_operator

__all__ = [
    "AllOf",
    "AnyOf",
    "Compare",
    "ConditionNode",
    "Not",
    "check_field",
    "make_compare",
    "node_to_data",
    "node_to_text",
]

_FIELD_PATH: Final = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")


@dataclass(frozen=True, slots=True)
class Compare:
    """``field operator value``; ``value`` is the definition's value, already validated."""

    field: str
    operator: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class AllOf:
    children: tuple[ConditionNode, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple[ConditionNode, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: ConditionNode


ConditionNode = Compare | AllOf | AnyOf | Not


def check_field(field: object) -> str:
    """The field path itself, or ValueError when it is not a dotted path."""
    if not isinstance(field, str) or not _FIELD_PATH.match(field):
        raise ValueError(f"field must be a dotted path such as user.orderCount, got {field!r}")
    return field


def make_compare(field: object, operator: str, value: Any) -> Compare:
    """A validated comparison; raises ValueError naming what is wrong."""
    path = check_field(field)
    name = canonical_operator(operator)
    OPERATORS[name].prepare(value)
    return Compare(path, name, list(value) if isinstance(value, tuple) else value)


def node_to_data(node: ConditionNode) -> Any:
    """The structured form of a tree (JSON-ready), as stored in a normalised definition."""
    match node:
        case Compare(field, operator, value):
            data: dict[str, Any] = {"field": field, "operator": operator}
            if OPERATORS[operator].takes_value:
                data["value"] = value
            return data
        case AllOf(children):
            return {"all": [node_to_data(child) for child in children]}
        case AnyOf(children):
            return {"any": [node_to_data(child) for child in children]}
        case Not(child):
            return {"not": node_to_data(child)}


_SYMBOLS: Final = {"eq": "==", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def node_to_text(node: ConditionNode) -> str:
    """The shorthand spelling of a tree, for traces and CLI output."""
    match node:
        case Compare(field, operator, value):
            spelled = _SYMBOLS.get(operator, operator)
            if not OPERATORS[operator].takes_value:
                return f"{field} {spelled}"
            return f"{field} {spelled} {json.dumps(value, default=str)}"
        case AllOf(children):
            return " and ".join(_wrap(child) for child in children)
        case AnyOf(children):
            return " or ".join(_wrap(child) for child in children)
        case Not(child):
            return f"not {_wrap(child)}"


def _wrap(node: ConditionNode) -> str:
    text = node_to_text(node)
    return f"({text})" if isinstance(node, AllOf | AnyOf) and len(node.children) > 1 else text
