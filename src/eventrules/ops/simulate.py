"""``eventrules simulate``: run a draft workflow over past events, with no side effects, and
compare it with the live version.

The events are read from the event topics over a time range (``offsets_for_times`` finds where
the range starts and ends in each partition, by record timestamp), decoded like the worker
decodes them, and replayed in event-time order through an engine holding only the definition
under test. Throttle, dedupe and absence run the same decisions the worker runs
(:mod:`eventrules.workflows.memory`), over a state kept in memory, with the events' own times
as the clock: an absence watch fires when a later event (or the end of the range) passes its
deadline. Nothing is published, no webhook is called.

A run is identified by its trigger event (source and id), so the draft and the live version
can be compared run for run: fired by both, only by the draft, only by the live version.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from eventrules.errors import KafkaError, PoisonEventError
from eventrules.kafka.clients import consumer_config, private_group, watermarks
from eventrules.kafka.topics import load_topic_specs
from eventrules.models.cloudevents import decode_event
from eventrules.models.events import Event
from eventrules.models.executions import execution_id
from eventrules.models.workflows import Workflow, parse_workflow
from eventrules.ops.config import read_live
from eventrules.settings import Settings
from eventrules.workflows.catalog import TriggerCatalog
from eventrules.workflows.engine import Engine
from eventrules.workflows.memory import MemoryState, admit, answer, on_due, watch

__all__ = [
    "Comparison",
    "SimulatedRun",
    "Simulation",
    "compare",
    "read_events",
    "simulate",
    "simulate_against_live",
]

_BATCH = 1000


@dataclass(frozen=True, slots=True)
class SimulatedRun:
    """One run the definition would have made."""

    event_source: str
    event_id: str
    event_type: str
    event_time: str
    triggered_by: str  # event, or timer (an absence that was not answered)
    at: str  # when it would have run (event time; the deadline for a timer)
    delayed_actions: tuple[int, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.event_source, self.event_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_source": self.event_source,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "event_time": self.event_time,
            "triggered_by": self.triggered_by,
            "at": self.at,
            "delayed_actions": list(self.delayed_actions),
        }


@dataclass
class Simulation:
    """What one definition would have done over the events."""

    workflow_id: str
    version: int
    runs: list[SimulatedRun] = field(default_factory=list)
    # throttled / duplicate decisions, absence watches started and answered
    decisions: Counter[str] = field(default_factory=Counter)
    traces: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id,
            "version": self.version,
            "executions": len(self.runs),
            "decisions": dict(sorted(self.decisions.items())),
            "sample_traces": self.traces,
        }


@dataclass
class Comparison:
    events: int
    draft: Simulation
    live: Simulation | None
    both: list[tuple[str, str]]
    only_draft: list[tuple[str, str]]
    only_live: list[tuple[str, str]]

    def to_dict(self, *, sample: int = 10) -> dict[str, Any]:
        def ids(keys: list[tuple[str, str]]) -> list[str]:
            return [event_id for _, event_id in keys[:sample]]

        return {
            "events": self.events,
            "draft": self.draft.to_dict(),
            "live": self.live.to_dict() if self.live is not None else None,
            "fired_by_both": len(self.both),
            "only_draft": len(self.only_draft),
            "only_live": len(self.only_live),
            "sample_only_draft": ids(self.only_draft),
            "sample_only_live": ids(self.only_live),
        }


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).astimezone().isoformat()


class _Simulator:
    """One definition over events in time order, its state in memory."""

    def __init__(self, workflow: Workflow, catalog: TriggerCatalog, sample: int) -> None:
        self.engine = Engine(catalog)
        self.engine.upsert(workflow)
        self.workflow = workflow
        self.state = MemoryState()
        self.result = Simulation(workflow.id, workflow.version)
        self.sample = sample

    def advance(self, now: float) -> None:
        """Act on every timer due by ``now`` (event time): absence watches fire, windows end."""
        while True:
            due = self.state.next_due()
            if due is None or due > now:
                return
            for key, value in list(self.state.due(due)):
                fired = on_due(self.state, key, value, now=due)
                if fired.run is not None and fired.kind == "absence":
                    event = Event.model_validate(fired.run["event"])
                    self._ran(event, "timer", due, fired.run["planned"])

    def feed(self, event: Event) -> None:
        at = event.time.timestamp()
        self.advance(at)
        plan = self.engine.plan(event)
        for answered in plan.answers:
            if answer(self.state, answered.workflow_id, answered.watch, at=at, now=at):
                self.result.decisions["answered"] += 1
        for planned in plan.workflows:
            outcome = "ran"
            if planned.absence is not None:
                watch(
                    self.state,
                    planned.workflow_id,
                    planned.absence,
                    at=at,
                    run={
                        "planned": planned.to_dict(),
                        "event": {**event.envelope(), "data": event.data},
                    },
                )
                self.result.decisions["watching"] += 1
                outcome = "watching"
            elif planned.gates:
                run_id = execution_id(event.source, event.id, planned.workflow_id, planned.version)
                admission = admit(
                    self.state,
                    planned.workflow_id,
                    planned.gates,
                    at=at,
                    now=at,
                    execution_id=run_id,
                )
                if admission.runs:
                    self._ran(event, "event", at, planned.to_dict())
                else:
                    self.result.decisions[admission.decision] += 1
                    outcome = f"{admission.decision}: {admission.reason}"
            else:
                self._ran(event, "event", at, planned.to_dict())
            self._trace(event, outcome)

    def _ran(self, event: Event, triggered_by: str, at: float, planned: dict[str, Any]) -> None:
        delayed = tuple(
            int(action["index"]) for action in planned["actions"] if action.get("delay_seconds")
        )
        self.result.runs.append(
            SimulatedRun(
                event.source,
                event.id,
                event.type,
                event.time.isoformat(),
                triggered_by,
                _iso(at),
                delayed,
            )
        )

    def _trace(self, event: Event, outcome: str) -> None:
        if len(self.result.traces) >= self.sample:
            return
        trace = self.engine.trace(self.workflow.id, event).to_dict()
        self.result.traces.append({"event_id": event.id, "outcome": outcome, "trace": trace})


def simulate(
    workflow: Workflow,
    events: Iterable[Event],
    *,
    until: float,
    catalog: TriggerCatalog,
    sample: int = 5,
) -> Simulation:
    """The runs ``workflow`` would have made over ``events`` (in event-time order), with the
    timers due by ``until`` acted on."""
    simulator = _Simulator(workflow, catalog, sample)
    for event in events:
        simulator.feed(event)
    simulator.advance(until)
    return simulator.result


def compare(
    draft: Workflow,
    live: Workflow | None,
    events: list[Event],
    *,
    until: float,
    catalog: TriggerCatalog,
    sample: int = 5,
) -> Comparison:
    """Simulate ``draft`` and ``live`` over the same events and set their runs side by side."""
    drafted = simulate(draft, events, until=until, catalog=catalog, sample=sample)
    lived = simulate(live, events, until=until, catalog=catalog, sample=sample) if live else None
    draft_keys = list(dict.fromkeys(run.key for run in drafted.runs))
    live_keys = list(dict.fromkeys(run.key for run in lived.runs)) if lived else []
    live_set = set(live_keys)
    draft_set = set(draft_keys)
    return Comparison(
        events=len(events),
        draft=drafted,
        live=lived,
        both=[key for key in draft_keys if key in live_set],
        only_draft=[key for key in draft_keys if key not in live_set],
        only_live=[key for key in live_keys if key not in draft_set],
    )


def read_events(
    client_config: dict[str, Any],
    topics: list[str],
    *,
    start: datetime,
    end: datetime | None,
    types: set[str],
    timeout: float = 120.0,
) -> list[Event]:
    """The events of ``types`` in ``topics`` whose record timestamps fall in [start, end),
    sorted by event time (then topic, partition, offset). Unreadable records are skipped, as
    the worker would have dead-lettered them."""
    consumer = Consumer(consumer_config(client_config, private_group("simulate")))
    try:
        spans = _spans(consumer, topics, start, end, timeout)
        found = list(_consume(consumer, spans, types, timeout))
    except KafkaException as exc:
        raise KafkaError(f"reading events: {exc.args[0]}") from None
    finally:
        consumer.close()
    found.sort(key=lambda item: item[0])
    return [event for _, event in found]


def _spans(
    consumer: Consumer, topics: list[str], start: datetime, end: datetime | None, timeout: float
) -> dict[tuple[str, int], tuple[int, int]]:
    """Per partition: the first offset at or after ``start`` and the first at or after ``end``."""
    partitions: list[TopicPartition] = []
    for topic in topics:
        info = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if info is None or info.error is not None:
            raise KafkaError(f"topic {topic} does not exist; run `eventrules topics apply`")
        partitions.extend(TopicPartition(topic, p) for p in sorted(info.partitions))
    highs = {
        (tp.topic, tp.partition): watermarks(consumer, tp, timeout=timeout)[1] for tp in partitions
    }

    def offsets_at(moment: datetime) -> dict[tuple[str, int], int]:
        ms = int(moment.timestamp() * 1000)
        asked = [TopicPartition(tp.topic, tp.partition, ms) for tp in partitions]
        answered = consumer.offsets_for_times(asked, timeout=timeout)
        # -1: no record at or after that time, so the partition's end
        return {
            (tp.topic, tp.partition): tp.offset
            if tp.offset >= 0
            else highs[(tp.topic, tp.partition)]
            for tp in answered
        }

    first = offsets_at(start)
    last = offsets_at(end) if end is not None else highs
    return {key: (first[key], last[key]) for key in first if last[key] > first[key]}


def _consume(
    consumer: Consumer,
    spans: dict[tuple[str, int], tuple[int, int]],
    types: set[str],
    timeout: float,
) -> Iterator[tuple[tuple[float, str, int, int], Event]]:
    if not spans:
        return
    consumer.assign([TopicPartition(t, p, first) for (t, p), (first, _) in spans.items()])
    pending = set(spans)
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise KafkaError(f"timed out reading events ({len(pending)} partitions unfinished)")
        for message in consumer.consume(_BATCH, 0.5):
            if message.error() is not None:
                continue
            key = (message.topic() or "", message.partition() or 0)
            offset = message.offset() or 0
            if key not in pending or offset >= spans[key][1]:
                continue
            kind, stamp = message.timestamp()
            try:
                event = decode_event(
                    message.value(),
                    message.headers(),  # type: ignore[arg-type]
                    timestamp_ms=stamp if kind and stamp > 0 else None,
                )
            except PoisonEventError:
                continue
            if event.type in types:
                yield (event.time.timestamp(), key[0], key[1], offset), event
        positions = consumer.position([TopicPartition(t, p) for t, p in pending])
        pending -= {
            (tp.topic, tp.partition)
            for tp in positions
            if tp.offset >= spans[(tp.topic, tp.partition)][1]
        }


def simulate_against_live(
    settings: Settings,
    draft: Workflow,
    *,
    start: datetime,
    end: datetime | None,
    sample: int = 5,
    topics: list[str] | None = None,
    catalog: TriggerCatalog | None = None,
) -> Comparison:
    """Read the deployment's events over [start, end) and compare ``draft`` with the live
    version of the same id (if any) from the config topic."""
    catalog = catalog or TriggerCatalog.load(*settings.extra_trigger_files)
    item = read_live(settings).get(("workflow", draft.id))
    live = parse_workflow(item.value) if item is not None and item.value else None
    types = (
        {draft.trigger} | _expected(draft) | ({live.trigger} | _expected(live) if live else set())
    )
    if topics is None:
        specs = load_topic_specs(settings.resolved_topics_dir(), prefix=settings.topic_prefix)
        topics = [spec.topic for spec in specs if spec.name.startswith("events.")]
    events = read_events(settings.kafka_client_config(), topics, start=start, end=end, types=types)
    until = (end or datetime.now(UTC)).timestamp()
    return compare(draft, live, events, until=until, catalog=catalog, sample=sample)


def _expected(workflow: Workflow) -> set[str]:
    return {workflow.absence.expect} if workflow.absence is not None else set()
