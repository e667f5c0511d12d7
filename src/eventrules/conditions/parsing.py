"""Parsing a condition from either input form into the tree.

Structured form::

    {"field": "total", "operator": ">=", "value": 500}
    {"all": [...]}  {"any": [...]}  {"not": {...}}
    [...]                     # a list is an implicit "all", as in the seed's triggerConditions

Any node may instead be a shorthand string (``total >= 500 and country == "DE"``); both forms
produce the same tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventrules.conditions.operators import OPERATORS, canonical_operator
from eventrules.conditions.shorthand import parse_shorthand
from eventrules.conditions.tree import (
    AllOf,
    AnyOf,
    Compare,
    ConditionNode,
    Not,
    check_field,
    make_compare,
)
from eventrules.errors import ConditionSyntaxError, DefinitionError, DefinitionLimitError
from eventrules.limits import active_limits

__all__ = ["check_raw_shape", "check_tree_shape", "parse_condition"]


def parse_condition(raw: object) -> ConditionNode:
    """Parse either input form into a tree; raises DefinitionError listing every problem.

    A condition nested deeper than ``condition_max_depth`` or with more than
    ``condition_max_nodes`` nodes is a DefinitionLimitError, found before anything recurses.
    """
    check_raw_shape(raw)
    problems: list[tuple[str, str]] = []
    node = _parse(raw, "", problems)
    if problems or node is None:
        raise DefinitionError("invalid condition", problems=problems)
    # shorthand inside a structured tree adds its own depth to the structure's
    check_tree_shape(node)
    return node


def _limit_error(what: str, limit: str, maximum: int, path: str = "") -> DefinitionLimitError:
    detail = f"condition {what} (limit {limit} = {maximum})"
    return DefinitionLimitError(
        "invalid condition", limit=limit, maximum=maximum, problems=[(path, detail)]
    )


def check_raw_shape(raw: object) -> None:
    """DefinitionLimitError when the input form is too deep or too large."""
    _check_shape(raw, _raw_members)


def check_tree_shape(tree: ConditionNode) -> None:
    """DefinitionLimitError when a parsed tree is too deep or too large."""
    _check_shape(tree, _tree_members)


def _raw_members(item: object) -> list[tuple[str, object]]:
    if isinstance(item, list):
        return [(str(index), member) for index, member in enumerate(item)]
    members: list[tuple[str, object]] = []
    if isinstance(item, dict):
        for key in ("all", "any"):
            if isinstance(item.get(key), list):
                members += [(f"{key}.{i}", member) for i, member in enumerate(item[key])]
        if "not" in item:
            members.append(("not", item["not"]))
    return members


def _tree_members(node: object) -> list[tuple[str, object]]:
    if isinstance(node, Not):
        return [("not", node.child)]
    if isinstance(node, AllOf | AnyOf):
        key = "all" if isinstance(node, AllOf) else "any"
        return [(f"{key}.{i}", child) for i, child in enumerate(node.children)]
    return []


def _check_shape(root: object, members: Callable[[object], list[tuple[str, object]]]) -> None:
    """An iterative walk, so a condition nested past Python's recursion limit is measured."""
    limits = active_limits()
    stack: list[tuple[object, int, str]] = [(root, 1, "")]
    nodes = 0
    while stack:
        item, depth, path = stack.pop()
        nodes += 1
        if nodes > limits.condition_max_nodes:
            raise _limit_error(
                f"has more than {limits.condition_max_nodes} nodes",
                "condition_max_nodes",
                limits.condition_max_nodes,
            )
        if depth > limits.condition_max_depth:
            raise _limit_error(
                f"nests deeper than {limits.condition_max_depth} levels",
                "condition_max_depth",
                limits.condition_max_depth,
                path,
            )
        stack.extend((member, depth + 1, _join(path, part)) for part, member in members(item))


def _join(path: str, part: str | int) -> str:
    return f"{path}.{part}" if path else str(part)


def _parse(raw: object, path: str, problems: list[tuple[str, str]]) -> ConditionNode | None:
    if isinstance(raw, str):
        try:
            return parse_shorthand(raw)
        except ConditionSyntaxError as exc:
            problems.append((path, str(exc)))
            return None
        except DefinitionLimitError as exc:
            raise DefinitionLimitError(
                "invalid condition",
                limit=exc.limit,
                maximum=exc.maximum,
                problems=[(path, f"{exc} (limit {exc.limit} = {exc.maximum})")],
            ) from None
    if isinstance(raw, list):
        return _group(AllOf, raw, path, problems)
    if not isinstance(raw, dict):
        problems.append((path, f"expected a condition mapping, list or string, got {raw!r}"))
        return None
    groups = [key for key in ("all", "any", "not") if key in raw]
    if groups:
        key = groups[0]
        if len(raw) != 1:
            others = ", ".join(sorted(str(k) for k in raw if k != key))
            problems.append((path, f"a {key!r} group takes no other keys (found {others})"))
            return None
        if key == "not":
            child = _parse(raw["not"], _join(path, "not"), problems)
            return Not(child) if child is not None else None
        members = raw[key]
        if not isinstance(members, list):
            problems.append((_join(path, key), "expected a list of conditions"))
            return None
        return _group(AllOf if key == "all" else AnyOf, members, _join(path, key), problems)
    return _compare(raw, path, problems)


def _group(
    kind: type[AllOf] | type[AnyOf],
    members: list[Any],
    path: str,
    problems: list[tuple[str, str]],
) -> ConditionNode | None:
    if not members:
        problems.append((path, "an empty group is almost always a mistake; remove it instead"))
        return None
    children = [
        _parse(member, _join(path, index), problems) for index, member in enumerate(members)
    ]
    if any(child is None for child in children):
        return None
    return kind(tuple(child for child in children if child is not None))


def _compare(raw: dict[Any, Any], path: str, problems: list[tuple[str, str]]) -> Compare | None:
    unknown = sorted(str(k) for k in raw if k not in {"field", "operator", "value"})
    if unknown:
        problems.append((path, f"unknown keys {unknown}; expected field, operator, value"))
        return None
    missing = [key for key in ("field", "operator") if key not in raw]
    if missing:
        problems.extend((_join(path, key), "required") for key in missing)
        return None
    try:
        field = check_field(raw["field"])
    except ValueError as exc:
        problems.append((_join(path, "field"), str(exc)))
        return None
    operator = raw["operator"]
    if not isinstance(operator, str):
        problems.append((_join(path, "operator"), f"expected an operator name, got {operator!r}"))
        return None
    try:
        name = canonical_operator(operator)
    except ValueError as exc:
        problems.append((_join(path, "operator"), str(exc)))
        return None
    if OPERATORS[name].takes_value and "value" not in raw:
        problems.append((_join(path, "value"), f"required by operator {name}"))
        return None
    try:
        return make_compare(field, name, raw.get("value"))
    except ValueError as exc:
        problems.append((_join(path, "value"), str(exc)))
        return None
