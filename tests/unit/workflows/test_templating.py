"""Sandboxed rendering of action parameters."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import TemplateSyntaxError

from eventrules.errors import DefinitionError, TemplateError
from eventrules.workflows.templating import (
    _ENVIRONMENT,
    MAX_RENDERED_CHARS,
    _Interpolation,
    _missing_names,
    compile_params,
    is_template,
)


def render(params: dict[str, Any], context: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    return compile_params(params, untemplated=frozenset({"type"}), path="actions.0").render(context)


def test_placeholders_render_from_event_data() -> None:
    rendered, missing = render(
        {"subject": "Product {{productName}} is low", "body": "{{ total | round(1) }}"},
        {"productName": "Tea", "total": 3.14159},
    )
    assert rendered == {"subject": "Product Tea is low", "body": "3.1"}
    assert missing == []


def test_nested_params_and_lists_render() -> None:
    rendered, _ = render(
        {"headers": {"X-Order": "{{ id }}"}, "cc": ["{{ a }}", "fixed"], "n": 3},
        {"id": "o-1", "a": "x@y"},
    )
    assert rendered == {"headers": {"X-Order": "o-1"}, "cc": ["x@y", "fixed"], "n": 3}


def test_missing_variables_render_empty_and_are_reported() -> None:
    rendered, missing = render(
        {"to": "{{ email }}", "body": "Hi {{ name }} {{ name }} {{ user.nick }}"}, {}
    )
    assert rendered == {"to": "", "body": "Hi   "}
    assert missing == ["email", "name", "user"]


def test_default_filter_is_not_reported_missing() -> None:
    rendered, missing = render({"body": "Hi {{ name | default('there') }}"}, {})
    assert rendered == {"body": "Hi there"}
    assert missing == []


def test_untemplated_fields_are_left_alone() -> None:
    params = compile_params(
        {"secret": "{{ pick_me }}", "to": "{{ x }}"}, untemplated=frozenset({"secret"}), path="a"
    )
    assert params.render({"x": "1", "pick_me": "s"})[0] == {"secret": "{{ pick_me }}", "to": "1"}


def test_plain_strings_are_not_compiled() -> None:
    assert not compile_params({"to": "a@b"}, untemplated=frozenset(), path="a").has_templates
    assert is_template("{% if x %}y{% endif %}")
    assert not is_template("{ not a template }")


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ name.__class__.mro() }}",
        "{{ self.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ name.__globals__ }}",
        "{{ lipsum.__globals__ }}",
        "{{ ().__class__.__base__.__subclasses__() }}",
        "{{ 'a' * 100000000 }}",
        "{{ 2 ** 1000000 }}",
        "{{ data.update({'x': 1}) }}",
        "{{ data.pop('x') }}",
        "{{ range(10) | list }}",
    ],
)
def test_sandbox_blocks_python_internals_and_mutation(template: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render({"body": template}, {"name": "Ada", "data": {"x": 1}})
    assert str(caught.value).startswith("actions.0.body: ")


def test_context_is_not_mutated_by_rendering() -> None:
    context = {"data": {"x": 1}}
    with pytest.raises(TemplateError):
        render({"body": "{{ data.clear() }}"}, context)
    assert context == {"data": {"x": 1}}


def test_rendered_text_is_capped() -> None:
    with pytest.raises(TemplateError, match="exceeds"):
        render(
            {"body": "{% for i in items %}{{ big }}{% endfor %}"},
            {"items": list(range(20)), "big": "x" * (MAX_RENDERED_CHARS // 10)},
        )


def test_invalid_syntax_is_a_definition_error_naming_the_path() -> None:
    with pytest.raises(DefinitionError) as caught:
        compile_params(
            {"to": "{{ ok }}", "body": "{{ broken ", "headers": {"X": "{% if %}"}},
            untemplated=frozenset(),
            path="actions.2",
        )
    paths = [path for path, _ in caught.value.problems]
    assert paths == ["actions.2.body", "actions.2.headers.X"]


INTERPOLATIONS = [
    "{{ a }}",
    "About {{ a }} and {{b}}!",
    "{{ a }}{{ a }}\n",
    "no placeholders but {# a comment #} here",
    "{{ missing }} then {{ a }}",
    "{{ self }}",
]
CONTEXTS: list[dict[str, Any]] = [
    {"a": "text", "b": 2},
    {"a": None, "b": True},
    {"a": 1.5, "b": {"k": [1, "x"]}},
    {"a": ["l", 1], "b": -0.0},
    {},
]


@pytest.mark.parametrize("source", INTERPOLATIONS)
def test_plain_interpolations_render_exactly_as_jinja_does(source: str) -> None:
    # The fast path must be invisible: same text and same missing names as jinja itself.
    for context in CONTEXTS:
        fast = render({"x": source}, context)
        names: list[str] = []
        token = _missing_names.set(names)
        try:
            slow = _ENVIRONMENT.from_string(source).render(context)
        finally:
            _missing_names.reset(token)
        assert fast == ({"x": slow}, list(dict.fromkeys(names))), (source, context)


def test_only_text_and_plain_names_take_the_fast_path() -> None:
    assert _Interpolation.of("Hi {{ name }}, order {{order_id}}") is not None
    for needs_jinja in ("{{ a | upper }}", "{{ a.b }}", "{% if a %}x{% endif %}", "{{ self }}"):
        assert _Interpolation.of(needs_jinja) is None, needs_jinja


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "{{ name }}",
                "{{name}}",
                "{{ true }}",
                "{{ loop }}",
                "{{ x -}}",
                "{{",
                "}}",
                "{%",
                "{#",
                "a",
                " ",
                "\n",
                "\r\n",
                "{",
                "}",
                "{{ missing }}",
                "{{ if }}",
                "é",
            ]
        ),
        max_size=6,
    ).map("".join)
)
def test_fast_interpolation_renders_what_jinja_renders(source: str) -> None:
    fast = _Interpolation.plain(source)
    if fast is None:
        return
    try:
        expected = _ENVIRONMENT.from_string(source).render({"name": "Ada", "x": 1})
    except TemplateSyntaxError:
        raise AssertionError(f"the fast form accepted {source!r}, which jinja refuses") from None
    assert fast.render({"name": "Ada", "x": 1}) == expected
