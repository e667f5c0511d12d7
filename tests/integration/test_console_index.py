"""The console's execution index follows the real executions topic, resumes where it stopped,
and is rebuilt from the topic when its file is missing."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from eventrules.console.index import ExecutionFilter, ExecutionIndex
from eventrules.console.indexer import ExecutionIndexer
from eventrules.ops.executions import ExecutionLog
from eventrules.settings import Settings
from integration.harness import Deployment

pytestmark = pytest.mark.integration


def _record(n: int) -> dict[str, object]:
    return {
        "execution_id": f"ex-{n}",
        "workflow_id": f"wf-{n % 3}",
        "workflow_name": "w",
        "workflow_version": 1,
        "trigger_event_type": "order.created",
        "trigger_event_id": f"evt-{n}",
        "trigger_event_source": "tests",
        "triggered_by": "event",
        "status": "failed" if n % 4 == 0 else "success",
        "actions": [],
        "executed_at": f"2026-01-10T08:{n // 60:02d}:{n % 60:02d}+00:00",
        "duration_ms": 1.0,
    }


def _produce(deployment: Deployment, numbers: range) -> None:
    for n in numbers:
        record = _record(n)
        deployment.produce(
            "executions", orjson.dumps(record), key=str(record["workflow_id"]).encode()
        )


def _follow(settings: Settings, path: Path) -> ExecutionIndex:
    index = ExecutionIndex(path, topic=settings.topic("executions"))
    indexer = ExecutionIndexer(settings, index)
    indexer.start()
    try:
        assert indexer.wait_caught_up(60), indexer.progress()
    finally:
        indexer.stop()
    return index


def test_the_index_follows_resumes_and_is_rebuilt(deployment: Deployment, tmp_path: Path) -> None:
    settings = Settings(bootstrap_servers=deployment.bootstrap, topic_prefix=deployment.prefix)
    path = tmp_path / "index.sqlite3"
    _produce(deployment, range(40))
    deployment.produce("executions", b"not a record", key=b"x")  # skipped, position advances

    index = _follow(settings, path)
    assert index.count() == 40
    failed = index.query(ExecutionFilter(status="failed"), limit=100).rows
    assert {row.execution_id for row in failed} == {f"ex-{n}" for n in range(0, 40, 4)}
    # the detail page reads the record itself back from the topic by its position
    row = index.get("ex-7")
    assert row is not None
    log = ExecutionLog(settings)
    try:
        assert log.fetch(row.partition, row.offset)["trigger_event_id"] == "evt-7"
    finally:
        log.close()
    positions = index.positions()
    index.close()

    _produce(deployment, range(40, 50))
    resumed = _follow(settings, path)
    assert resumed.count() == 50
    after = resumed.positions()
    assert sum(after.values()) == sum(positions.values()) + 10
    resumed.close()

    path.unlink()
    rebuilt = _follow(settings, path)
    assert rebuilt.count() == 50
    assert rebuilt.positions() == after
    rebuilt.close()
