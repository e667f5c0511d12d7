"""The condition language shared by workflows and rules: parse, compile once, match, explain."""

from eventrules.conditions.compiler import (
    REFERENCE_TIME_FACT,
    CompiledCondition,
    Conjunct,
    compile_condition,
)
from eventrules.conditions.explain import ConditionTrace
from eventrules.conditions.facts import DERIVED_FACTS, Facts
from eventrules.conditions.operators import OPERATORS, Operator, canonical_operator
from eventrules.conditions.parsing import parse_condition
from eventrules.conditions.shorthand import parse_shorthand
from eventrules.conditions.tree import (
    AllOf,
    AnyOf,
    Compare,
    ConditionNode,
    Not,
    node_to_data,
    node_to_text,
)
from eventrules.conditions.values import MISSING, Missing

__all__ = [
    "DERIVED_FACTS",
    "MISSING",
    "OPERATORS",
    "REFERENCE_TIME_FACT",
    "AllOf",
    "AnyOf",
    "Compare",
    "CompiledCondition",
    "ConditionNode",
    "ConditionTrace",
    "Conjunct",
    "Facts",
    "Missing",
    "Not",
    "Operator",
    "canonical_operator",
    "compile_condition",
    "node_to_data",
    "node_to_text",
    "parse_condition",
    "parse_shorthand",
]
