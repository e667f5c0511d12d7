"""The decisions of workflows with memory, pure: throttle, dedupe, absence and delay timers.

Both the worker (over its partition stores, backed by a changelog topic) and ``eventrules
simulate`` (over :class:`MemoryState`, a dict) run these functions, so a simulation reaches the
decisions the live run reaches. Times are epoch seconds; windows are measured on event time.

Every entry a function writes carries a ``due`` time: when its timer acts. A timer either
fires (an absence watch that was not answered, a delayed action) or lets an entry expire (a
throttle or dedupe window that is over). An expiry is never earlier than a window's length of
wall-clock time after the entry was written, so a backlog of old events (whose windows are long
over in event time) is still judged against the entries it wrote.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, Protocol

from eventrules.models.memory import format_duration

__all__ = [
    "FIRED_MARKER_SECONDS",
    "AbsenceWatch",
    "Admission",
    "Due",
    "Gate",
    "MemoryState",
    "StateView",
    "absence_key",
    "admit",
    "answer",
    "delay_key",
    "due_action",
    "human",
    "on_due",
    "watch",
]

# How long a fired delay timer is remembered, so a repeated request for it (an at-least-once
# replay of the run that asked for it) cannot arm it again.
FIRED_MARKER_SECONDS = 3600.0

Decision = Literal["run", "repeat", "duplicate", "throttled"]


class StateView(Protocol):
    """One partition's keyed state, as the decisions see it."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, value: dict[str, Any], due: float | None) -> None: ...

    def delete(self, key: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Gate:
    """A rendered throttle or dedupe: at most ``limit`` runs per ``key`` within ``window``."""

    kind: Literal["throttle", "dedupe"]
    key: str
    limit: int
    window: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "limit": self.limit, "window": self.window}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Gate:
        kind = raw["kind"]
        if kind not in ("throttle", "dedupe"):
            raise ValueError(f"unknown gate kind {kind!r}")
        return cls(kind, str(raw["key"]), int(raw["limit"]), float(raw["window"]))

    def describe(self) -> str:
        if self.kind == "dedupe":
            return f"dedupe key {self.key!r}: one run within {human(self.window)}"
        return f"throttle key {self.key!r}: at most {self.limit} run(s) per {human(self.window)}"


@dataclass(frozen=True, slots=True)
class AbsenceWatch:
    """A rendered absence: wait ``within`` seconds for ``expect`` with ``match`` as its value."""

    expect: str
    match_on: str
    match: str
    within: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "expect": self.expect,
            "match_on": self.match_on,
            "match": self.match,
            "within": self.within,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AbsenceWatch:
        return cls(
            str(raw["expect"]), str(raw["match_on"]), str(raw["match"]), float(raw["within"])
        )


@dataclass(frozen=True, slots=True)
class Admission:
    decision: Decision
    reason: str

    @property
    def runs(self) -> bool:
        return self.decision == "run"


def human(seconds: float) -> str:
    """``21600.0`` -> ``6h``."""
    return format_duration(timedelta(seconds=seconds))


def _gate_key(workflow_id: str, gate: Gate) -> str:
    return f"{gate.kind}\x1f{workflow_id}\x1f{gate.key}"


def absence_key(workflow_id: str, match: str) -> str:
    return f"absence\x1f{workflow_id}\x1f{match}"


def _answered_key(workflow_id: str, match: str) -> str:
    return f"answered\x1f{workflow_id}\x1f{match}"


def delay_key(action_id: str) -> str:
    return f"delay\x1f{action_id}"


def admit(
    state: StateView,
    workflow_id: str,
    gates: tuple[Gate, ...],
    *,
    at: float,
    now: float,
    execution_id: str,
) -> Admission:
    """Whether the run ``execution_id`` of ``workflow_id`` at event time ``at`` passes its
    gates (dedupe, then throttle); a run that passes is counted against each of them.

    A run already counted (the same execution id: an at-least-once replay) is a ``repeat``:
    its outputs were delivered before its count was kept, so it is not run again.
    """
    counted: list[tuple[str, Gate, list[list[Any]]]] = []
    for gate in sorted(gates, key=lambda g: g.kind != "dedupe"):
        key = _gate_key(workflow_id, gate)
        entry = state.get(key)
        runs: list[list[Any]] = list(entry["runs"]) if entry else []
        if any(run[1] == execution_id for run in runs):
            return Admission("repeat", f"{gate.kind} key {gate.key!r}: this run was counted")
        newest = max([at, *(run[0] for run in runs)])
        runs = [run for run in runs if run[0] > newest - gate.window]
        inside = [run for run in runs if abs(run[0] - at) < gate.window]
        if len(inside) >= gate.limit:
            if gate.kind == "dedupe":
                return Admission(
                    "duplicate",
                    f"dedupe key {gate.key!r}: a duplicate of run {inside[0][1]}"
                    f" within {human(gate.window)}",
                )
            return Admission(
                "throttled",
                f"throttle key {gate.key!r}: {len(inside)} run(s) within {human(gate.window)}"
                f" (limit {gate.limit})",
            )
        counted.append((key, gate, runs))
    for key, gate, runs in counted:
        bisect.insort(runs, [at, execution_id])
        expires = max(*(run[0] for run in runs), now) + gate.window
        state.put(key, {"kind": gate.kind, "runs": runs}, expires)
    reason = "; ".join(gate.describe() for gate in gates) or "no gates"
    return Admission("run", f"passed: {reason}")


