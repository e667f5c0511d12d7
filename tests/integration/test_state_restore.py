"""Restoring a partition store from the changelog topic (real broker): only committed inputs,
corrections for the rest, and a local database that spares a second restore the whole log."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from eventrules.kafka.clients import read_to_end
from eventrules.runtime.state.changelog import changelog_headers, input_offset, restore_partition
from eventrules.runtime.state.store import PartitionStore, encode_entry
from integration.harness import Deployment

pytestmark = pytest.mark.integration


def _write(producer: Producer, topic: str, records: list[tuple[str, dict | None, int]]) -> None:
    for key, value, source in records:
        producer.produce(
            topic,
            key=key.encode(),
            value=encode_entry(value, 100.0 if value else None),
            partition=1,
            headers=changelog_headers(source),
        )
    assert producer.flush(30) == 0


def test_a_restore_applies_committed_inputs_only_and_corrects_the_rest(
    deployment: Deployment, tmp_path: Path
) -> None:
    client = {"bootstrap.servers": deployment.bootstrap}
    changelog = deployment.topic("state-changelog")
    producer = Producer(client)
    _write(producer, changelog, [(f"k{n}", {"n": n}, n) for n in range(100)])
    _write(
        producer,
        changelog,
        [("k5", {"n": 500}, 120), ("k7", {"n": 700}, 200), ("new", {"n": 1}, 201)],
    )

    store = PartitionStore(tmp_path / "p1.sqlite", 1)
    restored = restore_partition(store, client, changelog, committed_input=150, repair=producer)
    assert (restored.records, restored.skipped, restored.start, restored.end) == (103, 2, 0, 103)
    assert store.get("k5") == {"n": 500}
    assert store.get("k7") == {"n": 7}  # the write of input 200 is not committed
    assert store.get("new") is None
    assert store.due_of("k7") == 100.0
    assert len(store) == 100
    # corrections: the restored values of the skipped keys, as of a committed input
    tail = [m for m in read_to_end(client, changelog) if m.partition() == 1][-2:]
    assert [(m.key(), input_offset(m)) for m in tail] == [(b"k7", 149), (b"new", 149)]
    assert orjson.loads(tail[0].value())["value"] == {"n": 7}
    assert tail[1].value() is None
    store.close()

    # The same host again: only what was written since is read.
    _write(producer, changelog, [("k1", None, 160)])
    again = PartitionStore(tmp_path / "p1.sqlite", 1)
    second = restore_partition(again, client, changelog, committed_input=170, repair=producer)
    assert (second.start, second.records, second.skipped) == (103, 3, 0)
    assert again.get("k1") is None
    assert again.get("k7") == {"n": 7}  # the correction came after the stale record
    again.close()

    # A fresh host, once input 200 is committed: the correction still wins.
    fresh = PartitionStore(tmp_path / "other.sqlite", 1)
    third = restore_partition(fresh, client, changelog, committed_input=300, repair=producer)
    assert third.skipped == 0
    assert fresh.get("k7") == {"n": 7}
    assert fresh.get("new") is None
    assert len(fresh) == 99
    fresh.close()


def test_a_local_store_ahead_of_the_changelog_is_restored_whole(
    deployment: Deployment, tmp_path: Path
) -> None:
    client = {"bootstrap.servers": deployment.bootstrap}
    changelog = deployment.topic("state-changelog")
    producer = Producer(client)
    _write(producer, changelog, [("a", {"n": 1}, 0)])
    store = PartitionStore(tmp_path / "p1.sqlite", 1)
    store.write(0, "stale", {"n": 9}, None)
    store.flush(1)
    store.save_position(10_000)  # a changelog recreated since this file was written
    restored = restore_partition(store, client, changelog, committed_input=1, repair=None)
    assert (restored.start, restored.records) == (0, 1)
    assert store.get("stale") is None
    assert store.get("a") == {"n": 1}
    store.close()
