"""eventrules: a Kafka-native workflow automation and business-rules engine."""

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