def watch(
    state: StateView,
    workflow_id: str,
    absence: AbsenceWatch,
    *,
    at: float,
    run: dict[str, Any],
    grace: float = 0.0,
) -> bool:
    """Start (or restart) the watch for ``absence.match``: fire ``run`` unless answered within
    ``absence.within`` of ``at``. False when an answer already came (it was processed first).
    The timer acts ``grace`` seconds after the deadline: time for an answer on its way."""
    answered = state.get(_answered_key(workflow_id, absence.match))
    if answered is not None and at <= answered["at"] <= at + absence.within:
        return False
    deadline = at + absence.within
    state.put(
        absence_key(workflow_id, absence.match),
        {"kind": "absence", "deadline": deadline, "run": run},
        deadline + grace,
    )
    return True


def answer(
    state: StateView, workflow_id: str, absence: AbsenceWatch, *, at: float, now: float
) -> bool:
    """The expected event for ``absence.match`` came at ``at``: a watch whose deadline it met
    is cancelled (True). A watch already overdue stays and fires. The answer is remembered for
    ``within`` so a watched event processed after it (another topic, another partition) is
    answered too."""
    key = absence_key(workflow_id, absence.match)
    pending = state.get(key)
    cancelled = pending is not None and at <= float(pending["deadline"])
    if cancelled:
        state.delete(key)
    marker = _answered_key(workflow_id, absence.match)
    previous = state.get(marker)
    latest = max(at, float(previous["at"])) if previous else at
    state.put(marker, {"kind": "answered", "at": latest}, max(latest, now) + absence.within)
    return cancelled


def due_action(
    state: StateView, action_id: str, *, due: float, now: float, run: dict[str, Any]
) -> bool:
    """Arm the delay timer of ``action_id`` (idempotent); False when it already fired."""
    key = delay_key(action_id)
    current = state.get(key)
    if current is not None and current.get("kind") == "fired":
        return False
    state.put(key, {"kind": "delay", "due": due, "run": run}, due)
    return True


@dataclass(frozen=True, slots=True)
class Due:
    """What a timer that came due does: ``run`` is the stored run to execute (absence, delay),
    None when the entry only expires."""

    key: str
    kind: str
    run: dict[str, Any] | None


def on_due(state: StateView, key: str, value: dict[str, Any], *, now: float) -> Due:
    """Act on the entry ``key`` whose timer came due: forget it, or hand back its run (a
    delay timer is replaced by a marker that it fired)."""
    kind = str(value.get("kind"))
    if kind == "delay":
        state.put(key, {"kind": "fired", "at": now}, now + FIRED_MARKER_SECONDS)
        return Due(key, kind, value.get("run"))
    state.delete(key)
    return Due(key, kind, value.get("run") if kind == "absence" else None)


class MemoryState:
    """A dict-backed :class:`StateView` with timers: what ``simulate`` and the tests use."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[dict[str, Any], float | None]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        found = self.entries.get(key)
        return found[0] if found is not None else None

    def put(self, key: str, value: dict[str, Any], due: float | None) -> None:
        self.entries[key] = (value, due)

    def delete(self, key: str) -> None:
        self.entries.pop(key, None)

    def next_due(self) -> float | None:
        dues = [due for _, due in self.entries.values() if due is not None]
        return min(dues) if dues else None

    def due(self, now: float) -> Iterator[tuple[str, dict[str, Any]]]:
        """Entries whose timer is due at ``now``, earliest first."""
        ready = sorted(
            (due, key) for key, (_, due) in self.entries.items() if due is not None and due <= now
        )
        for _, key in ready:
            found = self.entries.get(key)
            if found is not None:
                yield key, found[0]
