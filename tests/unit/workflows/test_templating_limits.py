"""Templates are bounded while they render: each limit stops the render with its name."""

from __future__ import annotations

import dataclasses
import tracemalloc
from typing import Any

import pytest
from tests.unit.conftest import event, workflow

from eventrules import Engine
from eventrules.errors import DefinitionError, DefinitionLimitError, TemplateLimitError
from eventrules.limits import Limits, active_limits, limits_applied
from eventrules.workflows.templating import TemplatedParams, compile_params


def compiled(template: str) -> TemplatedParams:
    return compile_params({"body": template}, untemplated=frozenset(), path="actions.0")


def render(template: str, context: dict[str, Any] | None = None) -> str:
    text: str = compiled(template).render(context or {})[0]["body"]
    return text


def limit_of(template: str, context: dict[str, Any] | None = None) -> str:
    # a generous time budget, so a loaded machine never turns another limit into this one
    roomy = dataclasses.replace(active_limits(), template_max_render_seconds=30)
    with limits_applied(roomy), pytest.raises(TemplateLimitError) as caught:
        render(template, context)
    assert str(caught.value).startswith("actions.0.body: ")
    assert f"limit {caught.value.limit} = " in str(caught.value)
    return caught.value.limit


def peak_bytes(template: str, context: dict[str, Any] | None = None) -> int:
    """Peak memory allocated while rendering, the compiled template already built."""
    params = compiled(template)
    tracemalloc.start()
    try:
        with pytest.raises(TemplateLimitError):
            params.render(context or {})
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


SET_TWICE = "{% set a = 'x' * 100000 %}"


@pytest.mark.parametrize(
    ("template", "limit"),
    [
        # the table: each used to take a gigabyte, a MemoryError or a minute of CPU
        ("{{ 'a' | center(10**9) }}", "template_max_output_chars"),
        ("{{ 'a' | center(1000000000) }}", "template_max_output_chars"),
        (SET_TWICE + "{% set a = a + a %}" * 14 + "{{ a | length }}", "template_max_output_chars"),
        (SET_TWICE + "{% set a = a ~ a %}" * 14 + "{{ a | length }}", "template_max_output_chars"),
        ("{{ ((((9**100)**100)**100)**100) > 1 }}", "int_max_str_digits"),
        ("{% set n = 9 %}" + "{% set n = n * n %}" * 20 + "{{ n > 1 }}", "int_max_str_digits"),
        (
            "{% for a in 'x' * 100000 %}{% for b in 'x' * 100000 %}{% endfor %}{% endfor %}done",
            "template_max_loop_iterations",
        ),
        # output and built values
        ("{{ 'x' * 100001 }}", "template_max_output_chars"),
        ("{{ ['x'] * 100001 }}", "template_max_output_chars"),
        ("{{ ('x' * 1000) | replace('', 'y' * 1000) }}", "template_max_output_chars"),
        ("{{ ('x' * 100000) | replace('x', 'yy') }}", "template_max_output_chars"),
        ("{{ ('x' * 1000).replace('x', 'y' * 1000) }}", "template_max_output_chars"),
        ("{{ (['y' * 1000] * 1000) | join(',') }}", "template_max_output_chars"),
        ("{{ ','.join(['y' * 1000] * 1000) }}", "template_max_output_chars"),
        ("{{ (['y' * 1000] * 1000) | string }}", "template_max_output_chars"),
        ("{{ (['y' * 1000] * 1000) | tojson }}", "template_max_output_chars"),
        ("{{ {'a': ['y'] * 5000} | tojson(indent=100) }}", "template_max_output_chars"),
        ("{{ '%0999999999d' | format(1) }}", "template_max_output_chars"),
        ("{{ '%0999999999d' % 1 }}", "template_max_output_chars"),
        ("{{ '{:>999999999}'.format(1) }}", "template_max_output_chars"),
        ("{{ 'x'.ljust(999999999) }}", "template_max_output_chars"),
        ("{{ ('x\\n' * 50000) | indent(100) }}", "template_max_output_chars"),
        ("{{ ('x ' * 50000) | wordwrap(1, wrapstring='-' * 10) }}", "template_max_output_chars"),
        ("{{ 'x' | truncate(10**9) }}", "template_max_output_chars"),
        ("{{ [1] | batch(10**9, 0) | list }}", "template_max_output_chars"),
        (
            "{% set x %}{% for i in 'x' * 5000 %}"
            + "y" * 100
            + "{% endfor %}{% endset %}{{ x | length }}",
            "template_max_output_chars",
        ),
        ("{% for i in 'x' * 5000 %}{{ big }}{% endfor %}", "template_max_output_chars"),
        (
            "{% filter upper %}{% for i in 'x' * 5000 %}{{ big }}{% endfor %}{% endfilter %}",
            "template_max_output_chars",
        ),
        # loops
        (
            "{% for a in items %}{% for b in items %}{% endfor %}{% endfor %}",
            "template_max_loop_iterations",
        ),
        ("{% for a in items %}{{ loop.length }}{% endfor %}", "template_max_loop_iterations"),
    ],
)
def test_each_limit_stops_the_render_with_its_name(template: str, limit: str) -> None:
    context = {"items": list(range(20_000)), "big": "z" * 50}
    assert limit_of(template, context) == limit


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'a' | center(10**9) }}",
        SET_TWICE + "{% set a = a ~ a %}" * 14,
        SET_TWICE + "{% set a = a + a %}" * 14,
        "{% for i in 'x' * 10000 %}{{ big }}{% endfor %}",
        "{% set x %}{% for i in 'x' * 10000 %}" + "y" * 1000 + "{% endfor %}{% endset %}",
        "{{ (['y' * 100000] * 100000) | join(',') }}",
        "{{ (['y' * 100000] * 100000) | string }}",
    ],
)
def test_limits_are_enforced_before_the_memory_is_allocated(template: str) -> None:
    # a gigabyte was allocated before the size was checked; a few times the cap is the bound now
    assert peak_bytes(template, {"big": "z" * 100_000}) < 8 * 1024 * 1024


