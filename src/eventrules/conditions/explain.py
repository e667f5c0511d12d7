"""The answer to "why did (or didn't) this condition match?": one node per condition."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventrules.conditions.values import MISSING

__all__ = ["ConditionTrace"]


@dataclass(frozen=True, slots=True)
class ConditionTrace:
    """Outcome of one node. ``kind`` is ``compare``, ``all``, ``any`` or ``not``.

    Comparisons carry the field, operator, the definition's value (``expected``) and the value
    seen (``actual``, :data:`MISSING` when absent); groups carry their children. Every child is
    evaluated, so the trace shows all failing conditions, not just the first.
    """

    kind: str
    outcome: bool
    reason: str
    text: str
    children: tuple[ConditionTrace, ...] = ()
    field: str | None = None
    operator: str | None = None
    expected: Any = None
    actual: Any = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form; a missing actual value is reported as ``"missing": true``."""
        data: dict[str, Any] = {
            "kind": self.kind,
            "outcome": self.outcome,
            "reason": self.reason,
            "text": self.text,
        }
        if self.kind == "compare":
            data.update(field=self.field, operator=self.operator, expected=self.expected)
            if self.actual is MISSING:
                data["missing"] = True
            else:
                data["actual"] = self.actual
        else:
            data["children"] = [child.to_dict() for child in self.children]
        return data

    def failing(self) -> list[ConditionTrace]:
        """The comparisons that made this node false (empty when it is true)."""
        if self.outcome:
            return []
        if self.kind == "compare":
            return [self]
        if self.kind == "not":
            # the negated child matched, which is what made this node false
            return [self.children[0]]
        return [leaf for child in self.children for leaf in child.failing()]
