"""The condition tree: comparisons joined by all / any / not groups, and its printed forms."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Final

from eventrules.conditions.operators import OPERATORS, canonical_operator
from eventrules.limits import active_limits, nesting_exceeds

__all__ = [
    "AllOf",
    "AnyOf",
    "Compare",
    "ConditionNode",
    "Not",
    "check_field",
    "check_value",
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
    check_value(value)
    OPERATORS[name].prepare(value)
    return Compare(path, name, list(value) if isinstance(value, tuple) else value)


# what orjson can write back: a definition is stored and exported as JSON
_INT_RANGE: Final = range(-(2**63), 2**64)


def check_value(value: Any) -> None:
    """ValueError unless ``value`` is JSON that can be written back: finite numbers within
    64 bits, nesting within the ``max_json_depth`` limit (comparing nests no deeper)."""
    if nesting_exceeds(value, active_limits().max_json_depth):
        raise ValueError(f"value nests deeper than {active_limits().max_json_depth} levels")
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, dict):
            if not all(type(key) is str for key in item):
                raise ValueError("object keys must be strings")
            stack.extend(item.values())
        elif type(item) is float and not math.isfinite(item):
            raise ValueError(f"numbers must be finite, got {item!r}")
        elif type(item) is int and item not in _INT_RANGE:
            raise ValueError("integer out of range (at most 64 bits)")


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
