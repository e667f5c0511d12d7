"""The declared topics of a deployment: loaded with its prefix, applied, compared."""

from __future__ import annotations

from pathlib import Path

from eventrules.kafka.topics import (
    ApplyReport,
    TopicSpec,
    TopicState,
    apply_topics,
    describe_topics,
    load_topic_specs,
)
from eventrules.settings import Settings

__all__ = ["ApplyReport", "TopicSpec", "TopicState", "apply_declared", "declared", "describe"]


def declared(
    settings: Settings, folder: Path | None = None, replication_factor: int | None = None
) -> list[TopicSpec]:
    """The declared topics (``folder`` or the settings' topics dir) with the deployment prefix."""
    return load_topic_specs(
        folder or settings.resolved_topics_dir(),
        prefix=settings.topic_prefix,
        replication_factor=replication_factor,
    )


def apply_declared(settings: Settings, specs: list[TopicSpec], *, fix: bool) -> ApplyReport:
    return apply_topics(settings.kafka_client_config(), specs, fix=fix)


def describe(settings: Settings, specs: list[TopicSpec]) -> list[TopicState]:
    return describe_topics(settings.kafka_client_config(), specs)
