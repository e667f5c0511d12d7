"""What the rules engine answers: the policies it can apply and the decision it returns.

Policies (``POLICIES`` lists which a rule type accepts, the first being its default):

======== ===============================================================================
first    only the first matching rule in priority order applies; evaluation stops there
collect  every matching rule applies, in priority order
stack    pricing: every matching rule's discounts apply in priority order, each on the
         running price
best     pricing: only the matching rule whose discounts give the lowest price applies
         (ties: priority order)
======== ===============================================================================

Objects built per evaluation (Decision, PriceOutcome, Discount, BlockReason, WindowMiss) are
not frozen dataclasses because constructing a frozen one costs several times more, a large
part of an evaluation; treat them as read-only. MatchedRule and AppliedAction are shared by
every decision of a rule version, and frozen.

Money is :class:`~decimal.Decimal`, rounded to the engine's ``money_places`` (2: cents) with
ROUND_HALF_UP at every discount, so the listed discounts add up to exactly original - final.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal

from pydantic import JsonValue

from eventrules.rules.models import RuleAction, RuleType

__all__ = [
    "DEFAULT_POLICIES",
    "POLICIES",
    "AppliedAction",
    "BlockReason",
    "Decision",
    "Discount",
    "MatchedRule",
    "Policy",
    "PriceOutcome",
    "WindowMiss",
]

Policy = Literal["first", "collect", "stack", "best"]

POLICIES: Final[dict[str, tuple[Policy, ...]]] = {
    # best by default: stacking every offer by accident is the costly surprise
    "pricing": ("best", "stack", "first"),
    # every reason is returned, so there is nothing for another policy to choose
    "validation": ("collect",),
    "routing": ("first", "collect"),
    "inventory": ("collect", "first"),
    "user_segment": ("collect", "first"),
    "automation": ("collect", "first"),
}
DEFAULT_POLICIES: Final[dict[str, Policy]] = {kind: names[0] for kind, names in POLICIES.items()}


@dataclass(frozen=True, slots=True)
class MatchedRule:
    """A rule whose conditions held; ``applied`` is false when the policy passed it over."""

    rule_id: str
    version: int
    priority: int
    applied: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "version": self.version,
            "priority": self.priority,
            "applied": self.applied,
        }


@dataclass(slots=True)
class WindowMiss:
    """An enabled rule of the type that did not apply because of its validity window."""

    rule_id: str
    version: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "version": self.version, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class AppliedAction:
    rule_id: str
    version: int
    action: RuleAction

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "version": self.version,
            **self.action.model_dump(mode="json"),
        }


@dataclass(slots=True)
class Discount:
    """One discount as applied: how much it took off and the price after it."""

    rule_id: str
    version: int
    type: str
    amount: Decimal
    price_after: Decimal

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "version": self.version,
            "type": self.type,
            "amount": str(self.amount),
            "price_after": str(self.price_after),
        }


@dataclass(slots=True)
class PriceOutcome:
    price_field: str
    original: Decimal
    final: Decimal
    discounts: tuple[Discount, ...]

    @property
    def total_discount(self) -> Decimal:
        return self.original - self.final

    def to_dict(self) -> dict[str, Any]:
        # decimal strings: a float would bring back the rounding the engine avoided
        return {
            "price_field": self.price_field,
            "original": str(self.original),
            "final": str(self.final),
            "total_discount": str(self.total_discount),
            "discounts": [discount.to_dict() for discount in self.discounts],
        }


@dataclass(slots=True)
class BlockReason:
    rule_id: str
    version: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "version": self.version, "reason": self.reason}


@dataclass(slots=True)
class Decision:
    """The answer for one request. Every field is filled for every rule type, so consumers
    read one shape: a routing decision simply has no price and no blocks."""

    rule_type: RuleType
    policy: Policy
    evaluated_at: datetime
    matched: tuple[MatchedRule, ...]
    outside_window: tuple[WindowMiss, ...] = ()
    actions: tuple[AppliedAction, ...] = ()
    price: PriceOutcome | None = None
    blocks: tuple[BlockReason, ...] = ()
    destinations: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    fields: dict[str, JsonValue] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        """False when an applied rule blocks the request."""
        return not self.blocks

    @property
    def destination(self) -> str | None:
        return self.destinations[0] if self.destinations else None

    def matched_ids(self) -> list[str]:
        return [matched.rule_id for matched in self.matched]

    def applied_ids(self) -> list[str]:
        return [matched.rule_id for matched in self.matched if matched.applied]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (no Decimal, no datetime); the shape docs/rules.md documents."""
        return {
            "rule_type": self.rule_type,
            "policy": self.policy,
            "evaluated_at": self.evaluated_at.isoformat(),
            "matched": [matched.to_dict() for matched in self.matched],
            "outside_window": [miss.to_dict() for miss in self.outside_window],
            "actions": [applied.to_dict() for applied in self.actions],
            "outcome": {
                "allowed": self.allowed,
                "reasons": [block.to_dict() for block in self.blocks],
                "price": self.price.to_dict() if self.price is not None else None,
                "destination": self.destination,
                "destinations": list(self.destinations),
                "segments": list(self.segments),
                "tags": list(self.tags),
                "fields": dict(self.fields),
            },
        }
