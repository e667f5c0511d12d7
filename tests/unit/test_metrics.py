"""Batched metrics: counts and histogram observations applied per batch give the same series
as one call each."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from eventrules.metrics import DURATION_BUCKETS, Metrics


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
