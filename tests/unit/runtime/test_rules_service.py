"""Where rule replies may go."""

from __future__ import annotations

from eventrules.runtime.rules_service import reply_topic_allowed
from eventrules.settings import Settings

PATTERNS = Settings(topic_prefix="p.").reply_topic_patterns()


def test_replies_go_to_the_results_topic_and_the_replies_family_only() -> None:
    assert PATTERNS == ["p.rules.results", "p.rules.replies.*"]
    assert reply_topic_allowed("p.rules.results", PATTERNS)
    assert reply_topic_allowed("p.rules.replies.checkout", PATTERNS)
    for refused in ("p.config", "p.actions.email", "p.events.orders", "p.dlq", "rules.results"):
        assert not reply_topic_allowed(refused, PATTERNS), refused


def test_illegal_topic_names_are_refused_whatever_the_patterns() -> None:
    assert not reply_topic_allowed("p.rules.replies.a b", PATTERNS)
    assert not reply_topic_allowed("p.rules.replies." + "x" * 300, PATTERNS)
    assert not reply_topic_allowed("anything/else", ["*"])
    assert reply_topic_allowed("team.replies", ["team.*"])
