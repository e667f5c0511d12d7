"""The static check of a template, run when a definition is published or compiled.

Each refusal is a DefinitionError whose message is the reason (DefinitionLimitError when a
limit was exceeded); :func:`eventrules.workflows.templating.compile_params` files it under the
parameter's path.

Before parsing, the token stream is measured (jinja's parser recurses once or more per bracket,
block, ``not`` and inline ``if``: a template nested 200 deep would exhaust Python's stack). After
parsing, the syntax tree is walked once (iteratively) and refused, with the reason, when it:

* nests deeper than ``template_max_depth`` (jinja's code generator and Python's compiler recurse
  on it; Python refuses more than 20 nested blocks);
* uses a construct action templates have no need for: ``{% macro %}``, ``{% call %}``,
  ``{% include %}``/``{% import %}``/``{% extends %}``/``{% block %}``, recursive loops,
  namespace assignments, or a filter outside :data:`ALLOWED_FILTERS`;
* reaches for internals: an attribute or item starting with ``_`` (``__class__``,
  ``__globals__``, ``_TemplateReference__context``) or naming a frame/code object;
* calls a function other than ``range`` (templates have no globals: ``cycler()``, ``joiner()``,
  ``namespace()``, ``lipsum()`` do not exist), or calls ``range`` with anything but integer
  literals whose length is within ``template_max_loop_iterations``.

What cannot be decided statically (the size of data, loop counts over data, attributes reached
through variables) is bounded while rendering, see :mod:`eventrules.workflows.templating_sandbox`.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from jinja2 import Environment, nodes

from eventrules.errors import DefinitionError, DefinitionLimitError
from eventrules.limits import Limits

__all__ = ["ALLOWED_FILTERS", "check_source", "check_tree"]

# Every jinja filter but pprint/urlize/xmlattr (HTML and debugging helpers whose output size
# is hard to bound) and random (a replayed event must render the same actions).
ALLOWED_FILTERS: Final = frozenset(
    {
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort",
        "e", "escape", "filesizeformat", "first", "float", "forceescape", "format", "groupby",
        "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max",
        "min", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select",
        "selectattr", "slice", "sort", "string", "striptags", "sum", "title", "tojson",
        "trim", "truncate", "unique", "upper", "urlencode", "wordcount", "wordwrap",
    }
)  # fmt: skip
# filters whose first argument names an attribute of the items (``selectattr("x.y")``); any
# filter's ``attribute=`` keyword does too
_ATTRIBUTE_FILTERS: Final = frozenset({"attr", "groupby", "rejectattr", "selectattr"})
_ALLOWED_NODES: Final = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.If, nodes.For, nodes.With,
    nodes.Assign, nodes.AssignBlock, nodes.FilterBlock, nodes.Name, nodes.Const, nodes.Tuple,
    nodes.List, nodes.Dict, nodes.Pair, nodes.Keyword, nodes.CondExpr, nodes.Filter,
    nodes.Test, nodes.Call, nodes.Getitem, nodes.Getattr, nodes.Slice, nodes.Concat,
    nodes.Compare, nodes.Operand, nodes.BinExpr, nodes.UnaryExpr,
)  # fmt: skip
_REFUSED_NAMES: Final = {
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.Extends: "{% extends %}",
    nodes.Block: "{% block %}",
    nodes.NSRef: "namespace assignments",
    nodes.ScopedEvalContextModifier: "{% autoescape %}",
}
# frame, code and generator attributes the sandbox also refuses (jinja2.sandbox lists them)
_INTERNAL_ATTRIBUTES: Final = frozenset(
    {"mro", "func_globals", "func_code", "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame",
     "cr_code", "cr_await", "ag_frame", "ag_code", "ag_await", "tb_frame", "tb_next",
     "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "im_func", "im_self"}
)  # fmt: skip
_BLOCK_OPENERS: Final = frozenset(
    {"for", "if", "with", "filter", "macro", "call", "block", "autoescape", "raw"}
)
# tokens after which a following - or + is a sign (prefix), not a binary operator
_OPERAND_ENDS: Final = frozenset(
    {"name", "integer", "float", "string", "rparen", "rbracket", "rbrace"}
)
_KEYWORDS: Final = frozenset({"not", "and", "or", "if", "else", "in", "is"})


def _too_deep(limits: Limits) -> DefinitionLimitError:
    return DefinitionLimitError(
        f"the template nests deeper than {limits.template_max_depth} levels "
        "(blocks, brackets and operators)",
        limit="template_max_depth",
        maximum=limits.template_max_depth,
    )


def check_source(environment: Environment, source: str, limits: Limits) -> None:
    """Refuse a template too long, or nested too deeply to parse safely (tokens only)."""
    if len(source) > limits.template_max_chars:
        raise DefinitionLimitError(
            f"the template has {len(source)} characters, more than {limits.template_max_chars}",
            limit="template_max_chars",
            maximum=limits.template_max_chars,
        )
    if _token_depth(environment, source) > limits.template_max_depth:
        raise _too_deep(limits)


def _token_depth(environment: Environment, source: str) -> int:
    """The deepest point of blocks + brackets + prefix operators + inline ifs, from tokens."""
    blocks = brackets = prefix = inline_ifs = deepest = 0
    tag: list[str] = []  # the current {% %} tag's name tokens, to recognise its keyword
    previous = ""
    for token in environment.lexer.tokenize(source):
        kind, value = token.type, token.value
        if kind in {"block_begin", "variable_begin"}:
            tag, prefix, inline_ifs = [], 0, 0
        elif kind == "block_end" and tag:
            keyword = tag[0]
            if keyword in _BLOCK_OPENERS or (keyword == "set" and "=" not in tag):
                blocks += 1
            elif keyword.startswith("end"):
                blocks = max(0, blocks - 1)
        elif kind in {"lparen", "lbracket", "lbrace"}:
            brackets += 1
        elif kind in {"rparen", "rbracket", "rbrace"}:
            brackets = max(0, brackets - 1)
        if kind in {"name", "assign"}:
            tag.append(value if kind == "name" else "=")
        if kind == "name" and value == "if" and len(tag) > 1:
            inline_ifs += 1
        if (kind == "name" and value == "not") or (
            kind in {"add", "sub"} and previous not in _OPERAND_ENDS
        ):
            prefix += 1
        elif kind in _OPERAND_ENDS and not (kind == "name" and value in _KEYWORDS):
            prefix = 0
        previous = kind if not (kind == "name" and value in _KEYWORDS) else "keyword"
        deepest = max(deepest, blocks + brackets + prefix + inline_ifs)
    return deepest


def check_tree(tree: nodes.Template, limits: Limits) -> None:
    """Refuse a parsed template that is too deep or uses what action templates may not."""
    # breadth first, so the outermost refused construct is the one reported
    queue: deque[tuple[nodes.Node, int]] = deque([(tree, 0)])
    while queue:
        node, depth = queue.popleft()
        if depth > limits.template_max_depth:
            raise _too_deep(limits)
        _check_node(node, limits)
        queue.extend((child, depth + 1) for child in node.iter_child_nodes())


def _check_node(node: nodes.Node, limits: Limits) -> None:
    refused = _REFUSED_NAMES.get(type(node))
    if refused is not None:
        raise DefinitionError(f"templates may not use {refused}")
    if not isinstance(node, _ALLOWED_NODES):
        raise DefinitionError(f"templates may not use {type(node).__name__} nodes")
    if isinstance(node, nodes.Getattr):
        _check_attribute(node.attr)
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        if isinstance(node.arg.value, str):
            _check_attribute(node.arg.value)
    elif isinstance(node, nodes.Call):
        _check_call(node, limits)
    elif isinstance(node, nodes.Filter):
        _check_filter(node)
    elif isinstance(node, nodes.For) and node.recursive:
        raise DefinitionError("templates may not use recursive loops")


def _check_attribute(name: str) -> None:
    if name.startswith("_") or name in _INTERNAL_ATTRIBUTES:
        raise DefinitionError(f"templates may not reach for the internal attribute {name!r}")


def _check_call(node: nodes.Call, limits: Limits) -> None:
    if not isinstance(node.node, nodes.Name):
        return  # a method call: the sandbox checks the object and its arguments at render time
    name = node.node.name
    if name != "range":
        raise DefinitionError(
            f"templates have no functions: {name}() does not exist (only range() with "
            "integer literals; use filters such as join, default, format)"
        )
    bounds = [_int_literal(arg) for arg in node.args]
    extras = node.kwargs or node.dyn_args or node.dyn_kwargs
    if extras or None in bounds or not 1 <= len(bounds) <= 3:
        raise DefinitionError("range() takes one to three integer literals")
    try:
        length = len(range(*bounds))  # type: ignore[arg-type]
    except (ValueError, OverflowError) as exc:
        raise DefinitionError(f"range{tuple(bounds)}: {exc}") from None
    if length > limits.template_max_loop_iterations:
        raise DefinitionLimitError(
            f"range{tuple(bounds)} has {length} items, more than the "
            f"{limits.template_max_loop_iterations} loop iterations a render may run",
            limit="template_max_loop_iterations",
            maximum=limits.template_max_loop_iterations,
        )


def _int_literal(node: nodes.Expr) -> int | None:
    if isinstance(node, nodes.Neg):
        value = _int_literal(node.node)
        return -value if value is not None else None
    if isinstance(node, nodes.Const) and type(node.value) is int:
        return node.value
    return None


def _check_filter(node: nodes.Filter) -> None:
    if node.name not in ALLOWED_FILTERS:
        raise DefinitionError(f"the filter {node.name!r} is not available in action templates")
    named = [kw.value for kw in node.kwargs if kw.key == "attribute"]
    if node.name in _ATTRIBUTE_FILTERS:
        named += node.args[:1]
    for argument in named:
        if isinstance(argument, nodes.Const) and isinstance(argument.value, str):
            for segment in argument.value.split("."):
                _check_attribute(segment)
