"""Logging, set up in one place for every process eventrules starts (the CLI, the worker, the
stats keeper child).

Two formats on stderr: ``text`` for people at a terminal and ``json`` (one object per line)
for container log pipelines; ``auto`` picks text when stderr is a terminal, JSON otherwise.
A JSON line holds ``time``, ``level``, ``logger``, ``message``, the ``extra=`` fields of the
call (the runner passes ``event_id``, ``workflow_id`` and ``execution_id``, the dead-letter
writer the record's ``topic``, ``partition``, ``offset`` and ``reason``), ``process`` for a
child process and ``exception`` with the traceback. The text format appends the same fields as
``key=value``. Extra fields cost nothing until a line is logged, unlike context variables set
per event.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

__all__ = [
    "JsonFormatter",
    "LogFormat",
    "TextFormatter",
    "configured",
    "resolve_format",
    "setup_logging",
]

LogFormat = Literal["auto", "text", "json"]

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s{tag}: %(message)s"
# What every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_configured: dict[str, Any] = {"level": "INFO", "format": "text"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _STANDARD and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log pipelines (Loki, Elasticsearch, Cloud Logging) parse
    without a grok pattern."""

    def __init__(self, tag: str = "") -> None:
        super().__init__()
        self.tag = tag

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_extras(record))
        if self.tag:
            entry["process"] = self.tag
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """The classic line, with the bound and ``extra=`` fields appended as ``key=value``."""

    def __init__(self, tag: str = "") -> None:
        super().__init__(_TEXT_FORMAT.format(tag=f" [{tag}]" if tag else ""))

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _extras(record)
        if not fields:
            return line
        first, newline, rest = line.partition("\n")
        suffix = " ".join(f"{key}={value}" for key, value in fields.items())
        return f"{first} [{suffix}]{newline}{rest}"


def resolve_format(log_format: str) -> Literal["text", "json"]:
    """``auto`` -> text on a terminal, JSON otherwise (containers, files, pipes)."""
    if log_format == "auto":
        return "text" if sys.stderr.isatty() else "json"
    if log_format not in ("text", "json"):
        raise ValueError(f"log format must be auto, text or json, not {log_format!r}")
    return "json" if log_format == "json" else "text"


def setup_logging(level: str | int = "info", *, log_format: str = "auto", tag: str = "") -> None:
    """Log to stderr at ``level`` in ``log_format``; ``tag`` marks a child process (``stats``)."""
    if isinstance(level, str):
        level = level.upper()
    resolved = resolve_format(log_format)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(tag) if resolved == "json" else TextFormatter(tag))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    _configured.update(level=logging.getLevelName(logging.getLogger().level), format=resolved)


def configured() -> tuple[str, str]:
    """``(level, format)`` of the last :func:`setup_logging`, for child processes to match."""
    return str(_configured["level"]), str(_configured["format"])
