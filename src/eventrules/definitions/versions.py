"""Version rules of the config topic: per-definition high-water marks and sane bounds.

The mark of a definition is the highest version ever accepted for it, deletions included: a
tombstone removes the definition but not its mark, so a re-created definition must start above
it and an old signed record replayed after a delete is refused. A version at or above 2^53 (past
what JSON numbers carry exactly) or more than ``max_step`` above the mark is refused too, so a
definition cannot be pinned where no later change is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

__all__ = ["DEFAULT_MAX_VERSION_STEP", "MAX_VERSION", "VersionMarks"]

MAX_VERSION: Final = 2**53 - 1
DEFAULT_MAX_VERSION_STEP: Final = 1_000_000

Key = tuple[str, str]


@dataclass
class VersionMarks:
    """Marks and held versions of every definition seen; single-threaded like its callers."""

    max_step: int = DEFAULT_MAX_VERSION_STEP
    marks: dict[Key, int] = field(default_factory=dict)
    held: dict[Key, int] = field(default_factory=dict)

    def mark(self, key: Key) -> int:
        return self.marks.get(key, 0)

    def _bounds(self, key: Key, version: int) -> str | None:
        if version < 1 or version > MAX_VERSION:
            return f"version {version} is outside 1..2^53-1"
        ceiling = self.mark(key) + self.max_step
        if version > ceiling:
            return (
                f"version {version} jumps more than {self.max_step} above the highest version"
                f" seen ({self.mark(key)})"
            )
        return None

    def refuse_upsert(self, key: Key, version: int) -> tuple[str, str] | None:
        """``(reason code, detail)`` when ``version`` may not be installed, else None."""
        out_of_range = self._bounds(key, version)
        if out_of_range is not None:
            return "version_out_of_range", out_of_range
        mark = self.mark(key)
        if version < mark or (version == mark and key not in self.held):
            state = "held" if key in self.held else "deleted"
            return "stale_version", f"v{version} is not above v{mark} ({state})"
        return None

    def refuse_delete(self, key: Key, version: int | None) -> tuple[str, str] | None:
        """Same for a tombstone deleting ``version`` (None: an unversioned, unsigned delete)."""
        if version is None:
            return None
        out_of_range = self._bounds(key, version)
        if out_of_range is not None:
            return "version_out_of_range", out_of_range
        if version < self.mark(key):
            return "stale_version", f"a delete of v{version} is older than v{self.mark(key)}"
        return None

    def installed(self, key: Key, version: int) -> None:
        self.held[key] = version
        self.marks[key] = max(self.mark(key), version)

    def deleted(self, key: Key, version: int | None) -> None:
        self.held.pop(key, None)
        if version is not None:
            self.marks[key] = max(self.mark(key), version)
