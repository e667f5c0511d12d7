"""Per-rule evaluation counts, scraped from the workers' /metrics (the runtime counts the rules
each decision lists; definitions carry no statistics)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from eventrules.errors import OperationError

__all__ = ["scrape_rule_stats"]


def _scrape(url: str, timeout: float) -> list[tuple[str, dict[str, str], float]]:
    """``(name, labels, value)`` samples of one worker's /metrics."""
    try:
        response = httpx.get(url.rstrip("/") + "/metrics", timeout=timeout, trust_env=False)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise OperationError(f"cannot scrape {url}: {exc}") from None
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def scrape_rule_stats(urls: Iterable[str], *, timeout: float = 10.0) -> dict[str, dict[str, Any]]:
    """Rule id -> ``applied``, ``matched_not_applied`` and ``last_executed`` (ISO-8601 or None),
    summed over the workers at ``urls``; OperationError when one cannot be scraped."""
    counts: dict[str, dict[str, float]] = {}
    last: dict[str, float] = {}
    for url in urls:
        for name, labels, value in _scrape(url, timeout):
            if name == "eventrules_rule_evaluations_total":
                per_rule = counts.setdefault(labels["rule"], {})
                per_rule[labels["outcome"]] = per_rule.get(labels["outcome"], 0) + value
            elif name == "eventrules_rule_last_evaluated_timestamp_seconds":
                last[labels["rule"]] = max(last.get(labels["rule"], 0.0), value)
    return {
        rule: {
            "applied": int(outcomes.get("applied", 0)),
            "matched_not_applied": int(outcomes.get("matched", 0)),
            "last_executed": datetime.fromtimestamp(last[rule], UTC).isoformat()
            if rule in last
            else None,
        }
        for rule, outcomes in sorted(counts.items())
    }
