"""A partition store: uncommitted writes apart, flushed on commit, dropped on rewind."""

from __future__ import annotations

from pathlib import Path

from eventrules.runtime.state.store import PartitionStore


def test_reads_see_pending_writes_and_only_committed_ones_reach_the_database(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p0.sqlite"
    store = PartitionStore(path, 0)
    store.write(10, "a", {"n": 1}, None)
    store.write(11, "a", {"n": 2}, None)
    store.write(12, "b", {"n": 3}, 50.0)
    assert store.get("a") == {"n": 2}
    assert store.flush(11) == 1  # only the write of input 10 is committed
    store.close()
    reopened = PartitionStore(path, 0)
    assert reopened.get("a") == {"n": 1}
    assert reopened.get("b") is None
    reopened.close()


def test_a_rewind_forgets_the_writes_of_the_inputs_to_process_again(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p.sqlite", 0)
    store.write(1, "a", {"n": 1}, None)
    store.flush(2)
    store.write(2, "a", {"n": 2}, None)
    store.write(3, "a", None, None)
    assert store.get("a") is None
    store.rewind(3)
    assert store.get("a") == {"n": 2}
    store.rewind(2)
    assert store.get("a") == {"n": 1}
    assert store.pending == 0
    store.close()


def test_timers_come_due_in_order_across_pending_and_stored_entries(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p.sqlite", 0)
    store.write(1, "late", {"k": 1}, 30.0)
    store.write(1, "early", {"k": 2}, 10.0)
    store.write(1, "never", {"k": 3}, None)
    store.flush(2)
    store.write(2, "middle", {"k": 4}, 20.0)
    store.write(2, "early", {"k": 2}, 40.0)  # moved later, not yet committed
    assert store.next_due() == 20.0
    assert [key for key, _ in store.due(35.0, 10)] == ["middle", "late"]
    assert [key for key, _ in store.due(100.0, 1)] == ["middle"]
    assert store.due_of("early") == 40.0
    assert len(store) == 4
    store.close()


def test_the_changelog_position_is_kept_with_the_data(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    store = PartitionStore(path, 3)
    assert store.changelog_position() is None
    store.save_position(120)
    store.close()
    reopened = PartitionStore(path, 3)
    assert reopened.changelog_position() == 120
    reopened.clear()
    assert reopened.changelog_position() is None
    reopened.close()


def test_a_store_in_use_by_another_process_gives_way_to_a_file_of_our_own(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    holder = PartitionStore(path, 0)
    second = PartitionStore(path, 0)  # same host, same folder: the lock is taken
    assert second.path != path
    second.write(1, "a", {"n": 1}, None)
    second.flush(2)
    temporary = second.path
    second.close()
    assert not temporary.exists()
    holder.close()
