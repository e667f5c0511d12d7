"""The workflow definition: the seed's ``workflows`` row plus ``id``, ``version`` and ``kind``.

Priority runs 1-10 and 10 is the highest: it runs first. Ties break by workflow id.
"""

from __future__ import annotations

import functools
import operator
from typing import Annotated, Any, Literal

from croniter import croniter
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from eventrules.conditions import AllOf, AnyOf, Compare, ConditionNode, Not, node_to_data
from eventrules.conditions.parsing import parse_condition
from eventrules.errors import DefinitionError, DefinitionLimitError
from eventrules.models.actions import (
    BUILTIN_ACTIONS,
    ActionRegistry,
    BuiltinAction,
    action_type_name,
)
from eventrules.models.memory import Absence, Dedupe, Throttle

__all__ = ["Workflow", "parse_workflow", "workflow_model"]

DEFINITION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


def _validate_condition(raw: Any) -> ConditionNode | None:
    if raw is None or isinstance(raw, Compare | AllOf | AnyOf | Not):
        return raw
    try:
        return parse_condition(raw)
    except DefinitionError as exc:
        context: dict[str, Any] = {"problems": exc.problems}
        if isinstance(exc, DefinitionLimitError):
            context |= {"limit": exc.limit, "maximum": exc.maximum}
        raise PydanticCustomError("condition", "invalid condition", context) from None


def _serialize_condition(node: ConditionNode | None) -> Any:
    return None if node is None else node_to_data(node)


def _validate_cron(expression: str) -> str:
    # 5 fields, or 6 with seconds last (croniter's order); seconds exist for tests and demos
    if len(expression.split()) not in {5, 6} or not croniter.is_valid(expression):
        raise ValueError(f"not a cron expression: {expression!r} (e.g. '0 9 * * MON')")
    return expression


CronField = Annotated[str, AfterValidator(_validate_cron)]

ConditionField = Annotated[
    ConditionNode | None,
    PlainValidator(_validate_condition),
    PlainSerializer(_serialize_condition),
]


