"""Action types: the seed's eight built-ins, each with typed parameters, and the registry.

A deployment adds its own action type by publishing an :class:`ActionBase` subclass with a
``type: Literal["my_type"]`` field under the ``eventrules.actions`` entry-point group.

String parameters may hold ``{{ placeholders }}`` rendered from the event, except the fields a
class lists in ``untemplated`` (names and settings that event data must never choose).
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, JsonValue, field_validator

from eventrules.errors import ConfigurationError
from eventrules.models.memory import Duration

__all__ = [
    "ACTION_ENTRY_POINT_GROUP",
    "BUILTIN_ACTIONS",
    "ActionBase",
    "ActionRegistry",
    "AddTag",
    "BuiltinAction",
    "CallWebhook",
    "CreateTask",
    "SendEmail",
    "SendNotification",
    "SendSms",
    "SuspendUser",
    "UpdateField",
]

ACTION_ENTRY_POINT_GROUP = "eventrules.actions"


class ActionBase(BaseModel):
    """Base of every action type; subclasses narrow ``type`` to a one-value Literal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    delay: Duration | None = Field(
        default=None,
        description="Run this action that long after the event, from a durable timer "
        "(docs/memory.md); none: at once.",
    )
    untemplated: ClassVar[frozenset[str]] = frozenset({"type"})


class SendEmail(ActionBase):
    """An email for the mail service (`actions.email`)."""

    type: Literal["send_email"]
    to: str = Field(min_length=1, description="Recipient address.")
    cc: list[str] = Field(default_factory=list, description="Copy recipients.")
    subject: str = Field(min_length=1, description="Subject line.")
    # the seed calls the body "template"
    body: str = Field(
        validation_alias=AliasChoices("body", "template"),
        description="The message text.",
    )


class SendSms(ActionBase):
    """A text message for the SMS service (`actions.sms`)."""

    type: Literal["send_sms"]
    to: str = Field(min_length=1, description="Phone number (E.164, e.g. +4915112345678).")
    message: str = Field(
        min_length=1,
        validation_alias=AliasChoices("message", "template"),
        description="The text.",
    )


class UpdateField(ActionBase):
    """Set one field of an entity, for the service that owns it (`actions.entity-commands`)."""

    type: Literal["update_field"]
    entity: str = Field(min_length=1, description="Entity kind, e.g. order, product, user.")
    entity_id: str = Field(min_length=1, description="The entity's id.")
    field: str = Field(min_length=1, description="The field to set (dotted for nested).")
    value: JsonValue = Field(description="The new value (any JSON; strings are templated).")
    untemplated: ClassVar[frozenset[str]] = frozenset({"type", "entity", "field"})


class CreateTask(ActionBase):
    """A task for the task service (`actions.tasks`)."""

    type: Literal["create_task"]
    title: str = Field(min_length=1, description="Task title.")
    description: str = Field(default="", description="Task details.")
    assignee: str | None = Field(default=None, description="User or team to assign it to.")
    due_in_hours: float | None = Field(
        default=None, gt=0, description="Due this many hours after the run."
    )


class CallWebhook(ActionBase):
    """An HTTP call made by the worker itself (retries, signatures, SSRF guard: see the README).

    ``secret`` names a secret configured on the worker (used to sign); never the secret."""

    type: Literal["call_webhook"]
    url: str = Field(
        min_length=1,
        description="http(s) URL; the scheme and host are literal, path and query may be "
        "templated.",
    )
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field(
        default="POST", description="HTTP method (any case)."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra request headers; Host, Content-Length, Idempotency-Key and the "
        "webhook-* signature headers are set by the worker and refused here.",
    )
    body: JsonValue = Field(
        default=None, description="Sent as JSON; a string is sent as text/plain; none: no body."
    )
    timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="Deadline of each attempt."
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Attempts in all, retried on connection errors, timeouts, 429 and 5xx.",
    )
    secret: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$",
        description="Name of a signing secret in EVENTRULES_WEBHOOK_SECRETS: the request then "
        "carries Standard Webhooks signature headers.",
    )
    untemplated: ClassVar[frozenset[str]] = frozenset({"type", "method", "secret"})

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        # the scheme and host stay literal so event data cannot point the call elsewhere
        if not value.startswith(("http://", "https://")) or "{" in value.split("/")[2]:
            raise ValueError("url must start with http:// or https:// and a literal host")
        return value


class AddTag(ActionBase):
    """Tag a user, for the user service (`actions.entity-commands`)."""

    type: Literal["add_tag"]
    user_id: str = Field(min_length=1, description="The user's id.")
    tag: str = Field(min_length=1, description="The tag, e.g. VIP.")


class SuspendUser(ActionBase):
    """Suspend a user account, for the user service (`actions.entity-commands`)."""

    type: Literal["suspend_user"]
    user_id: str = Field(min_length=1, description="The user's id.")
    reason: str = Field(min_length=1, description="Why, for the audit trail.")


class SendNotification(ActionBase):
    """An in-app notification, for the notification service (`actions.notifications`)."""

    type: Literal["send_notification"]
    user_id: str = Field(min_length=1, description="The recipient's id.")
    title: str = Field(min_length=1, description="Headline.")
    message: str = Field(min_length=1, description="The text.")
    link: str | None = Field(default=None, description="Where the notification leads.")


BuiltinAction = typing.Annotated[
    SendEmail
    | SendSms
    | UpdateField
    | CreateTask
    | CallWebhook
    | AddTag
    | SuspendUser
    | SendNotification,
    Field(discriminator="type"),
]

BUILTIN_ACTIONS: tuple[type[ActionBase], ...] = (
    SendEmail,
    SendSms,
    UpdateField,
    CreateTask,
    CallWebhook,
    AddTag,
    SuspendUser,
    SendNotification,
)


def action_type_name(action_class: type[ActionBase]) -> str:
    """The ``type`` value an action class declares through its one-value Literal."""
    annotation = action_class.model_fields["type"].annotation
    values = typing.get_args(annotation) if typing.get_origin(annotation) is Literal else ()
    if len(values) != 1 or not isinstance(values[0], str):
        raise ConfigurationError(
            f"action class {action_class.__qualname__} must declare type: Literal['<name>']"
        )
    return values[0]


class ActionRegistry:
    """The action types definitions may use: the built-ins plus any registered extras."""

    def __init__(self, action_classes: Iterable[type[ActionBase]] = BUILTIN_ACTIONS) -> None:
        self._classes: dict[str, type[ActionBase]] = {}
        for action_class in action_classes:
            self.register(action_class)

    @classmethod
    def from_entry_points(cls, group: str = ACTION_ENTRY_POINT_GROUP) -> ActionRegistry:
        """Built-ins plus every class published under the entry-point ``group``."""
        registry = cls()
        for entry_point in entry_points(group=group):
            loaded = entry_point.load()
            if not (isinstance(loaded, type) and issubclass(loaded, ActionBase)):
                raise ConfigurationError(
                    f"entry point {entry_point.name!r} in {group} is not an ActionBase subclass"
                )
            registry.register(loaded)
        return registry

    def register(self, action_class: type[ActionBase]) -> type[ActionBase]:
        name = action_type_name(action_class)
        existing = self._classes.get(name)
        if existing is not None and existing is not action_class:
            raise ConfigurationError(f"action type {name!r} is already registered")
        self._classes[name] = action_class
        return action_class

    def names(self) -> list[str]:
        return sorted(self._classes)

    def classes(self) -> tuple[type[ActionBase], ...]:
        return tuple(self._classes.values())

    def __contains__(self, name: object) -> bool:
        return name in self._classes
