"""Dotted paths into nested facts: ``user.orderCount``, ``items.0.sku``.

A segment looks up a key in an object; on an array, a segment of digits is an index. Anything
that does not resolve (absent key, index out of range, stepping into a string) is MISSING,
never an exception.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from eventrules.conditions.values import MISSING

__all__ = ["Getter", "compile_path"]

Getter = Callable[[Mapping[str, Any]], Any]


@functools.lru_cache(maxsize=4096)  # getters are pure: definitions reading one path share one
def compile_path(path: str) -> Getter:
    """A getter for ``path``; the top level is read with ``facts[key]`` so derived facts resolve."""
    first, *rest = path.split(".")
    steps = tuple((segment, int(segment) if segment.isdigit() else None) for segment in rest)

    if not steps:

        def get_top(facts: Mapping[str, Any]) -> Any:
            try:
                return facts[first]
            except KeyError:
                return MISSING

        return get_top

    def get_nested(facts: Mapping[str, Any]) -> Any:
        try:
            value = facts[first]
        except KeyError:
            return MISSING
        for segment, index in steps:
            if isinstance(value, Mapping):
                value = value.get(segment, MISSING)
            elif type(value) is list and index is not None and index < len(value):
                value = value[index]
            else:
                return MISSING
        return value

    return get_nested
