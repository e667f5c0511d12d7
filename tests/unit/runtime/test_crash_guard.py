"""The crash-loop guard's reading of commit marks (pure)."""

from __future__ import annotations

from eventrules.runtime.crash_guard import MARK_CLEAN, Mark, assess, parse_mark, run_mark, try_mark

MARK_RUN = run_mark("dead")


def test_marks_round_trip_and_foreign_metadata_reads_as_none() -> None:
    assert parse_mark(MARK_RUN) == Mark("run", owner="dead")
    assert parse_mark(MARK_CLEAN.encode()) == Mark("clean")
    assert parse_mark(try_mark(42, 1, "w1")) == Mark("try", 42, 1, "w1")
    for foreign in (None, "", "someone else's", "eventrules:try:x:1", "eventrules:what"):
        assert parse_mark(foreign) == Mark("none")


def test_a_clean_or_unmarked_commit_is_a_normal_start() -> None:
    assert assess(10, MARK_CLEAN, window=100) is None
    assert assess(10, None, window=100) is None
    assert assess(-1001, MARK_RUN, window=100) is None, "nothing committed: nothing to guard"
    assert assess(10, MARK_RUN, window=0) is None, "window 0 turns the guard off"


def test_an_owner_that_died_running_makes_the_next_window_careful() -> None:
    careful = assess(10, MARK_RUN, window=100)
    assert careful is not None
    assert (careful.start, careful.remaining) == (10, 100)
    assert careful.deaths(10) == 1
    assert careful.deaths(11) == 1


def test_an_owner_that_died_on_a_marked_record_adds_a_death_to_that_record() -> None:
    careful = assess(10, try_mark(10, 1), window=100)
    assert careful is not None
    assert careful.deaths(10) == 2
    assert careful.deaths(11) == 1
    # a mark for another offset than the committed one says nothing about the committed one
    other = assess(12, try_mark(10, 1), window=100)
    assert other is not None
    assert other.deaths(12) == 1


def test_its_own_marks_do_not_count_as_a_death() -> None:
    assert assess(10, run_mark("me"), window=100, owner="me") is None
    careful = assess(10, try_mark(10, 1, "me"), window=100, owner="me")
    assert careful is not None
    assert careful.deaths(10) == 1
