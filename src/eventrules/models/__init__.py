"""Definitions and the event shape the pure core works on."""

from eventrules.models.actions import (
    ACTION_ENTRY_POINT_GROUP,
    BUILTIN_ACTIONS,
    ActionBase,
    ActionRegistry,
    AddTag,
    BuiltinAction,
    CallWebhook,
    CreateTask,
    SendEmail,
    SendNotification,
    SendSms,
    SuspendUser,
    UpdateField,
)
from eventrules.models.events import Event
from eventrules.models.memory import Absence, Dedupe, Duration, Throttle, parse_duration
from eventrules.models.workflows import Workflow, parse_workflow, workflow_model

__all__ = [
    "ACTION_ENTRY_POINT_GROUP",
    "BUILTIN_ACTIONS",
    "Absence",
    "ActionBase",
    "ActionRegistry",
    "AddTag",
    "BuiltinAction",
    "CallWebhook",
    "CreateTask",
    "Dedupe",
    "Duration",
    "Event",
    "SendEmail",
    "SendNotification",
    "SendSms",
    "SuspendUser",
    "Throttle",
    "UpdateField",
    "Workflow",
    "parse_duration",
    "parse_workflow",
    "workflow_model",
]
