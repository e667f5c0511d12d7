"""eventrules: a Kafka-native workflow automation and business-rules engine.

The names below load on first use (PEP 562): a process that needs one corner of the package
(the stats keeper, the CLI's quick commands) does not pay for importing all of it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from eventrules.native import install_guard as _install_guard

# Before any submodule loads: compiled modules run only while they match their sources.
_install_guard()

if TYPE_CHECKING:
    from eventrules.conditions import (
        CompiledCondition,
        ConditionTrace,
        Facts,
        compile_condition,
        parse_condition,
    )
    from eventrules.definitions.files import (
        load_rules,
        load_workflows,
        parse_definition,
        read_definition_documents,
    )
    from eventrules.errors import (
        BrokerUnavailableError,
        ConditionSyntaxError,
        ConfigurationError,
        DefinitionError,
        EventRulesError,
        KafkaError,
        RuleEvaluationError,
        TemplateError,
        TopicError,
        UnknownTriggerError,
        WebhookBlockedError,
        WebhookError,
    )
    from eventrules.models import ActionBase, ActionRegistry, Event, Workflow, parse_workflow
    from eventrules.rules import CheckReport, Decision, Rule, RulesEngine, check_rules, parse_rule
    from eventrules.workflows.catalog import Trigger, TriggerCatalog
    from eventrules.workflows.compiled import CompiledWorkflow, compile_workflow
    from eventrules.workflows.engine import Engine, UpsertOutcome
    from eventrules.workflows.plan import Plan, PlannedWorkflow, RenderedAction, WorkflowTrace

__version__ = "0.1.0"

# public name -> the module it lives in
_EXPORTS: dict[str, str] = {
    "CompiledCondition": "eventrules.conditions",
    "ConditionTrace": "eventrules.conditions",
    "Facts": "eventrules.conditions",
    "compile_condition": "eventrules.conditions",
    "parse_condition": "eventrules.conditions",
    "load_rules": "eventrules.definitions.files",
    "load_workflows": "eventrules.definitions.files",
    "parse_definition": "eventrules.definitions.files",
    "read_definition_documents": "eventrules.definitions.files",
    "BrokerUnavailableError": "eventrules.errors",
    "ConditionSyntaxError": "eventrules.errors",
    "ConfigurationError": "eventrules.errors",
    "DefinitionError": "eventrules.errors",
    "EventRulesError": "eventrules.errors",
    "KafkaError": "eventrules.errors",
    "RuleEvaluationError": "eventrules.errors",
    "TemplateError": "eventrules.errors",
    "TopicError": "eventrules.errors",
    "UnknownTriggerError": "eventrules.errors",
    "WebhookBlockedError": "eventrules.errors",
    "WebhookError": "eventrules.errors",
    "ActionBase": "eventrules.models",
    "ActionRegistry": "eventrules.models",
    "Event": "eventrules.models",
    "Workflow": "eventrules.models",
    "parse_workflow": "eventrules.models",
    "CheckReport": "eventrules.rules",
    "Decision": "eventrules.rules",
    "Rule": "eventrules.rules",
    "RulesEngine": "eventrules.rules",
    "check_rules": "eventrules.rules",
    "parse_rule": "eventrules.rules",
    "Trigger": "eventrules.workflows.catalog",
    "TriggerCatalog": "eventrules.workflows.catalog",
    "CompiledWorkflow": "eventrules.workflows.compiled",
    "compile_workflow": "eventrules.workflows.compiled",
    "Engine": "eventrules.workflows.engine",
    "UpsertOutcome": "eventrules.workflows.engine",
    "Plan": "eventrules.workflows.plan",
    "PlannedWorkflow": "eventrules.workflows.plan",
    "RenderedAction": "eventrules.workflows.plan",
    "WorkflowTrace": "eventrules.workflows.plan",
}

__all__ = [
    "ActionBase",
    "ActionRegistry",
    "BrokerUnavailableError",
    "CheckReport",
    "CompiledCondition",
    "CompiledWorkflow",
    "ConditionSyntaxError",
    "ConditionTrace",
    "ConfigurationError",
    "Decision",
    "DefinitionError",
    "Engine",
    "Event",
    "EventRulesError",
    "Facts",
    "KafkaError",
    "Plan",
    "PlannedWorkflow",
    "RenderedAction",
    "Rule",
    "RuleEvaluationError",
    "RulesEngine",
    "TemplateError",
    "TopicError",
    "Trigger",
    "TriggerCatalog",
    "UnknownTriggerError",
    "UpsertOutcome",
    "WebhookBlockedError",
    "WebhookError",
    "Workflow",
    "WorkflowTrace",
    "__version__",
    "check_rules",
    "compile_condition",
    "compile_workflow",
    "load_rules",
    "load_workflows",
    "parse_condition",
    "parse_definition",
    "parse_rule",
    "parse_workflow",
    "read_definition_documents",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return __all__
