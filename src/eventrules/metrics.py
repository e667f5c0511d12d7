"""Prometheus metrics: one typed bundle created from an injected registry.

Names are the contract with dashboards (helm/ and grafana/ query them); change them only with
the dashboard.

Label values taken from input are bounded: a value that is not a declared name (an event type
outside the trigger catalog) is counted under :data:`OTHER`, so random input cannot create
series without end. Workflow and rule ids come from definitions, which are declared names.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.values import MutexValue

__all__ = ["DURATION_BUCKETS", "OTHER", "Metrics", "declared_or_other"]

OTHER: Final = "other"
# How stale the streams' counts may be between scrapes (Metrics.apply_counts_due); a scrape
# itself always sees them all.
APPLY_INTERVAL_SECONDS: Final = 0.5


def declared_or_other(value: str, declared: Container[str]) -> str:
    """``value`` as a label if it is a declared name, else ``other``."""
    return value if value in declared else OTHER


# Seconds; workflow runs are mostly a few produce calls (ms) but webhooks can take seconds.
# Typed as a tuple of any length: mypyc keeps a fixed-length tuple of floats unboxed and built a
# new tuple of 14 floats for every bisect_left over it (twice per run).
DURATION_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


def _histogram_cells(child: Any) -> tuple[Any, list[Any]]:
    """A histogram child's sum and bucket cells (prometheus_client's locked values), checked once
    to have :data:`DURATION_BUCKETS`: batched observations add to them directly, the same series
    one ``observe()`` each would give."""
    buckets = getattr(child, "_buckets", None)
    bounds = getattr(child, "_upper_bounds", None)
    if buckets is None or bounds is None or list(bounds[:-1]) != list(DURATION_BUCKETS):
        raise TypeError("batched observations need a histogram with DURATION_BUCKETS")
    return child._sum, list(buckets)


def _pend(pending: dict[Any, list[float]], key: Any, amount: float) -> None:
    """Observe ``amount`` under ``key``: a running sum, then a count per DURATION_BUCKETS
    bucket (the last one +Inf), as a histogram child keeps them."""
    found = pending.get(key)
    if found is None:
        found = pending[key] = [0.0] * (len(DURATION_BUCKETS) + 2)
    found[0] += amount
    found[1 + bisect_left(DURATION_BUCKETS, amount)] += 1


def _add(cell: Any, amount: float) -> None:
    """``cell.inc(amount)``: for prometheus_client's locked float (every value of a process not
    in its multiprocess mode) the same lock and addition without the interpreted call, which
    was most of applying a batch's counts (a series per workflow: hundreds per batch)."""
    if type(cell) is MutexValue:
        with cell._lock:
            cell._value += amount
    else:
        cell.inc(amount)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    events_consumed: Counter
    events_dead_lettered: Counter
    workflow_matches: Counter
    executions: Counter
    execution_duration: Histogram
    actions: Counter
    action_duration: Histogram
    webhook_latency: Histogram
    webhook_retries: Counter
    definitions_loaded: Gauge
    config_rejects: Counter
    config_restores: Counter
    consumer_lag: Gauge
    ready: Gauge
    rule_evaluations: Counter
    rule_last_evaluated: Gauge
    events_unmatched: Counter
    action_retries: Counter
    stream_incidents: Counter
    stream_stalled: Gauge
    rule_replies_refused: Counter
    http_auth_failures: Counter
    state_decisions: Counter
    state_timers_fired: Counter
    state_restores: Counter
    state_restore_seconds: Histogram
    state_restore_retries: Counter
    state_restoring: Gauge
    _children: dict[tuple[int, tuple[str, ...]], Any] = field(
        default_factory=dict, compare=False, repr=False
    )
    _counts: dict[tuple[Any, tuple[str, ...]], int] = field(
        default_factory=dict, compare=False, repr=False
    )
    # histogram observations not applied yet: per (histogram, labels), [sum, count per bucket]
    _observed: dict[tuple[Any, tuple[str, ...]], list[float]] = field(
        default_factory=dict, compare=False, repr=False
    )
    # what apply_counts adds to, resolved once per series: a counter child's value cell, a
    # histogram child's sum and bucket cells (a child's inc() re-checks what cannot change)
    _cells: dict[tuple[int, tuple[str, ...]], Any] = field(
        default_factory=dict, compare=False, repr=False
    )
    # runs and actions not applied yet: per (workflow or action type, status), what observe
    # keeps (sum, count per bucket); each is several series (see ran and acted)
    _runs: dict[tuple[str, str], list[float]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _acts: dict[tuple[str, str], list[float]] = field(
        default_factory=dict, compare=False, repr=False
    )
    # when apply_counts last ran (time.monotonic), for apply_counts_due
    _applied_at: list[float] = field(default_factory=lambda: [0.0], compare=False, repr=False)

    def count(self, metric: Any, *labels: str) -> None:
        """Add one to ``metric{labels}`` at the next :meth:`apply_counts`.

        The stream worker applies its counts once per batch: a labelled increment per event
        (lookup, validation, lock) cost more than the rest of a run's bookkeeping.
        """
        key = (metric, labels)
        self._counts[key] = self._counts.get(key, 0) + 1

    def observe(self, metric: Histogram, amount: float, *labels: str) -> None:
        """Observe ``amount`` in ``metric{labels}`` at the next :meth:`apply_counts`: a sum and
        one bucket count kept here (an observation in prometheus_client takes two locks)."""
        _pend(self._observed, (metric, labels), amount)

    def ran(self, workflow_id: str, status: str, seconds: float) -> None:
        """One execution of ``workflow_id``: ``workflow_matches``, ``executions`` and
        ``execution_duration`` at the next :meth:`apply_counts`, gathered as one entry (three
        count/observe calls were a twentieth of a run)."""
        _pend(self._runs, (workflow_id, status), seconds)

    def acted(self, action_type: str, status: str, seconds: float) -> None:
        """One action executed: ``actions`` and ``action_duration``, as :meth:`ran` does."""
        _pend(self._acts, (action_type, status), seconds)

    def apply_counts_due(self) -> None:
        """:meth:`apply_counts`, unless it ran less than :data:`APPLY_INTERVAL_SECONDS` ago.

        The streams call it after each batch; /metrics applies everything before it answers,
        so a scrape always sees every event handled so far. Applying is a few operations per
        series a batch touched (one per workflow that ran): per batch of 500 with 1,000
        workflows, a tenth of the runner's work; per interval, a hundredth at full speed.
        """
        if time.monotonic() - self._applied_at[0] >= APPLY_INTERVAL_SECONDS:
            self.apply_counts()

    def apply_counts(self) -> None:
        """Apply what :meth:`count` and :meth:`observe` gathered since the last call."""
        self._applied_at[0] = time.monotonic()
        counts = list(self._counts.items())
        self._counts.clear()
        cells = self._cells
        for (metric, labels), amount in counts:
            key = (id(metric), labels)
            cell = cells.get(key)
            if cell is None:
                child = self.child(metric, *labels)
                # a counter child's value; anything else (a gauge) goes through its inc()
                cell = cells[key] = child._value if isinstance(metric, Counter) else child
            _add(cell, amount)
        observed = list(self._observed.items())
        self._observed.clear()
        for (histogram, labels), pending in observed:
            self._add_observed(histogram, labels, pending)
        runs = list(self._runs.items())
        self._runs.clear()
        for (workflow_id, status), pending in runs:
            times = sum(pending[1:])
            self._add_count(self.workflow_matches, (workflow_id,), times)
            self._add_count(self.executions, (workflow_id, status), times)
            self._add_observed(self.execution_duration, (workflow_id,), pending)
        acts = list(self._acts.items())
        self._acts.clear()
        for (action_type, status), pending in acts:
            self._add_count(self.actions, (action_type, status), sum(pending[1:]))
            self._add_observed(self.action_duration, (action_type,), pending)

    def _add_count(self, counter: Counter, labels: tuple[str, ...], amount: float) -> None:
        key = (id(counter), labels)
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = self.child(counter, *labels)._value
        _add(cell, amount)

    def _add_observed(
        self, histogram: Histogram, labels: tuple[str, ...], pending: list[float]
    ) -> None:
        key = (id(histogram), labels)
        found = self._cells.get(key)
        if found is None:
            found = self._cells[key] = _histogram_cells(self.child(histogram, *labels))
        total, buckets = found
        _add(total, pending[0])
        for index in range(len(buckets)):
            observations = pending[index + 1]
            if observations:
                _add(buckets[index], observations)

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached: the hot path calls it several times per event
        and prometheus_client validates and locks on every call."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        registry = registry if registry is not None else CollectorRegistry()
        return cls(
            registry=registry,
            events_consumed=Counter(
                "eventrules_events_consumed",
                "Events read from the event topics.",
                ["topic", "type"],
                registry=registry,
            ),
            events_dead_lettered=Counter(
                "eventrules_events_dead_lettered",
                "Records sent to the dead-letter topic.",
                ["reason"],
                registry=registry,
            ),
            workflow_matches=Counter(
                "eventrules_workflow_matches",
                "Workflows whose trigger and conditions matched.",
                ["workflow"],
                registry=registry,
            ),
            executions=Counter(
                "eventrules_executions",
                "Workflow executions by outcome.",
                ["workflow", "status"],
                registry=registry,
            ),
            execution_duration=Histogram(
                "eventrules_execution_duration_seconds",
                "Duration of one workflow execution.",
                ["workflow"],
                buckets=DURATION_BUCKETS,
                registry=registry,
            ),
            actions=Counter(
                "eventrules_actions",
                "Actions executed by type and outcome.",
                ["type", "status"],
                registry=registry,
            ),
            action_duration=Histogram(
                "eventrules_action_duration_seconds",
                "Duration of one action.",
                ["type"],
                buckets=DURATION_BUCKETS,
                registry=registry,
            ),
            webhook_latency=Histogram(
                "eventrules_webhook_latency_seconds",
                "Latency of one webhook attempt.",
                ["outcome"],
                buckets=DURATION_BUCKETS,
                registry=registry,
            ),
            webhook_retries=Counter(
                "eventrules_webhook_retries",
                "Webhook attempts after the first.",
                registry=registry,
            ),
            definitions_loaded=Gauge(
                "eventrules_definitions_loaded",
                "Definitions held in the config table.",
                ["kind", "enabled"],
                registry=registry,
            ),
            config_rejects=Counter(
                "eventrules_config_rejects",
                "Definition messages rejected by validation.",
                ["kind", "reason"],
                registry=registry,
            ),
            config_restores=Counter(
                "eventrules_config_restores",
                "Accepted definitions republished by the config guard after a rejected record.",
                ["kind"],
                registry=registry,
            ),
            consumer_lag=Gauge(
                "eventrules_consumer_lag",
                "Records behind the end of each assigned partition.",
                ["topic", "partition"],
                registry=registry,
            ),
            ready=Gauge(
                "eventrules_ready",
                "1 when the config table has caught up and events flow.",
                registry=registry,
            ),
            rule_evaluations=Counter(
                "eventrules_rule_evaluations",
                "Rule evaluations by rule and outcome.",
                ["rule", "outcome"],
                registry=registry,
            ),
            rule_last_evaluated=Gauge(
                "eventrules_rule_last_evaluated_timestamp_seconds",
                "Unix time of each rule's last evaluation.",
                ["rule"],
                registry=registry,
            ),
            events_unmatched=Counter(
                "eventrules_events_unmatched",
                "Events that matched no workflow.",
                ["topic"],
                registry=registry,
            ),
            action_retries=Counter(
                "eventrules_action_retries",
                "Retry attempts of actions by tier and outcome (success, retrying, failed).",
                ["tier", "outcome"],
                registry=registry,
            ),
            stream_incidents=Counter(
                "eventrules_stream_incidents",
                "What a stream had to do to keep going: isolated (a record failed and was "
                "dead-lettered), condemned, rewound, careful_partition, producer_replaced.",
                ["stream", "kind"],
                registry=registry,
            ),
            stream_stalled=Gauge(
                "eventrules_stream_stalled",
                "1 while a stream has input waiting and made no progress for stall_seconds.",
                ["stream"],
                registry=registry,
            ),
            rule_replies_refused=Counter(
                "eventrules_rule_replies_refused",
                "Rule requests whose reply_to named a topic outside the allowed patterns.",
                registry=registry,
            ),
            http_auth_failures=Counter(
                "eventrules_http_auth_failures",
                "HTTP requests refused: no valid token (unauthenticated) or too small a scope.",
                ["reason"],
                registry=registry,
            ),
            state_decisions=Counter(
                "eventrules_state_decisions",
                "Throttle and dedupe decisions: run, throttled, duplicate, repeat.",
                ["workflow", "decision"],
                registry=registry,
            ),
            state_timers_fired=Counter(
                "eventrules_state_timers_fired",
                "State timers that came due: absence, delay, or an expiry.",
                ["kind"],
                registry=registry,
            ),
            state_restores=Counter(
                "eventrules_state_restored_records",
                "Changelog records read to restore state stores.",
                registry=registry,
            ),
            state_restore_seconds=Histogram(
                "eventrules_state_restore_seconds",
                "Time to restore one partition's state store on assignment.",
                buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
                registry=registry,
            ),
            state_restore_retries=Counter(
                "eventrules_state_restore_retries",
                "Restores (or reads of committed offsets before them) retried because the broker "
                "did not answer: a broker coming back, or away.",
                registry=registry,
            ),
            state_restoring=Gauge(
                "eventrules_state_restoring",
                "State partitions being restored (the worker is not ready meanwhile).",
                registry=registry,
            ),
        )
