"""The one-line condition language ops can type, parsed without eval.

Grammar (keywords are case-insensitive)::

    condition  := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | "(" or_expr ")" | comparison
    comparison := PATH OPERATOR [value]          # exists, not exists, is_empty take no value
                | PATH "between" value "and" value
    OPERATOR   := == != > >= < <= = | an operator name or alias (in, contains, matches, ...)
                | "not" ("in" | "contains" | "exists")
    value      := STRING | NUMBER | true | false | null | "[" [value ("," value)*] [","] "]"
    PATH       := NAME ("." (NAME | DIGITS))*     # user.orderCount, items.0.sku

Strings take double or single quotes with backslash escapes. A syntax error names the column.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from eventrules.conditions.operators import OPERATORS, canonical_operator
from eventrules.conditions.tree import AllOf, AnyOf, Compare, ConditionNode, Not, make_compare
from eventrules.errors import ConditionSyntaxError, DefinitionLimitError
from eventrules.limits import active_limits

__all__ = ["parse_shorthand"]

_TOKEN: Final = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w$]))
  | (?P<path>[A-Za-z_$][\w$]*(?:\.[\w$]+)*)
  | (?P<symbol>==|!=|>=|<=|>|<|=)
  | (?P<punct>[()\[\],])
  | (?P<string>"|')
    """,
    re.VERBOSE,
)
_ESCAPES: Final = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}
_NEGATED: Final = {"in": "not_in", "contains": "not_contains", "exists": "not_exists"}
_LITERAL_WORDS: Final = {"true": True, "false": False, "null": None}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # number, path, symbol, punct, string, end
    text: str
    column: int
    value: Any = None

    @property
    def word(self) -> str:
        return self.text.lower() if self.kind == "path" else ""


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        found = _TOKEN.match(text, position)
        if found is None:
            raise ConditionSyntaxError(
                f"unexpected character {text[position]!r}", text=text, column=position
            )
        kind = found.lastgroup or ""
        if kind == "string":
            token, position = _read_string(text, position)
            tokens.append(token)
            continue
        if kind == "number":
            literal = found.group()
            try:
                number: float | int = (
                    float(literal) if any(c in literal for c in ".eE") else int(literal)
                )
            except ValueError:  # more digits than Python converts
                raise ConditionSyntaxError(
                    "number out of range", text=text, column=position
                ) from None
            tokens.append(_Token("number", literal, position, number))
        elif kind != "space":
            tokens.append(_Token(kind, found.group(), position))
        position = found.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _read_string(text: str, start: int) -> tuple[_Token, int]:
    quote = text[start]
    chars: list[str] = []
    position = start + 1
    while position < len(text):
        char = text[position]
        if char == quote:
            value = "".join(chars)
            return _Token("string", text[start : position + 1], start, value), position + 1
        if char == "\\":
            escaped = text[position + 1 : position + 2]
            if escaped not in _ESCAPES:
                raise ConditionSyntaxError(
                    f"unknown escape \\{escaped}", text=text, column=position
                )
            chars.append(_ESCAPES[escaped])
            position += 2
            continue
        chars.append(char)
        position += 1
    raise ConditionSyntaxError("unterminated string", text=text, column=start)


class _Parser:
    def __init__(self, text: str, max_depth: int) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        # "not" and "(" recurse; the limit keeps the recursion far from Python's own
        self.depth = 0
        self.max_depth = max_depth

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def fail(self, message: str, token: _Token | None = None) -> ConditionSyntaxError:
        where = token or self.current
        found = "end of input" if where.kind == "end" else repr(where.text)
        return ConditionSyntaxError(
            f"{message}, found {found}", text=self.text, column=where.column
        )

    def parse(self) -> ConditionNode:
        if self.current.kind == "end":
            raise self.fail("expected a condition")
        node = self.or_expr()
        if self.current.kind != "end":
            raise self.fail("expected 'and', 'or' or the end of the condition")
        return node

    def or_expr(self) -> ConditionNode:
        return self.chain("or", self.and_expr, AnyOf)

    def and_expr(self) -> ConditionNode:
        return self.chain("and", self.unary, AllOf)

    def chain(
        self,
        keyword: str,
        operand: Callable[[], ConditionNode],
        group: type[AllOf] | type[AnyOf],
    ) -> ConditionNode:
        children = [operand()]
        while self.current.word == keyword:
            self.advance()
            children.append(operand())
        return children[0] if len(children) == 1 else group(tuple(children))

    def unary(self) -> ConditionNode:
        token = self.current
        if token.word != "not" and token.text != "(":
            return self.comparison()
        self.depth += 1
        if self.depth > self.max_depth:
            raise DefinitionLimitError(
                f"too many levels of 'not' and brackets at column {token.column + 1}",
                limit="condition_max_depth",
                maximum=self.max_depth,
            )
        self.advance()
        if token.word == "not":
            node: ConditionNode = Not(self.unary())
        else:
            node = self.or_expr()
            if self.current.text != ")":
                raise self.fail(f"expected ')' to close '(' at column {token.column + 1}")
            self.advance()
        self.depth -= 1
        return node

    def comparison(self) -> Compare:
        field = self.current
        if field.kind != "path" or field.word in {"and", "or", *_LITERAL_WORDS}:
            raise self.fail("expected a field name")
        self.advance()
        operator_token = self.current
        operator = self.operator()
        if operator == "between" and self.current.text != "[":
            low = self.value()
            if self.current.word != "and":
                raise self.fail("expected 'and' between the bounds of 'between'")
            self.advance()
            value_token = operator_token
            value: Any = [low, self.value()]
        elif OPERATORS[operator].takes_value:
            value_token = self.current
            value = self.value()
        else:
            value_token, value = operator_token, None
        try:
            return make_compare(field.text, operator, value)
        except ValueError as exc:
            raise ConditionSyntaxError(
                str(exc), text=self.text, column=value_token.column
            ) from None

    def operator(self) -> str:
        token = self.advance()
        if token.word == "not" and self.current.word in _NEGATED:
            return _NEGATED[self.advance().word]
        if token.kind in {"symbol", "path"}:
            try:
                return canonical_operator(token.text)
            except ValueError:
                pass
        raise self.fail("expected an operator such as ==, >, in, contains, exists", token)

    def value(self) -> Any:
        token = self.advance()
        if token.kind in {"number", "string"}:
            return token.value
        if token.word in _LITERAL_WORDS:
            return _LITERAL_WORDS[token.word]
        if token.text == "[":
            items: list[Any] = []
            while self.current.text != "]":
                items.append(self.value())
                if self.current.text == ",":
                    self.advance()
                elif self.current.text != "]":
                    raise self.fail("expected ',' or ']' in the list")
            self.advance()
            return items
        raise self.fail("expected a value (string, number, true, false, null or [list])", token)


def parse_shorthand(text: str) -> ConditionNode:
    """Parse a one-line condition into the same tree the structured form gives.

    Raises ConditionSyntaxError, or DefinitionLimitError for a condition longer than
    ``condition_max_chars`` or nested deeper than ``condition_max_depth``.
    """
    limits = active_limits()
    if len(text) > limits.condition_max_chars:
        raise DefinitionLimitError(
            f"condition of {len(text)} characters is too long",
            limit="condition_max_chars",
            maximum=limits.condition_max_chars,
        )
    return _Parser(text, limits.condition_max_depth).parse()
