"""The rule definition: the seed's ``rules`` row plus ``id``, ``version`` and ``kind: rule``.

Execution counts and last-executed times are runtime statistics, not configuration: a
definition carrying them is rejected, and the runtime counts the rules each decision lists.

Priority: higher runs first (as for workflows); rules allow 1-1000 because a rule set is
larger than a trigger's workflows and first-hit policies need room to order it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from eventrules.conditions.tree import check_field
from eventrules.errors import DefinitionError
from eventrules.models.workflows import DEFINITION_ID_PATTERN, ConditionField, definition_error

__all__ = [
    "ACTIONS_BY_RULE_TYPE",
    "MAX_MONEY",
    "RULE_TYPES",
    "AddToSegment",
    "Block",
    "FixedDiscount",
    "PercentageDiscount",
    "Route",
    "Rule",
    "RuleAction",
    "RuleType",
    "SetField",
    "TagFacts",
    "parse_rule",
]

RuleType = Literal["pricing", "validation", "routing", "inventory", "user_segment", "automation"]
RULE_TYPES: Final[tuple[RuleType, ...]] = (
    "pricing",
    "validation",
    "routing",
    "inventory",
    "user_segment",
    "automation",
)
# the seed calls validation rules "order_validation"
_RULE_TYPE_ALIASES: Final = {"order_validation": "validation"}


# Prices and amounts above this are refused: 10^15 with the cents still fits the 28 digits
# of decimal arithmetic, so no discount computation can overflow or lose its cents.
MAX_MONEY: Final = Decimal(10) ** 15


def _json_number(value: Decimal) -> int | float:
    # definitions are JSON for humans: 15 reads better than "15"; floats round-trip via str
    return int(value) if value == value.to_integral_value() else float(value)


Amount = Annotated[Decimal, PlainSerializer(_json_number, when_used="json")]


class _RuleActionBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PercentageDiscount(_RuleActionBase):
    """Take ``percent`` % off the price (of the running price when discounts stack)."""

    type: Literal["percentage_discount"]
    percent: Amount = Field(gt=0, le=100, allow_inf_nan=False)


class FixedDiscount(_RuleActionBase):
    """Take ``amount`` off the price; a price never goes below zero."""

    type: Literal["fixed_discount"]
    amount: Amount = Field(gt=0, le=MAX_MONEY, allow_inf_nan=False)


class Block(_RuleActionBase):
    """Refuse the request (an order, a checkout) with a reason shown to the caller."""

    type: Literal["block"]
    reason: str = Field(min_length=1)


class Route(_RuleActionBase):
    """Send the request to ``destination`` (a queue, a team, a warehouse: the caller decides)."""

    type: Literal["route"]
    destination: str = Field(min_length=1)


class AddToSegment(_RuleActionBase):
    type: Literal["add_to_segment"]
    segment: str = Field(min_length=1)


class TagFacts(_RuleActionBase):
    """Attach a tag to the decision (e.g. the user or order the facts describe)."""

    type: Literal["add_tag"]
    tag: str = Field(min_length=1)


class SetField(_RuleActionBase):
    """Ask the caller to set ``field`` (a dotted path) to ``value``; the highest priority wins."""

    type: Literal["set_field"]
    field: str
    value: JsonValue

    @field_validator("field")
    @classmethod
    def _dotted_path(cls, value: str) -> str:
        return check_field(value)


RuleAction = Annotated[
    PercentageDiscount | FixedDiscount | Block | Route | AddToSegment | TagFacts | SetField,
    Field(discriminator="type"),
]

_DISCOUNTS: Final = frozenset({"percentage_discount", "fixed_discount"})
_COMMON: Final = frozenset({"add_tag", "set_field"})
# discounts only make sense where a price outcome exists; everything else may tag / set fields
ACTIONS_BY_RULE_TYPE: Final[dict[str, frozenset[str]]] = {
    "pricing": _DISCOUNTS | _COMMON,
    "validation": frozenset({"block"}) | _COMMON,
    "routing": frozenset({"route"}) | _COMMON,
    "inventory": frozenset({"block", "route"}) | _COMMON,
    "user_segment": frozenset({"add_to_segment"}) | _COMMON,
    "automation": frozenset({"block", "route", "add_to_segment"}) | _COMMON,
}
# the action a rule of this type must carry, so first-hit and best policies have an outcome
_REQUIRED_ACTIONS: Final[dict[str, frozenset[str]]] = {
    "pricing": _DISCOUNTS,
    "routing": frozenset({"route"}),
}
_RUNTIME_STATISTICS: Final = ("execution_count", "executionCount", "last_executed", "lastExecuted")


class Rule(BaseModel):
    """A validated rule definition. Build one with :func:`parse_rule`.

    ``valid_from`` (inclusive) and ``valid_until`` (exclusive) must carry a timezone; numbers
    are epoch seconds or milliseconds, as pydantic reads them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["rule"] = Field(default="rule", description="What the document defines.")
    id: str = Field(
        pattern=DEFINITION_ID_PATTERN,
        description="Unique among rules: letters, digits, `_ . : -`, up to 128.",
    )
    version: int = Field(
        default=1, ge=1, description="Grows with every change; `config apply` sets it."
    )
    name: str = Field(min_length=1, description="Human-readable name.")
    description: str = Field(default="", description="What it is for.")
    rule_type: RuleType = Field(
        description="Decides the allowed actions and the decision policy (docs/rules.md)."
    )
    conditions: ConditionField = Field(
        default=None,
        description="Condition tree or one-line shorthand over the facts; none: always.",
    )
    actions: list[RuleAction] = Field(
        min_length=1, description="The decision's parts (see the rule action types)."
    )
    priority: int = Field(
        default=5, ge=1, le=1000, description="Higher is evaluated (and wins) first."
    )
    enabled: bool = Field(default=True, description="Disabled rules never match.")
    valid_from: AwareDatetime | None = Field(
        default=None, description="First moment the rule applies (inclusive), with offset."
    )
    valid_until: AwareDatetime | None = Field(
        default=None, description="Moment it stops applying (exclusive), with offset."
    )
    created_by: str = Field(min_length=1, description="Who wrote the definition.")
    updated_by: str | None = Field(
        default=None, description="Who published this version (set by `config apply --as`)."
    )
    created_at: AwareDatetime | None = Field(default=None, description="When it was created.")
    updated_at: AwareDatetime | None = Field(
        default=None, description="When this version was published (set by `config apply`)."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_runtime_statistics(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            for key in _RUNTIME_STATISTICS:
                if key in raw:
                    raise ValueError(
                        f"{key} is a runtime statistic, not configuration: the runtime counts "
                        "the rules each decision lists; remove it from the definition"
                    )
        return raw

    @field_validator("rule_type", mode="before")
    @classmethod
    def _rule_type_alias(cls, value: Any) -> Any:
        return _RULE_TYPE_ALIASES.get(value, value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_from >= self.valid_until
        ):
            raise ValueError("valid_from must be earlier than valid_until")
        allowed = ACTIONS_BY_RULE_TYPE[self.rule_type]
        for action in self.actions:
            if action.type not in allowed:
                raise ValueError(
                    f"a {self.rule_type} rule cannot use action {action.type!r}; "
                    f"allowed: {', '.join(sorted(allowed))}"
                )
        required = _REQUIRED_ACTIONS.get(self.rule_type)
        if required and not any(action.type in required for action in self.actions):
            raise ValueError(
                f"a {self.rule_type} rule needs one of these actions: {', '.join(sorted(required))}"
            )
        return self

    def window_miss(self, at: datetime) -> str | None:
        """Why the rule is outside its validity window at ``at``, or None when inside it."""
        if self.valid_from is not None and at < self.valid_from:
            return f"not valid before {self.valid_from.isoformat()}"
        if self.valid_until is not None and at >= self.valid_until:
            return f"expired at {self.valid_until.isoformat()}"
        return None


_ACTION_TAGS: Final = frozenset().union(*ACTIONS_BY_RULE_TYPE.values())


def parse_rule(raw: Any) -> Rule:
    """Validate a mapping into a Rule; raises DefinitionError naming each field path."""
    if not isinstance(raw, dict):
        raise DefinitionError(
            "invalid rule", problems=[("", f"expected a mapping, got {type(raw).__name__}")]
        )
    definition_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    try:
        return Rule.model_validate(raw)
    except ValidationError as exc:
        label = f"invalid rule {definition_id!r}" if definition_id else "invalid rule"
        raise definition_error(label, definition_id, exc, union_tags=set(_ACTION_TAGS)) from None
