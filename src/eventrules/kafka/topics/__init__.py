"""Declared topics: the files under ``topics/`` and applying them to a cluster."""

from eventrules.kafka.topics.admin import (
    ApplyReport,
    Drift,
    TopicState,
    apply_topics,
    describe_topics,
)
from eventrules.kafka.topics.spec import TopicSpec, load_topic_specs

__all__ = [
    "ApplyReport",
    "Drift",
    "TopicSpec",
    "TopicState",
    "apply_topics",
    "describe_topics",
    "load_topic_specs",
]
