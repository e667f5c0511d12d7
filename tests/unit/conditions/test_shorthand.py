"""The one-line condition language: it parses into the same tree as the structured form."""

from __future__ import annotations

import pytest

from eventrules.conditions import (
    AllOf,
    AnyOf,
    Compare,
    Not,
    node_to_text,
    parse_condition,
    parse_shorthand,
)
from eventrules.errors import ConditionSyntaxError


@pytest.mark.parametrize(
    ("text", "structured"),
    [
        ("stock < 10", {"field": "stock", "operator": "lt", "value": 10}),
        ("total >= 500", {"field": "total", "operator": ">=", "value": 500}),
        ("user.orderCount == 0", {"field": "user.orderCount", "operator": "eq", "value": 0}),
        ("dayOfWeek in [6, 0]", {"field": "dayOfWeek", "operator": "in", "value": [6, 0]}),
        ("cartAge > 24", {"field": "cartAge", "operator": "gt", "value": 24}),
        (
            "items.0.sku starts_with 'AB'",
            {"field": "items.0.sku", "operator": "starts_with", "value": "AB"},
        ),
        ("email exists", {"field": "email", "operator": "exists"}),
        ("email not exists", {"field": "email", "operator": "not_exists"}),
        ("tag not in ['a', \"b\",]", {"field": "tag", "operator": "not_in", "value": ["a", "b"]}),
        ("note not contains 'x'", {"field": "note", "operator": "not_contains", "value": "x"}),
        ("x between 1 and 5", {"field": "x", "operator": "between", "value": [1, 5]}),
        ("x between [1, 5]", {"field": "x", "operator": "between", "value": [1, 5]}),
        ("flag == true", {"field": "flag", "operator": "eq", "value": True}),
        ("gone == null", {"field": "gone", "operator": "eq", "value": None}),
        ("delta > -1.5e3", {"field": "delta", "operator": "gt", "value": -1500.0}),
        (
            "msg == 'it\\'s \\\"ok\\\"\\n'",
            {"field": "msg", "operator": "eq", "value": 'it\'s "ok"\n'},
        ),
        ("seen within_last '7d'", {"field": "seen", "operator": "within_last", "value": "7d"}),
        ("name matches '^A.*'", {"field": "name", "operator": "matches", "value": "^A.*"}),
        ("name is_empty", {"field": "name", "operator": "is_empty"}),
    ],
)
def test_shorthand_equals_structured_form(text: str, structured: dict[str, object]) -> None:
    assert parse_condition(text) == parse_condition(structured)


def test_precedence_not_binds_tighter_than_and_tighter_than_or() -> None:
    tree = parse_shorthand('a > 1 and (b == "x" or not c exists)')
    assert tree == AllOf(
        (
            Compare("a", "gt", 1),
            AnyOf((Compare("b", "eq", "x"), Not(Compare("c", "exists")))),
        )
    )
    assert parse_shorthand("a == 1 or b == 2 and c == 3") == AnyOf(
        (Compare("a", "eq", 1), AllOf((Compare("b", "eq", 2), Compare("c", "eq", 3))))
    )


def test_keywords_are_case_insensitive() -> None:
    assert parse_shorthand("a == 1 AND NOT b Exists") == parse_shorthand("a == 1 and not b exists")


def test_text_round_trips_through_node_to_text() -> None:
    tree = parse_shorthand("a > 1 and (b == 'x' or not c exists) and d in [1, 2]")
    assert parse_shorthand(node_to_text(tree)) == tree


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("", 1, "expected a condition"),
        ("total >", 8, "expected a value"),
        ("total >> 5", 8, "expected a value"),
        ("a > 1 and", 10, "expected a field name"),
        ("(a > 1", 7, "expected ')'"),
        ("a > 1)", 6, "expected 'and', 'or'"),
        ("a ~ 1", 3, "unexpected character '~'"),
        ("a == 'open", 6, "unterminated string"),
        ("a == 'x\\q'", 8, "unknown escape"),
        ("a frobnicates 1", 3, "expected an operator"),
        ("a in [1, 2", 11, "expected ',' or ']'"),
        ("a between 1 5", 13, "expected 'and' between"),
        ("a matches '('", 11, "invalid RE2"),
        ("a exists 3", 10, "expected 'and', 'or'"),
        ("1 > a", 1, "expected a field name"),
        ("a == b", 6, "expected a value"),
    ],
)
def test_malformed_input_names_the_column(text: str, column: int, fragment: str) -> None:
    with pytest.raises(ConditionSyntaxError) as caught:
        parse_shorthand(text)
    assert caught.value.column + 1 == column
    assert fragment in str(caught.value)
    assert f"at column {column}" in str(caught.value)


def test_parser_never_evaluates_python() -> None:
    with pytest.raises(ConditionSyntaxError):
        parse_shorthand("__import__('os').system('true') == 0")
