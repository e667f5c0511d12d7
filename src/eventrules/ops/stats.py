"""Workflow statistics as the stats keepers publish them (the compacted workflow-stats topic)."""

from __future__ import annotations

from typing import Any

from eventrules.runtime.stats import read_stats
from eventrules.settings import Settings

__all__ = ["read_workflow_stats"]


def read_workflow_stats(settings: Settings) -> dict[str, dict[str, Any]]:
    """Run count, last run, outcome counts and average duration per workflow id."""
    return read_stats(settings.kafka_client_config(), settings.topic("workflow-stats"))
