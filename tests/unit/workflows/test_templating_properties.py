"""Property-based: any template compiles or is refused, and any render ends within the caps.

Templates are drawn from a grammar of jinja constructs, the hostile ones included (huge
repetitions and powers, dunder attributes, unavailable functions and filters, deep nesting,
nested loops). Whatever comes out, compiling raises only DefinitionError and rendering only
TemplateError (TemplateLimitError for a limit), and never because Python ran out of memory,
stack or number range inside.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventrules.errors import DefinitionError, TemplateError
from eventrules.limits import active_limits
from eventrules.workflows.templating import compile_params

CONTEXT: dict[str, Any] = {
    "a": "text",
    "b": 3,
    "f": 2.5,
    "items": [1, 2, 3],
    "s": "x" * 1000,
    "n": 10**6,
    "big": list(range(1000)),
    "d": {"k": "v", "n": [1, {"m": 2}]},
    "key": "__class__",
}
NAMES = st.sampled_from([*CONTEXT, "missing", "loop", "self", "cycler", "range", "x"])
CONSTANTS = st.sampled_from(
    ["0", "1", "-1", "3", "100000", "10**9", "9**100", "1e308", "''", "'x'", "'%s'", "'{}'",
     "'%0999999999d'", "'{:>99999999}'", "[1, 2]", "{'k': 1}", "none", "true"]
)  # fmt: skip
BINARY = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "~", "and", "or", "==", "<", "in"])
FILTERS = st.sampled_from(
    ["upper", "length", "join", "join(', ')", "replace('x', 'yy')", "replace('', s)",
     "center(n)", "center(10**9)", "indent(n)", "truncate(5)", "batch(n, 0)", "list", "string",
     "tojson", "tojson(indent=n)", "sum", "sum(start=[])", "format(s)", "default('z')",
     "map('upper')", "sort", "first", "int", "round(2)", "wordwrap(1)", "attr(key)",
     "pprint", "random", "unknown"]
)  # fmt: skip
METHODS = st.sampled_from(
    ["upper()", "ljust(n)", "ljust(10**9)", "replace('x', s)", "join(big)", "format(s)",
     "__class__", "mro()", "items()", "get('k')", "pop('k')", "expandtabs(n)", "_x", "k"]
)  # fmt: skip


def expressions() -> st.SearchStrategy[str]:
    return st.recursive(
        NAMES | CONSTANTS,
        lambda inner: st.one_of(
            st.tuples(inner, BINARY, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(inner, FILTERS).map(lambda t: f"({t[0]} | {t[1]})"),
            st.tuples(inner, METHODS).map(lambda t: f"{t[0]}.{t[1]}"),
            st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
            inner.map(lambda e: f"not {e}"),
            inner.map(lambda e: f"-{e}"),
            st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
            st.sampled_from(["range(3)", "range(10**9)", "range(n)", "cycler(1)", "dict()"]),
            st.tuples(st.integers(0, 60), inner).map(lambda t: "(" * t[0] + t[1] + ")" * t[0]),
        ),
        max_leaves=12,
    )


def templates() -> st.SearchStrategy[str]:
    expression = expressions()
    return st.recursive(
        st.one_of(
            st.sampled_from(["text ", "\n", "{# c #}", "y" * 500]),
            expression.map(lambda e: "{{ " + e + " }}"),
            expression.map(lambda e: "{% set v = " + e + " %}"),
        ),
        lambda body: st.one_of(
            st.lists(body, min_size=1, max_size=4).map("".join),
            st.tuples(expression, body).map(lambda t: f"{{% if {t[0]} %}}{t[1]}{{% endif %}}"),
            st.tuples(expression, body).map(
                lambda t: f"{{% for v in {t[0]} %}}{{{{ loop.index }}}}{t[1]}{{% endfor %}}"
            ),
            body.map(lambda b: f"{{% set v %}}{b}{{% endset %}}{{{{ v }}}}"),
            body.map(lambda b: f"{{% filter upper %}}{b}{{% endfilter %}}"),
            body.map(lambda b: f"{{% macro m() %}}{b}{{% endmacro %}}"),
            st.tuples(st.integers(0, 30), body).map(
                lambda t: "{% if true %}" * t[0] + t[1] + "{% endif %}" * t[0]
            ),
        ),
        max_leaves=8,
    )


INTERNAL_FAILURES = ("MemoryError", "RecursionError", "OverflowError", "SystemError")


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(template=templates())
def test_any_template_compiles_or_is_refused_and_renders_within_the_caps(template: str) -> None:
    failure: Exception | None = None
    rendered: dict[str, Any] = {}
    try:
        params = compile_params({"body": template}, untemplated=frozenset(), path="p")
        rendered, _ = params.render(CONTEXT)
    except (DefinitionError, TemplateError) as exc:
        failure = exc
    if failure is not None:
        assert not any(name in str(failure) for name in INTERNAL_FAILURES), str(failure)
    else:
        assert len(rendered["body"]) <= active_limits().template_max_output_chars
