"""Sandboxed ``{{ placeholder }}`` rendering of action parameters.

Templates run in jinja2's ImmutableSandboxedEnvironment with no globals: a template sees the
event data (top-level keys) and ``event`` (the envelope: id, type, source, subject, time; a data
key named ``event`` wins, as in conditions), can
use filters (``{{ total | round(2) }}``), and cannot reach Python internals (``__class__``,
``__globals__``, ``mro`` ...) or mutate anything; such an attempt fails the action.

Missing variables render as an empty string and their names are reported in the rendered
action's ``missing`` list, so a typo is visible without failing the whole workflow. Use
``{{ name | default("there") }}`` to choose a fallback; that is not reported.
"""

from __future__ import annotations

import functools
import keyword
import operator
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final

from jinja2 import ChainableUndefined, Template, TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from eventrules.errors import DefinitionError, TemplateError

__all__ = ["MAX_RENDERED_CHARS", "TemplatedParams", "compile_params", "is_template"]

MAX_RENDERED_CHARS: Final = 100_000
_MARKERS: Final = ("{{", "{%", "{#")
_missing_names: ContextVar[list[str] | None] = ContextVar("missing_names", default=None)


class _RecordingUndefined(ChainableUndefined):
    """Renders as empty and records its name; an unsafe access still raises SecurityError."""

    __slots__ = ()

    def __str__(self) -> str:
        if self._undefined_exception is SecurityError:
            self._fail_with_undefined_error()
        names = _missing_names.get()
        if names is not None and self._undefined_name is not None:
            names.append(self._undefined_name)
        return ""


class _Environment(ImmutableSandboxedEnvironment):
    # repetition and powers are the two ways a one-line template can exhaust memory or CPU
    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        value = super().getattr(obj, attribute)
        # probing for a dunder that is not data is an escape attempt: fail it, do not render ""
        if isinstance(value, Undefined) and attribute.startswith("__"):
            return self.unsafe_undefined(obj, attribute)
        return value

    def call_binop(self, context: Context, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int) and abs(right) > 100:
                raise SecurityError("exponent too large")
            return operator.pow(left, right)
        for sized, count in ((left, right), (right, left)):
            sequence = isinstance(sized, str | list | tuple) and isinstance(count, int)
            if sequence and len(sized) * count > MAX_RENDERED_CHARS:
                raise SecurityError("repetition result too large")
        return operator.mul(left, right)


_ENVIRONMENT: Final = _Environment(
    undefined=_RecordingUndefined, autoescape=False, keep_trailing_newline=True
)
_ENVIRONMENT.globals.clear()


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
        body = _ENVIRONMENT.parse(source).body
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

    def render(self, context: Mapping[str, Any]) -> str:
        pieces = []
        for is_name, text in self.parts:
            if not is_name:
                pieces.append(text)
            elif text in context:
                value = context[text]
                pieces.append(value if type(value) is str else str(value))
            else:
                names = _missing_names.get()
                if names is not None:
                    names.append(text)
        return "".join(pieces)


@dataclass(frozen=True, slots=True)
class _Leaf:
    path: str
    template: Template | _Interpolation


class TemplatedParams:
    """Action parameters with every template compiled once; ``render`` fills them per event."""

    __slots__ = ("_compiled", "has_templates")

    def __init__(self, compiled: Any, has_templates: bool) -> None:
        self._compiled = compiled
        self.has_templates = has_templates

    def render(self, context: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The rendered parameters and the names of missing variables (deduplicated, in order).

        Raises TemplateError naming the parameter path when a template fails or is unsafe.
        """
        if not self.has_templates:
            return _copy(self._compiled), []
        names: list[str] = []
        token = _missing_names.set(names)
        try:
            rendered = _render(self._compiled, context)
        finally:
            _missing_names.reset(token)
        return rendered, list(dict.fromkeys(names))


def compile_params(
    params: Mapping[str, Any], *, untemplated: frozenset[str], path: str
) -> TemplatedParams:
    """Compile the templates in ``params``; a syntax error is a DefinitionError at its path."""
    problems: list[tuple[str, str]] = []
    found = [False]

    def walk(value: Any, where: str) -> Any:
        if isinstance(value, str) and is_template(value):
            try:
                template = _compile_template(value)
            except TemplateSyntaxError as exc:
                problems.append((where, f"invalid template: {exc.message} (line {exc.lineno})"))
                return value
            found[0] = True
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
    if problems:
        raise DefinitionError("invalid template", problems=problems)
    return TemplatedParams(compiled, found[0])


@functools.lru_cache(maxsize=4096)
def _compile_template(source: str) -> Template | _Interpolation:
    """Compiled once per distinct source (definitions often share templates); immutable."""
    fast = _Interpolation.plain(source) or _Interpolation.of(source)
    return fast if fast is not None else _ENVIRONMENT.from_string(source)


def _render(value: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(value, _Leaf):
        try:
            text = value.template.render(context)
        except SecurityError as exc:
            raise TemplateError(f"{value.path}: unsafe template: {exc}") from None
        except Exception as exc:  # a failing template costs this action, never the whole plan
            raise TemplateError(f"{value.path}: {type(exc).__name__}: {exc}") from None
        if len(text) > MAX_RENDERED_CHARS:
            raise TemplateError(f"{value.path}: rendered text exceeds {MAX_RENDERED_CHARS} chars")
        return text
    if isinstance(value, dict):
        return {key: _render(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, context) for item in value]
    return value


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
