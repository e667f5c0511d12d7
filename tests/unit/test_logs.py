"""Logging: JSON lines for pipelines, text for people, the same fields in both."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import orjson
import pytest

from eventrules.logs import JsonFormatter, TextFormatter, configured, resolve_format, setup_logging


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "eventrules.runtime.runner", "levelno": 40})
    record.levelname = "ERROR"
    record.msg = message
    record.__dict__.update(extra)
    return record


def test_a_json_line_carries_the_fields_of_the_event_and_the_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record("action 0 of w failed", event_id="e-1", workflow_id="w", execution_id="x")
        record.exc_info = sys.exc_info()
    line = JsonFormatter(tag="stats").format(record)
    assert "\n" not in line, "one object per line"
    entry = orjson.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "eventrules.runtime.runner"
    assert entry["message"] == "action 0 of w failed"
    assert (entry["event_id"], entry["workflow_id"], entry["execution_id"]) == ("e-1", "w", "x")
    assert entry["process"] == "stats"
    assert "ValueError: boom" in entry["exception"]
    assert entry["time"].endswith("+00:00")


def test_text_appends_the_same_fields() -> None:
    line = TextFormatter().format(_record("dead-lettered", topic="t", offset=3))
    assert line.endswith("ERROR eventrules.runtime.runner: dead-lettered [topic=t offset=3]")
    assert TextFormatter(tag="stats").format(_record("x")).endswith("runner [stats]: x")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_auto_is_text_on_a_terminal_and_json_elsewhere(
    monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", Terminal())
    assert resolve_format("auto") == "text"
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert resolve_format("auto") == "json"
    assert resolve_format("text") == "text"
    with pytest.raises(ValueError, match="auto, text or json"):
        resolve_format("xml")
    setup_logging("warning", log_format="auto")
    assert configured() == ("WARNING", "json")
    logging.getLogger("librdkafka").warning("%s [%s] %s", "FAIL", "rdkafka#producer-1", "down")
    logging.getLogger("x").info("below the level")
    written = sys.stderr.getvalue()  # type: ignore[attr-defined]
    lines = [orjson.loads(line) for line in written.splitlines()]
    assert [line["message"] for line in lines] == ["FAIL [rdkafka#producer-1] down"]
