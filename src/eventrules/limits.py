"""The bounds every hostile input is held to: one frozen set of limits, active process-wide.

The worker and the command line install the limits read from the settings
(:meth:`eventrules.settings.Settings.limits`) once at start with :func:`set_limits`, so a
definition the CLI accepts at publish time is one the workers accept too. Library callers get
the defaults unless they install their own. Going past a limit raises a
:class:`~eventrules.errors.LimitExceededError` subclass whose ``limit`` is the field name here
(and the setting ``EVENTRULES_<NAME>``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ORJSON_MAX_DEPTH",
    "Limits",
    "active_limits",
    "limits_applied",
    "nesting_exceeds",
    "set_limits",
]

# orjson reads 1024 levels of nesting but writes only this many: whatever eventrules writes
# back (execution records wrap the event in two more levels) must stay within it.
ORJSON_MAX_DEPTH: Final = 254


@dataclass(frozen=True, slots=True)
class Limits:
    """Each field is a setting of the same name; see the README's "Limits" table. Change one
    with ``dataclasses.replace(limits, template_max_depth=10)``."""

    # JSON nesting of an event, a rule request or a definition, as decoded
    max_json_depth: int = 64
    # conditions: nesting of all/any/not groups, nodes in one tree, length of a shorthand
    condition_max_depth: int = 32
    condition_max_nodes: int = 500
    condition_max_chars: int = 4096
    # templates: source length, syntax nesting (blocks, brackets, operators)
    template_max_chars: int = 20_000
    template_max_depth: int = 20
    # templates at render time: characters one template produces (including {% set %} blocks),
    # and per event, the loop iterations and seconds all its templates may take together
    template_max_output_chars: int = 100_000
    template_max_loop_iterations: int = 10_000
    template_max_render_seconds: float = 0.25


_active: list[Limits] = [Limits()]


def active_limits() -> Limits:
    """The limits definitions, templates and events are checked against right now."""
    return _active[0]


def set_limits(limits: Limits) -> Limits:
    """Install ``limits`` for the whole process; returns the previous ones."""
    previous = _active[0]
    _active[0] = limits
    return previous


@contextlib.contextmanager
def limits_applied(limits: Limits) -> Iterator[Limits]:
    """Install ``limits`` for the duration of a block (tests, one-off checks)."""
    previous = set_limits(limits)
    try:
        yield limits
    finally:
        set_limits(previous)


def nesting_exceeds(value: object, maximum: int, *, raw: bytes | None = None) -> bool:
    """Whether decoded JSON ``value`` nests deeper than ``maximum`` (``{}`` is 1, a scalar 0).

    ``raw``, the bytes it was decoded from, lets the common case skip the walk: a document
    with no more brackets than ``maximum`` cannot nest deeper. The walk is iterative, so a
    document nested past Python's recursion limit is measured, not crashed on.
    """
    if raw is not None and raw.count(b"{") + raw.count(b"[") <= maximum:
        return False
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > maximum:
            return True
        stack.extend(
            (child, depth + 1) for child in children if isinstance(child, dict | list | tuple)
        )
    return False
