"""Sandboxed ``{{ placeholder }}`` rendering of action parameters.

Templates run in a jinja2 sandbox (:mod:`eventrules.workflows.templating_sandbox`) with no
globals but ``range``: a template sees the event data (top-level keys) and ``event`` (the
envelope: id, type, source, subject, time; a data key named ``event`` wins, as in
conditions), can use filters (``{{ total | round(2) }}``), and cannot reach Python internals
(``__class__``, ``__globals__``, ``mro`` ...) or mutate anything.

A template is checked when its definition is compiled
(:mod:`eventrules.workflows.templating_checks`): one that reaches for internals, uses a
construct action templates do not need, or goes past a size or nesting limit is a
DefinitionError naming the parameter, so it is refused at publish time. Rendering is bounded
while it runs (output size, loop iterations, time, number sizes); a limit reached fails that
action with a TemplateLimitError naming the limit.

Missing variables render as an empty string and their names are reported in the rendered
action's ``missing`` list, so a typo is visible without failing the whole workflow. Use
``{{ name | default("there") }}`` to choose a fallback; that is not reported.
"""

from __future__ import annotations

import functools
import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from jinja2 import Template, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError

from eventrules.errors import (
    DefinitionError,
    DefinitionLimitError,
    TemplateError,
    TemplateLimitError,
)
from eventrules.limits import Limits, active_limits
from eventrules.workflows.templating_sandbox import (
    ENVIRONMENT,
    RenderBudget,
    compile_template,
    missing_names,
    render_budget,
)

__all__ = ["TemplatedParams", "compile_params", "is_template", "render_budget"]

_MARKERS: Final = ("{{", "{%", "{#")


def is_template(text: str) -> bool:
    return any(marker in text for marker in _MARKERS)


# Names jinja gives a meaning of its own (``{{ self }}`` is the template reference).
_JINJA_NAMES: Final = frozenset({"self", "loop", "super", "caller", "varargs", "kwargs"})
# names that jinja reads as constants or operators rather than variables
_NOT_VARIABLES: Final = _JINJA_NAMES | frozenset(keyword.kwlist) | {"true", "false", "none"}
_MARKER: Final = re.compile(r"\{(?=[{%#])")
_PLACEHOLDER: Final = re.compile(r"\{\{[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*\}\}")


class _Interpolation:
    """A template that is only text and ``{{ name }}`` placeholders, rendered without jinja.

    Most action templates look like ``"Order {{ order_id }} shipped"``; jinja's per-render
    context set-up costs more than the rest of a workflow run. The output is what jinja
    renders: ``str()`` of each value, and an undefined name renders empty and is reported.
    """

    __slots__ = ("parts",)

    def __init__(self, parts: tuple[tuple[bool, str], ...]) -> None:
        self.parts = parts  # (is_name, text or name)

    @classmethod
    def plain(cls, source: str) -> _Interpolation | None:
        """The fast form read without jinja's parser (a tenth of a millisecond per template,
        which made loading thousands of definitions slow), or None when in doubt."""
        if "\r" in source:  # jinja normalises newlines in text
            return None
        parts: list[tuple[bool, str]] = []
        starts = set()
        position = 0
        for found in _PLACEHOLDER.finditer(source):
            if found.group(1) in _NOT_VARIABLES:
                return None
            if found.start() > position:
                parts.append((False, source[position : found.start()]))
            parts.append((True, found.group(1)))
            starts.add(found.start())
            position = found.end()
        if position < len(source):
            parts.append((False, source[position:]))
        # every marker must open one of the placeholders ("{{{ a }}" is not plain)
        if any(marker.start() not in starts for marker in _MARKER.finditer(source)):
            return None
        return cls(tuple(parts))

    @classmethod
    def of(cls, source: str) -> _Interpolation | None:
        """The fast form of ``source``, or None when it needs jinja (filters, dots, blocks)."""
        body = ENVIRONMENT.parse(source).body
        parts: list[tuple[bool, str]] = []
        for output in body:
            if not isinstance(output, nodes.Output):
                return None
            for node in output.nodes:
                if isinstance(node, nodes.TemplateData):
                    parts.append((False, node.data))
                elif (
                    isinstance(node, nodes.Name)
                    and node.ctx == "load"
                    and node.name not in _JINJA_NAMES
                ):
                    parts.append((True, node.name))
                else:
                    return None
        return cls(tuple(parts))

    def render(self, context: Mapping[str, Any], cap: int, names: list[str] | None = None) -> str:
        """``names`` collects the missing variables (default: the ones jinja collects in)."""
        pieces = []
        converted = 0
        total = 0  # counted here: sum(map(len, pieces)) built a map and an int per piece
        for is_name, text in self.parts:
            if not is_name:
                pieces.append(text)
                total += len(text)
            elif text in context:
                value = context[text]
                if type(value) is str:
                    pieces.append(value)  # a reference to the data: nothing is copied yet
                    total += len(value)
                else:
                    # printing a value allocates: stop before a big one is printed many times
                    piece = str(value)
                    converted += len(piece)
                    if converted > cap:
                        raise _too_long(cap)
                    pieces.append(piece)
                    total += len(piece)
            else:
                into = missing_names.get() if names is None else names
                if into is not None:
                    into.append(text)
        if total > cap:
            raise _too_long(cap)
        return "".join(pieces)


