"""Builders for the rules tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from eventrules import Rule, parse_rule

AT = datetime(2026, 1, 10, 14, 30, tzinfo=UTC)  # a Saturday


def rule(rule_id: str = "r", **fields: Any) -> Rule:
    raw: dict[str, Any] = {
        "kind": "rule",
        "id": rule_id,
        "name": rule_id,
        "rule_type": "pricing",
        "created_by": "tests",
        "actions": [{"type": "percentage_discount", "percent": 10}],
    }
    raw.update(fields)
    return parse_rule(raw)
