"""Batched metrics: counts and histogram observations applied per batch give the same series
as one call each."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from eventrules import metrics as metrics_module
from eventrules.metrics import APPLY_INTERVAL_SECONDS, DURATION_BUCKETS, Metrics


def _series(metrics: Metrics, name: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for metric in metrics.registry.collect()
        if metric.name == name
        for sample in metric.samples
        if not sample.name.endswith("_created")
    }


def test_batched_observations_equal_one_observe_each() -> None:
    # every bucket edge, values between them, zero and past the last bucket
    values = [0.0, *DURATION_BUCKETS, *(b * 0.7 for b in DURATION_BUCKETS), 31.0, 1e9]
    batched, direct = Metrics.create(CollectorRegistry()), Metrics.create(CollectorRegistry())
    for value in values:
        batched.observe(batched.execution_duration, value, "wf-1")
        direct.execution_duration.labels("wf-1").observe(value)
    assert _series(batched, "eventrules_execution_duration_seconds") == {}  # not applied yet
    batched.apply_counts()
    assert _series(batched, "eventrules_execution_duration_seconds") == _series(
        direct, "eventrules_execution_duration_seconds"
    )
    batched.apply_counts()  # applied once: nothing is added twice
    assert _series(batched, "eventrules_execution_duration_seconds") == _series(
        direct, "eventrules_execution_duration_seconds"
    )


def test_counts_wait_for_apply() -> None:
    metrics = Metrics.create(CollectorRegistry())
    for _ in range(3):
        metrics.count(metrics.executions, "wf-1", "success")
    value = {"workflow": "wf-1", "status": "success"}
    assert metrics.registry.get_sample_value("eventrules_executions_total", value) is None
    metrics.apply_counts()
    assert metrics.registry.get_sample_value("eventrules_executions_total", value) == 3


def test_a_run_and_an_action_count_as_their_series_one_call_each_would() -> None:
    values = [0.0, 0.004, *DURATION_BUCKETS, 31.0]
    gathered, direct = Metrics.create(CollectorRegistry()), Metrics.create(CollectorRegistry())
    for n, value in enumerate(values):
        status = "success" if n % 3 else "failed"
        gathered.ran("wf-1", status, value)
        gathered.acted("send_email", status, value / 2)
        direct.workflow_matches.labels("wf-1").inc()
        direct.executions.labels("wf-1", status).inc()
        direct.execution_duration.labels("wf-1").observe(value)
        direct.actions.labels("send_email", status).inc()
        direct.action_duration.labels("send_email").observe(value / 2)
    names = (
        "eventrules_workflow_matches",
        "eventrules_executions",
        "eventrules_execution_duration_seconds",
        "eventrules_actions",
        "eventrules_action_duration_seconds",
    )
    assert all(_series(gathered, name) == {} for name in names)  # not applied yet
    gathered.apply_counts()
    gathered.apply_counts()  # applied once: nothing is added twice
    for name in names:
        # sums added in another order (per status) may differ in the last bit
        assert _series(gathered, name) == pytest.approx(_series(direct, name)), name
        assert _series(direct, name)


def test_apply_counts_due_waits_out_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(metrics_module.time, "monotonic", lambda: now[0])
    metrics = Metrics.create(CollectorRegistry())
    metrics.count(metrics.events_unmatched, "events.orders")
    metrics.apply_counts_due()  # never applied yet: due
    assert _series(metrics, "eventrules_events_unmatched")
    metrics.count(metrics.events_unmatched, "events.orders")
    now[0] += APPLY_INTERVAL_SECONDS / 2
    metrics.apply_counts_due()
    assert list(_series(metrics, "eventrules_events_unmatched").values()) == [1.0]
    now[0] += APPLY_INTERVAL_SECONDS / 2
    metrics.apply_counts_due()
    assert list(_series(metrics, "eventrules_events_unmatched").values()) == [2.0]
