"""The pure decisions of workflows with memory, over an in-memory state."""

from __future__ import annotations

from typing import Any

import pytest

from eventrules.workflows.memory import (
    FIRED_MARKER_SECONDS,
    AbsenceWatch,
    Gate,
    MemoryState,
    absence_key,
    admit,
    answer,
    delay_key,
    due_action,
    on_due,
    watch,
)

HOUR = 3600.0
THROTTLE = Gate("throttle", "p1", 1, 6 * HOUR)


def _admit(state: MemoryState, gates: tuple[Gate, ...], at: float, run: str) -> str:
    return admit(state, "w", gates, at=at, now=at, execution_id=run).decision


def test_throttle_lets_one_run_per_window_and_the_next_after_it() -> None:
    state = MemoryState()
    assert _admit(state, (THROTTLE,), 0, "a") == "run"
    assert _admit(state, (THROTTLE,), HOUR, "b") == "throttled"
    assert _admit(state, (THROTTLE,), 6 * HOUR - 1, "c") == "throttled"
    assert _admit(state, (THROTTLE,), 6 * HOUR, "d") == "run"
    assert _admit(state, (THROTTLE,), 7 * HOUR, "e") == "throttled"


def test_a_throttle_limit_counts_runs_in_a_sliding_window_in_any_order() -> None:
    gate = Gate("throttle", "p1", 2, HOUR)
    state = MemoryState()
    assert [_admit(state, (gate,), at, run) for at, run in [(0, "a"), (600, "b"), (1200, "c")]] == [
        "run",
        "run",
        "throttled",
    ]
    assert _admit(state, (gate,), HOUR + 1, "d") == "run"  # "a" left the window
    # a late event, older than the runs it is compared with, still counts them
    assert _admit(state, (gate,), 900, "e") == "throttled"


def test_each_key_has_its_own_window() -> None:
    state = MemoryState()
    assert _admit(state, (THROTTLE,), 0, "a") == "run"
    assert _admit(state, (Gate("throttle", "p2", 1, HOUR),), 1, "b") == "run"


def test_a_repeated_run_is_recognised_not_counted_twice() -> None:
    state = MemoryState()
    assert _admit(state, (THROTTLE,), 0, "a") == "run"
    assert _admit(state, (THROTTLE,), 0, "a") == "repeat"


def test_dedupe_suppresses_a_business_duplicate_and_names_the_first_run() -> None:
    gate = Gate("dedupe", "order-1", 1, 24 * HOUR)
    state = MemoryState()
    assert _admit(state, (gate,), 0, "first") == "run"
    decision = admit(state, "w", (gate,), at=60, now=60, execution_id="retry")
    assert decision.decision == "duplicate"
    assert "first" in decision.reason
    assert _admit(state, (gate,), 25 * HOUR, "next-day") == "run"


def test_a_run_dedupe_refuses_is_not_counted_by_the_throttle() -> None:
    dedupe = Gate("dedupe", "o1", 1, HOUR)
    state = MemoryState()
    assert _admit(state, (THROTTLE, dedupe), 0, "a") == "run"
    assert _admit(state, (THROTTLE, dedupe), 1, "b") == "duplicate"
    runs = state.get("throttle\x1fw\x1fp1")
    assert runs is not None
    assert [run[1] for run in runs["runs"]] == ["a"]


def test_window_entries_expire_a_window_after_the_later_of_event_time_and_now() -> None:
    state = MemoryState()
    admit(state, "w", (THROTTLE,), at=0, now=100 * HOUR, execution_id="a")
    assert state.next_due() == 106 * HOUR  # an old event is remembered a window from now
    ((key, value),) = state.due(106 * HOUR)
    assert on_due(state, key, value, now=106 * HOUR).run is None
    assert state.entries == {}


WATCH = AbsenceWatch("payment.received", "orderId", "o1", HOUR)
RUN: dict[str, Any] = {"planned": {"workflow_id": "w"}, "event": {"id": "e1"}}


def test_an_unanswered_watch_fires_its_run_at_the_deadline_plus_grace() -> None:
    state = MemoryState()
    assert watch(state, "w", WATCH, at=0, run=RUN, grace=2)
    assert state.next_due() == HOUR + 2
    ((key, value),) = state.due(HOUR + 2)
    fired = on_due(state, key, value, now=HOUR + 2)
    assert (fired.kind, fired.run) == ("absence", RUN)
    assert state.get(absence_key("w", "o1")) is None


def test_an_answer_in_time_cancels_the_watch_and_a_late_one_does_not() -> None:
    state = MemoryState()
    watch(state, "w", WATCH, at=0, run=RUN)
    assert answer(state, "w", WATCH, at=HOUR, now=HOUR)  # exactly at the deadline: in time
    assert state.get(absence_key("w", "o1")) is None
    late = MemoryState()
    watch(late, "w", WATCH, at=0, run=RUN)
    assert not answer(late, "w", WATCH, at=HOUR + 1, now=HOUR + 1)
    assert late.get(absence_key("w", "o1")) is not None


def test_an_answer_processed_before_the_watched_event_still_answers_it() -> None:
    state = MemoryState()
    answer(state, "w", WATCH, at=120, now=120)
    assert not watch(state, "w", WATCH, at=60, run=RUN)  # the payment came 1 minute after it
    assert watch(state, "w", WATCH, at=600, run=RUN)  # a later order needs a later payment


def test_a_newer_watched_event_restarts_the_watch() -> None:
    state = MemoryState()
    watch(state, "w", WATCH, at=0, run=RUN)
    watch(state, "w", WATCH, at=600, run=RUN | {"event": {"id": "e2"}})
    assert state.next_due() == HOUR + 600
    entry = state.get(absence_key("w", "o1"))
    assert entry is not None
    assert entry["run"]["event"] == {"id": "e2"}


def test_a_delay_timer_fires_once_and_cannot_be_armed_again() -> None:
    state = MemoryState()
    assert due_action(state, "x.1", due=50, now=0, run=RUN)
    assert due_action(state, "x.1", due=50, now=1, run=RUN)  # a replayed request: same timer
    assert list(state.due(49)) == []
    ((key, value),) = state.due(50)
    assert key == delay_key("x.1")
    assert on_due(state, key, value, now=50).run == RUN
    assert not due_action(state, "x.1", due=50, now=51, run=RUN)
    assert state.next_due() == 50 + FIRED_MARKER_SECONDS


@pytest.mark.parametrize("gate", [THROTTLE, Gate("dedupe", "k", 1, 5.0)])
def test_gates_and_watches_survive_their_json_form(gate: Gate) -> None:
    assert Gate.from_dict(gate.to_dict()) == gate
    assert AbsenceWatch.from_dict(WATCH.to_dict()) == WATCH
