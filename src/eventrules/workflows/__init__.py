"""The workflow engine, pure: definitions compiled once, indexed per trigger, planned per event.

Imports nothing from Kafka, HTTP or the CLI (see ARCHITECTURE.md).
"""

from eventrules.workflows.catalog import Trigger, TriggerCatalog
from eventrules.workflows.compiled import CompiledWorkflow, compile_workflow
from eventrules.workflows.engine import Engine, UpsertOutcome, event_facts, template_context
from eventrules.workflows.plan import Plan, PlannedWorkflow, RenderedAction, WorkflowTrace

__all__ = [
    "CompiledWorkflow",
    "Engine",
    "Plan",
    "PlannedWorkflow",
    "RenderedAction",
    "Trigger",
    "TriggerCatalog",
    "UpsertOutcome",
    "WorkflowTrace",
    "compile_workflow",
    "event_facts",
    "template_context",
]
