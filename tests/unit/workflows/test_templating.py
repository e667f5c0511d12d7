"""Sandboxed rendering of action parameters."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import TemplateSyntaxError

from eventrules.errors import DefinitionError, TemplateError, TemplateLimitError
from eventrules.limits import Limits, active_limits, limits_applied
from eventrules.workflows.templating import _Interpolation, compile_params, is_template
from eventrules.workflows.templating_sandbox import ENVIRONMENT, missing_names

MAX_RENDERED_CHARS = active_limits().template_max_output_chars


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


def test_a_missing_subscript_with_an_unhashable_key_is_reported_as_text() -> None:
    # found by the property test: the key of ``a[items]`` is a list, which dict.fromkeys refused
    params = compile_params({"x": "{{ a[items] }}"}, untemplated=frozenset(), path="p")
    assert params.render({"items": [1, 2], "a": {}}) == ({"x": ""}, ["[1, 2]"])


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
    ("template", "reason"),
    [
        ("{{ ''.__class__ }}", "internal attribute '__class__'"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "internal attribute"),
        ("{{ name.__class__.mro() }}", "internal attribute"),
        ("{{ name.mro }}", "internal attribute 'mro'"),
        ("{{ self.__init__.__globals__ }}", "internal attribute"),
        ("{{ self._TemplateReference__context }}", "internal attribute"),
        ("{{ cycler.__init__.__globals__.os }}", "internal attribute '__globals__'"),
        ("{{ name.__globals__ }}", "internal attribute '__globals__'"),
        ("{{ lipsum.__globals__ }}", "internal attribute"),
        ("{{ ().__class__.__base__.__subclasses__() }}", "internal attribute"),
        ("{{ name['__class__'] }}", "internal attribute '__class__'"),
        ("{{ items | map(attribute='__class__') | list }}", "internal attribute"),
        ("{{ items | selectattr('_secret') | list }}", "internal attribute '_secret'"),
        ("{{ cycler('a') }}", "cycler() does not exist"),
        ("{{ joiner() }}", "joiner() does not exist"),
        ("{% set ns = namespace(a=1) %}", "namespace() does not exist"),
        ("{% set ns.a = 1 %}", "namespace assignments"),
        ("{{ lipsum() }}", "lipsum() does not exist"),
        ("{{ dict(a=1) }}", "dict() does not exist"),
        ("{% for i in range(10**9) %}{% endfor %}", "integer literals"),
        ("{% for i in range(n) %}{% endfor %}", "integer literals"),
        ("{% for i in range(0, 20000) %}{% endfor %}", "loop iterations"),
        ("{% macro f() %}x{% endmacro %}{{ f() }}", "{% macro %}"),
        ("{% call x() %}{% endcall %}", "{% call %}"),
        ("{% include 'other' %}", "{% include %}"),
        ("{% import 'other' as o %}", "{% import %}"),
        ("{% extends 'base' %}", "{% extends %}"),
        ("{% block b %}{% endblock %}", "{% block %}"),
        ("{% for x in y recursive %}{{ loop(x) }}{% endfor %}", "recursive loops"),
        ("{{ x | pprint }}", "'pprint' is not available"),
        ("{{ x | random }}", "'random' is not available"),
        ("{{ x | urlize }}", "'urlize' is not available"),
    ],
)
def test_templates_reaching_for_internals_are_refused_when_compiled(
    template: str, reason: str
) -> None:
    with pytest.raises(DefinitionError) as caught:
        compile_params({"body": template}, untemplated=frozenset(), path="actions.0")
    ((path, problem),) = caught.value.problems
    assert path == "actions.0.body"
    assert reason in problem, problem


@pytest.mark.parametrize(
    "template",
    [
        "{{ name[key] }}",
        "{{ name | attr(key) }}",
        "{{ items | map(attribute=key) | list }}",
        "{{ name.format }}{{ ''.join }}{{ name[key] }}",
        "{{ data.update({'x': 1}) }}",
        "{{ data.pop('x') }}",
        "{{ data.copy() }}",
        "{{ name.expandtabs(100) }}",
        "{{ name.encode() }}",
        "{{ (1).to_bytes(10) }}",
        "{{ 'a' * 100000000 }}",
        "{{ 2 ** 1000000 }}",
    ],
)
def test_sandbox_blocks_internals_reached_through_data_and_mutation(template: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(
            {"body": template},
            {"name": "Ada", "key": "__class__", "data": {"x": 1}, "items": [1]},
        )
    assert str(caught.value).startswith("actions.0.body: ")


def test_range_with_literal_bounds_is_available() -> None:
    rendered, _ = render({"body": "{{ range(3) | list }} {{ range(10, 0, -5) | list }}"}, {})
    assert rendered == {"body": "[0, 1, 2] [10, 5]"}


def test_context_is_not_mutated_by_rendering() -> None:
    context = {"data": {"x": 1}}
    with pytest.raises(TemplateError):
        render({"body": "{{ data.clear() }}"}, context)
    assert context == {"data": {"x": 1}}


def test_rendered_text_is_capped() -> None:
    with pytest.raises(TemplateError, match="template_max_output_chars"):
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
        token = missing_names.set(names)
        try:
            slow = ENVIRONMENT.from_string(source).render(context)
        finally:
            missing_names.reset(token)
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
        expected = ENVIRONMENT.from_string(source).render({"name": "Ada", "x": 1})
    except TemplateSyntaxError:
        raise AssertionError(f"the fast form accepted {source!r}, which jinja refuses") from None
    assert fast.render({"name": "Ada", "x": 1}, MAX_RENDERED_CHARS) == expected


def test_flat_plain_params_render_like_nested_ones() -> None:
    """Flat params of plain templates and scalars take a one-loop path: same output, same
    missing names (in order, once each) as params that take the general one."""
    flat = {"to": "{{ x }}", "count": 3, "on": True, "note": None, "body": "{{ y }}-{{ x }}"}
    flat_params = compile_params(flat, untemplated=frozenset(), path="actions.0")
    nested_params = compile_params({"inner": flat}, untemplated=frozenset(), path="actions.0")
    context = {"y": 7}
    rendered, missing = flat_params.render(context)
    assert rendered == {"to": "", "count": 3, "on": True, "note": None, "body": "7-"}
    assert missing == ["x"]
    assert nested_params.render(context) == ({"inner": rendered}, missing)


def test_constant_lists_and_objects_stay_on_the_one_loop_path_and_are_copied() -> None:
    # send_email's empty cc, a constant object: the flat path, and each render its own copy
    params = {"to": "{{ x }}", "cc": [], "meta": {"tags": ["a"], "n": 1}}
    compiled = compile_params(params, untemplated=frozenset(), path="actions.0")
    assert compiled._flat
    first, _ = compiled.render({"x": "ada"})
    assert first == {"to": "ada", "cc": [], "meta": {"tags": ["a"], "n": 1}}
    first["cc"].append("mallory@example.com")
    first["meta"]["tags"].append("b")
    second, _ = compiled.render({"x": "bob"})
    assert second == {"to": "bob", "cc": [], "meta": {"tags": ["a"], "n": 1}}
    # a template inside a list or object still takes the general path
    nested = compile_params({"cc": ["{{ x }}"]}, untemplated=frozenset(), path="actions.0")
    assert not nested._flat
    assert nested.render({"x": "c"})[0] == {"cc": ["c"]}


@pytest.mark.parametrize("nested", [False, True])
def test_a_plain_template_past_the_output_limit_names_its_parameter(nested: bool) -> None:
    params = {"to": "a", "body": "{{ text }}"}
    compiled = compile_params(
        {"inner": params} if nested else params, untemplated=frozenset(), path="actions.0"
    )
    with (
        limits_applied(Limits(template_max_output_chars=100)),
        pytest.raises(TemplateLimitError) as caught,
    ):
        compiled.render({"text": "x" * 101})
    path = "actions.0.inner.body" if nested else "actions.0.body"
    assert str(caught.value).startswith(f"{path}: ")
    assert caught.value.limit == "template_max_output_chars"