def _too_long(cap: int) -> TemplateLimitError:
    return TemplateLimitError(
        f"the rendered text is longer than {cap} characters "
        f"(limit template_max_output_chars = {cap})",
        limit="template_max_output_chars",
        maximum=cap,
    )


@dataclass(frozen=True, slots=True)
class _Leaf:
    path: str
    template: Template | _Interpolation


class TemplatedParams:
    """Action parameters with every template compiled once; ``render`` fills them per event."""

    __slots__ = ("_compiled", "_flat", "_reads_event", "_uses_jinja", "has_templates")

    def __init__(
        self,
        compiled: Any,
        has_templates: bool,
        uses_jinja: bool = True,
        reads_event: bool = True,
    ) -> None:
        self._compiled = compiled
        self.has_templates = has_templates
        # whether a template may read ``event`` (the envelope): the engine builds it only then
        self._reads_event = reads_event
        # plain {{ name }} templates need no render budget: they cost what they print
        self._uses_jinja = uses_jinja
        # the usual shape, rendered in one loop: a flat dict of plain templates, scalars and
        # constant lists or objects (send_email's empty ``cc``), copied per render
        # (a flag, not a second copy of the params: 10,000 definitions hold one each)
        flat = has_templates and not uses_jinja and isinstance(compiled, dict)
        self._flat = flat and all(
            type(v) is _Leaf or _is_scalar(v) or not _has_leaf(v) for v in compiled.values()
        )

    @property
    def reads_event(self) -> bool:
        """Whether a template may read the ``event`` variable (any jinja template may)."""
        return self._reads_event and self.has_templates

    @property
    def uses_jinja(self) -> bool:
        """Whether rendering runs a jinja template (which needs a render budget)."""
        return self._uses_jinja and self.has_templates

    def render(self, context: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The rendered parameters and the names of missing variables (deduplicated, in order).

        Raises TemplateError naming the parameter path when a template fails or is unsafe.
        """
        if not self.has_templates:
            return _copy(self._compiled), []
        names: list[str] = []
        if not self._uses_jinja:
            # plain {{ name }} templates: no context variable, no budget (the common case)
            cap = active_limits().template_max_output_chars
            if self._flat:
                rendered = {}
                value: Any = None
                try:
                    for key, value in self._compiled.items():
                        kind = type(value)
                        rendered[key] = (
                            value.template.render(context, cap, names)
                            if kind is _Leaf
                            else _copy(value)
                            if kind is list or kind is dict
                            else value
                        )
                except Exception as exc:  # only a template raises: value is the one that did
                    if type(value) is not _Leaf:
                        raise
                    raise _plain_failure(value, exc) from None
            else:
                rendered = _render_plain(self._compiled, context, cap, names)
            return rendered, list(dict.fromkeys(names)) if names else names
        token = missing_names.set(names)
        try:
            cap = active_limits().template_max_output_chars
            with render_budget() as budget:  # the action's templates share one (or the event's)
                rendered = _render(self._compiled, context, budget, cap)
        finally:
            missing_names.reset(token)
        return rendered, list(dict.fromkeys(names))


def compile_params(
    params: Mapping[str, Any], *, untemplated: frozenset[str], path: str
) -> TemplatedParams:
    """Compile the templates in ``params``; a template that does not compile or that the
    static check refuses is a DefinitionError at its path (DefinitionLimitError when the
    refusal is a limit)."""
    problems: list[tuple[str, str]] = []
    limits = active_limits()
    exceeded: list[DefinitionLimitError] = []
    found = [False]
    jinja = [False]
    event = [False]

    def walk(value: Any, where: str) -> Any:
        if isinstance(value, str) and is_template(value):
            try:
                template = _compile_template(value, limits)
            except DefinitionError as exc:
                problems.append((where, f"refused template: {exc.args[0]}"))
                if isinstance(exc, DefinitionLimitError):
                    exceeded.append(exc)
                return value
            except TemplateSyntaxError as exc:
                problems.append((where, f"invalid template: {exc.message} (line {exc.lineno})"))
                return value
            except (RecursionError, MemoryError, SyntaxError) as exc:
                # the checks keep templates well inside these; a last line, not a path
                reason = f"the template is too complex to compile ({type(exc).__name__})"
                problems.append((where, f"refused template: {reason}"))
                exceeded.append(
                    DefinitionLimitError(
                        reason, limit="template_max_depth", maximum=limits.template_max_depth
                    )
                )
                return value
            found[0] = True
            if isinstance(template, _Interpolation):
                event[0] = event[0] or (True, "event") in template.parts
            else:
                jinja[0] = event[0] = True
            return _Leaf(where, template)
        if isinstance(value, Mapping):
            return {key: walk(item, f"{where}.{key}") for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, f"{where}.{index}") for index, item in enumerate(value)]
        return value

    compiled = {
        key: value if key in untemplated else walk(value, f"{path}.{key}")
        for key, value in params.items()
    }
    if exceeded:
        first = exceeded[0]
        raise DefinitionLimitError(
            "invalid template",
            limit=first.limit,
            maximum=first.maximum,
            problems=problems,
        )
    if problems:
        raise DefinitionError("invalid template", problems=problems)
    return TemplatedParams(compiled, found[0], jinja[0], event[0])


@functools.lru_cache(maxsize=4096)
def _compile_template(source: str, limits: Limits) -> Template | _Interpolation:
    """Compiled once per distinct source and limits (definitions often share templates);
    immutable. A plain ``{{ name }}`` template needs no check beyond its length."""
    plain = _Interpolation.plain(source)
    if plain is not None and len(source) <= limits.template_max_chars:
        return plain
    template = compile_template(source, limits)  # the static check, then the instrumented code
    return _Interpolation.of(source) or template


def _render(value: Any, context: Mapping[str, Any], budget: RenderBudget | None, cap: int) -> Any:
    if isinstance(value, _Leaf):
        return _render_leaf(value, context, budget, cap)
    if isinstance(value, dict):
        return {key: _render(item, context, budget, cap) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, context, budget, cap) for item in value]
    return value


def _has_leaf(value: Any) -> bool:
    if type(value) is _Leaf:
        return True
    if isinstance(value, dict):
        return any(_has_leaf(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_leaf(item) for item in value)
    return False


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _plain_failure(leaf: _Leaf, exc: Exception) -> TemplateError:
    """A plain template's failure, named by its parameter path (it costs that action only)."""
    if isinstance(exc, TemplateLimitError):
        return TemplateLimitError(f"{leaf.path}: {exc}", limit=exc.limit, maximum=exc.maximum)
    return TemplateError(f"{leaf.path}: {type(exc).__name__}: {exc}")


def _render_plain(value: Any, context: Mapping[str, Any], cap: int, names: list[str]) -> Any:
    """:func:`_render` of params whose templates are all plain (see TemplatedParams)."""
    if type(value) is _Leaf:
        try:
            return value.template.render(context, cap, names)  # an _Interpolation here
        except Exception as exc:
            raise _plain_failure(value, exc) from None
    if isinstance(value, dict):
        return {key: _render_plain(item, context, cap, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_plain(item, context, cap, names) for item in value]
    return value


def _render_leaf(
    leaf: _Leaf, context: Mapping[str, Any], budget: RenderBudget | None, cap: int
) -> str:
    """``budget`` is open whenever the params hold a jinja template (see TemplatedParams)."""
    try:
        template = leaf.template
        if isinstance(template, _Interpolation):
            text = template.render(context, cap)
        elif budget is None:
            raise TemplateError("a jinja template rendered without a budget")
        else:
            budget.produced = 0
            budget.tick()
            text = template.render(context)
    except TemplateLimitError as exc:
        raise TemplateLimitError(
            f"{leaf.path}: {exc}", limit=exc.limit, maximum=exc.maximum
        ) from None
    except SecurityError as exc:
        raise TemplateError(f"{leaf.path}: unsafe template: {exc}") from None
    except TemplateError as exc:
        raise TemplateError(f"{leaf.path}: {exc}") from None
    except Exception as exc:  # a failing template costs this action, never the whole plan
        raise TemplateError(f"{leaf.path}: {type(exc).__name__}: {exc}") from None
    if len(text) > cap:
        raise TemplateLimitError(
            f"{leaf.path}: {_too_long(cap)}", limit="template_max_output_chars", maximum=cap
        )
    return text


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