class Workflow(BaseModel):
    """A validated workflow definition. Build one with :func:`parse_workflow`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["workflow"] = Field(
        default="workflow", description="What the document defines (`rule` for rules)."
    )
    id: str = Field(
        pattern=DEFINITION_ID_PATTERN,
        description="Unique among workflows: letters, digits, `_ . : -`, up to 128.",
    )
    version: int = Field(
        default=1, ge=1, description="Grows with every change; `config apply` sets it."
    )
    name: str = Field(min_length=1, description="Human-readable name.")
    description: str = Field(default="", description="What it is for.")
    trigger: str = Field(
        min_length=1,
        description="Event type that triggers it, from the trigger catalog (an absence "
        "workflow's is `absence.after`, and may be left out).",
    )
    conditions: ConditionField = Field(
        default=None,
        description="Condition tree or one-line shorthand (docs/conditions.md); none: always.",
    )
    actions: list[BuiltinAction] = Field(
        min_length=1, description="What to do, in order; each isolated (see the action types)."
    )
    enabled: bool = Field(default=True, description="Disabled workflows never run.")
    priority: int = Field(default=5, ge=1, le=10, description="10 runs first; ties by id.")
    # A cron expression (in the workers' EVENTRULES_TIMEZONE): the workflow runs on its own
    # ticks, see docs/schedules.md. Requires a scheduled.* trigger.
    schedule: CronField | None = Field(
        default=None,
        description="Cron expression (5 fields, or 6 with seconds) in EVENTRULES_TIMEZONE; "
        "needs a `scheduled.*` trigger (docs/schedules.md).",
    )
    # Memory (see models/memory.py and docs/memory.md): at most `limit` runs per key and window,
    # one run per key within a window, or a run when an expected follow-up event never came.
    throttle: Throttle | None = Field(
        default=None,
        description="At most `limit` runs per rendered `key` in any window `per` (docs/memory.md).",
    )
    dedupe: Dedupe | None = Field(
        default=None,
        description="One run per rendered `key` within `within`; later ones are duplicates.",
    )
    absence: Absence | None = Field(
        default=None,
        description="Run with the `after` event when no `expect` event with the same "
        "`match_on` value follows within `within`; `trigger` defaults to `after`.",
    )
    created_by: str = Field(min_length=1, description="Who wrote the definition.")
    # the audit trail: who published this version (set by `eventrules config apply`)
    updated_by: str | None = Field(
        default=None, description="Who published this version (set by `config apply --as`)."
    )
    created_at: AwareDatetime | None = Field(default=None, description="When it was created.")
    updated_at: AwareDatetime | None = Field(
        default=None, description="When this version was published (set by `config apply`)."
    )

    @model_validator(mode="before")
    @classmethod
    def _trigger_from_absence(cls, raw: Any) -> Any:
        # an absence workflow runs on its `after` event: that is its trigger
        if isinstance(raw, dict) and "trigger" not in raw and isinstance(raw.get("absence"), dict):
            after = raw["absence"].get("after")
            if isinstance(after, str):
                return {**raw, "trigger": after}
        return raw

    @model_validator(mode="after")
    def _schedule_needs_a_scheduled_trigger(self) -> Workflow:
        if self.schedule is not None and not self.trigger.startswith("scheduled."):
            raise ValueError(
                f"a workflow with a schedule needs a scheduled.* trigger, not {self.trigger!r}"
            )
        return self

    @model_validator(mode="after")
    def _absence_is_consistent(self) -> Workflow:
        absence = self.absence
        if absence is None:
            return self
        if absence.after != self.trigger:
            raise ValueError(
                f"absence.after ({absence.after!r}) must be the workflow's trigger"
                f" ({self.trigger!r}); leave trigger out to take it from absence.after"
            )
        if absence.expect == absence.after:
            raise ValueError("absence.expect must be another event type than absence.after")
        if self.schedule is not None or self.trigger.startswith("scheduled."):
            raise ValueError("an absence workflow cannot be scheduled: it runs on its timer")
        return self


@functools.cache
def _model_for(action_classes: tuple[type[Any], ...]) -> type[Workflow]:
    if action_classes == BUILTIN_ACTIONS:
        return Workflow
    union = Annotated[  # type: ignore[valid-type]
        functools.reduce(operator.or_, action_classes), Field(discriminator="type")
    ]
    model: type[Workflow] = create_model(
        "Workflow",
        __base__=Workflow,
        __module__=__name__,
        actions=(list[union], Field(min_length=1)),  # type: ignore[valid-type]
    )
    return model


def workflow_model(registry: ActionRegistry | None = None) -> type[Workflow]:
    """The Workflow model whose actions accept every type in ``registry``."""
    return _model_for(registry.classes() if registry is not None else BUILTIN_ACTIONS)


def parse_workflow(raw: Any, registry: ActionRegistry | None = None) -> Workflow:
    """Validate a mapping into a Workflow; raises DefinitionError naming each field path."""
    if not isinstance(raw, dict):
        raise DefinitionError(
            "invalid workflow", problems=[("", f"expected a mapping, got {type(raw).__name__}")]
        )
    definition_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    try:
        return workflow_model(registry).model_validate(raw)
    except ValidationError as exc:
        classes = registry.classes() if registry is not None else BUILTIN_ACTIONS
        names = {action_type_name(action_class) for action_class in classes}
        label = f"invalid workflow {definition_id!r}" if definition_id else "invalid workflow"
        raise definition_error(label, definition_id, exc, union_tags=names) from None


def definition_error(
    label: str, definition_id: str | None, exc: ValidationError, *, union_tags: set[str]
) -> DefinitionError:
    """The DefinitionError for a failed validation: a DefinitionLimitError when a condition
    went past a limit, so the rejection says so."""
    problems = problems_from(exc, union_tags)
    for error in exc.errors(include_url=False):
        context = error.get("ctx") or {}
        if "limit" in context:
            return DefinitionLimitError(
                label,
                limit=context["limit"],
                maximum=context["maximum"],
                definition_id=definition_id,
                problems=problems,
            )
    return DefinitionError(label, definition_id=definition_id, problems=problems)


def problems_from(exc: ValidationError, union_tags: set[str]) -> list[tuple[str, str]]:
    """``(field path, reason)`` pairs from a pydantic error, without union tags in the paths."""
    problems: list[tuple[str, str]] = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        kept = [
            part
            for index, part in enumerate(loc)
            if not (index and isinstance(loc[index - 1], int) and part in union_tags)
        ]
        path = ".".join(str(part) for part in kept)
        nested = (error.get("ctx") or {}).get("problems")
        if error["type"] == "condition" and nested:
            problems.extend((f"{path}.{sub}" if sub else path, reason) for sub, reason in nested)
        else:
            problems.append((path, error["msg"]))
    return problems