def test_the_time_budget_stops_a_slow_render() -> None:
    slow = "{% for i in range(10000) %}{{ big | sort | length }}{% endfor %}"
    limits = dataclasses.replace(Limits(), template_max_render_seconds=0.05)
    with limits_applied(limits), pytest.raises(TemplateLimitError) as caught:
        render(slow, {"big": list(range(50_000))})
    assert caught.value.limit == "template_max_render_seconds"


def test_the_fast_path_is_capped_too() -> None:
    assert limit_of("{{ a }}" * 3, {"a": "x" * 40_000}) == "template_max_output_chars"
    assert render("{{ a }}{{ a }}", {"a": "x" * 40_000}) == "x" * 80_000


def test_smaller_limits_from_the_settings_apply() -> None:
    limits = dataclasses.replace(
        Limits(), template_max_output_chars=10, template_max_loop_iterations=3
    )
    with limits_applied(limits):
        assert render("{{ a }}", {"a": "x" * 10}) == "x" * 10
        assert limit_of("{{ a }}", {"a": "x" * 11}) == "template_max_output_chars"
        assert render("{% for i in range(3) %}{{ i }}{% endfor %}") == "012"
        with pytest.raises(DefinitionLimitError):
            compiled("{% for i in range(4) %}{% endfor %}")
        assert limit_of("{% for i in items %}{% endfor %}", {"items": [1] * 4}) == (
            "template_max_loop_iterations"
        )


@pytest.mark.parametrize(
    ("template", "limit"),
    [
        ("{{" + "(" * 200 + "1" + ")" * 200 + "}}", "template_max_depth"),
        ("{% for a in b %}" * 25 + "x" + "{% endfor %}" * 25, "template_max_depth"),
        ("{% if a %}" * 25 + "x" + "{% endif %}" * 25, "template_max_depth"),
        ("{{ " + "not " * 2000 + "x }}", "template_max_depth"),
        ("{{ " + "- " * 2000 + "x }}", "template_max_depth"),
        ("{{ x" + " | upper" * 40 + " }}", "template_max_depth"),
        ("{{ x" + " + 1" * 40 + " }}", "template_max_depth"),
        ("{{ x" + ".a" * 40 + " }}", "template_max_depth"),
        ("{{ 1" + " if x else 2" * 300 + " }}", "template_max_depth"),
        ("{{ " + "[" * 100 + "]" * 100 + " }}", "template_max_depth"),
        ("{% set a %}" * 30 + "{% endset %}" * 30, "template_max_depth"),
        ("x" * 20_001 + "{{ a }}", "template_max_chars"),
        ("{% for i in range(10001) %}{% endfor %}", "template_max_loop_iterations"),
    ],
)
def test_templates_past_a_static_limit_are_refused_when_compiled(template: str, limit: str) -> None:
    with pytest.raises(DefinitionLimitError) as caught:
        compiled(template)
    assert caught.value.limit == limit
    ((path, reason),) = caught.value.problems
    assert path == "actions.0.body"
    assert reason.startswith("refused template: ")


def test_nesting_below_the_limit_compiles_and_renders() -> None:
    assert render("{{" + "(" * 15 + "1" + ")" * 15 + "}}") == "1"
    loops = "{% for a in [1] %}" * 15 + "x" + "{% endfor %}" * 15
    assert render(loops) == "x"


def test_a_workflow_with_a_template_past_a_limit_is_a_definition_limit_error(
    engine: Engine,
) -> None:
    bad = workflow(
        actions=[
            {"type": "add_tag", "user_id": "{{" + "(" * 200 + "1" + ")" * 200 + "}}", "tag": "t"}
        ]
    )
    with pytest.raises(DefinitionLimitError) as caught:
        engine.upsert(bad)
    assert caught.value.limit == "template_max_depth"
    assert caught.value.definition_id == "wf"
    assert caught.value.problems[0][0] == "actions.0.user_id"
    assert "wf" not in engine


def test_one_event_shares_one_budget_across_workflows(engine: Engine) -> None:
    loop = "{% for i in range(4000) %}{% endfor %}ok"
    for name in ("a", "b", "c"):
        engine.upsert(workflow(id=name, actions=[{"type": "add_tag", "user_id": loop, "tag": "t"}]))
    plan = engine.plan(event({}))
    errors = [action.error for planned in plan.workflows for action in planned.actions]
    # 4,000 + 4,000 fit in the 10,000 iterations of one event; the third workflow's do not
    assert errors[:2] == [None, None]
    assert errors[2] is not None
    assert "template_max_loop_iterations" in errors[2]
    # the next event has a fresh budget
    assert [a.error for p in engine.plan(event({})).workflows for a in p.actions][:2] == [
        None,
        None,
    ]


def test_refusals_name_every_parameter_at_once() -> None:
    with pytest.raises(DefinitionError) as caught:
        compile_params(
            {"a": "{{ x.__class__ }}", "b": "{{ ok }}", "c": ["{{ cycler() }}"]},
            untemplated=frozenset(),
            path="actions.1",
        )
    assert [path for path, _ in caught.value.problems] == ["actions.1.a", "actions.1.c.0"]
