"""The crash-loop guard: what a worker that died took down with it, read back from the
metadata of the committed offsets, so a record that kills every worker that handles it (an OOM
kill, a segfault in a native library, a hang) is dead-lettered instead of tried forever.

Every offset a stream commits carries a mark in its commit metadata:

* ``run:<owner>``: committed while the owner was processing;
* ``clean``: committed when the owner handed the partition over (rebalance, shutdown);
* ``try:<offset>:<deaths>:<owner>``: committed just before the owner handled the record at
  ``offset`` alone, which had been in flight when a worker died ``deaths`` times.

``<owner>`` is a random id per stream per process: a worker that lost its partitions without
dying (a broker outage past the session timeout) and gets them back finds its own marks, and
does not count itself dead.

A new owner reads the committed offset and its mark (:func:`assess`). ``clean`` (or none, or
no commit yet) is the normal case. ``run`` means the last owner died without handing over:
the next ``window`` records are handled one at a time, each behind a ``try`` mark committed
first (the partition is *careful*). A ``try`` mark at the committed offset means the last owner
died while handling exactly that record: one more death. A record that was in flight at
``limit`` deaths (two by default) is dead-lettered with reason ``crash_loop`` rather than
handled once more. Pure: the stream does the reading and committing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["MARK_CLEAN", "Careful", "Mark", "assess", "parse_mark", "run_mark", "try_mark"]

_PREFIX = "eventrules:"
MARK_CLEAN = _PREFIX + "clean"


def run_mark(owner: str) -> str:
    return f"{_PREFIX}run:{owner}"


def try_mark(offset: int, deaths: int, owner: str = "") -> str:
    return f"{_PREFIX}try:{offset}:{deaths}:{owner}"


@dataclass(frozen=True, slots=True)
class Mark:
    state: Literal["none", "clean", "run", "try"]
    offset: int = -1
    deaths: int = 0
    owner: str = ""


def parse_mark(metadata: str | bytes | None) -> Mark:
    """The mark in commit metadata; anything not ours reads as ``none`` (a normal start)."""
    if isinstance(metadata, bytes):
        metadata = metadata.decode(errors="replace")
    if not metadata or not metadata.startswith(_PREFIX):
        return Mark("none")
    body = metadata.removeprefix(_PREFIX)
    if body == "clean":
        return Mark("clean")
    kind, _, rest = body.partition(":")
    if kind == "run":
        return Mark("run", owner=rest)
    offset, _, rest = rest.partition(":")
    deaths, _, owner = rest.partition(":")
    if kind == "try" and offset.isdigit() and deaths.isdigit():
        return Mark("try", int(offset), int(deaths), owner)
    return Mark("none")


@dataclass(slots=True)
class Careful:
    """A partition whose last owner died: its next ``remaining`` records go one at a time."""

    start: int
    remaining: int
    # deaths the record at ``start`` was in flight at; every later one of the window: one
    start_deaths: int

    def deaths(self, offset: int) -> int:
        """How many worker deaths the record at ``offset`` may have been in flight at."""
        return self.start_deaths if offset == self.start else 1


def assess(
    committed: int, metadata: str | bytes | None, *, window: int, owner: str = ""
) -> Careful | None:
    """What the new owner ``owner`` of a partition committed at ``committed`` with
    ``metadata`` must do: ``None`` for a normal start, else the careful window."""
    mark = parse_mark(metadata)
    if committed < 0 or window <= 0 or mark.state in ("none", "clean"):
        return None
    ours = bool(owner) and mark.owner == owner  # we lost it and got it back: nobody died
    if mark.state == "try" and mark.offset == committed:
        return Careful(committed, window, mark.deaths + (0 if ours else 1))
    if ours:
        return None
    return Careful(committed, window, 1)
