"""Logging, set up in one place for every process eventrules starts (the CLI's worker, the
stats keeper child)."""

from __future__ import annotations

import logging

__all__ = ["setup_logging"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s{tag}: %(message)s"


def setup_logging(level: str | int = "info", *, tag: str = "") -> None:
    """Log to stderr at ``level``; ``tag`` marks the lines of a child process (``[stats]``)."""
    if isinstance(level, str):
        level = level.upper()
    logging.basicConfig(level=level, format=_FORMAT.format(tag=tag), force=True)
