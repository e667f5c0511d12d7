"""The jinja2 sandbox action templates render in, with every resource bounded while it works.

jinja's ImmutableSandboxedEnvironment keeps templates away from Python internals and from
mutating data; it does not bound what a template costs. Here every way a template can make
work or memory is either refused by :mod:`eventrules.workflows.templating_checks` or checked
*before* it happens, through the sandbox's hooks and a small rewrite of the compiled tree:

* arithmetic (``intercepted_binops``): a string or list from ``+`` or ``*`` is at most
  ``template_max_output_chars`` long, an integer from ``+ * **`` at most Python's
  ``int_max_str_digits`` digits (so ``(9**100)**100`` is refused before it is computed);
* calls (``call``) and filters (wrapped): size arguments (``center(10**9)``, ``indent``,
  ``truncate``, ``batch``, ``slice``, ``ljust`` ...) and the estimated size of what
  ``join``, ``replace``, ``format``, ``wordwrap``, ``tojson`` and ``%`` would build are checked
  first; only the methods listed here are callable on strings, lists, dicts and numbers;
* output: every ``{{ value }}``, literal text inside loops and ``~`` concatenations are counted
  as they are produced (``{% set %}`` and ``{% filter %}`` blocks included), so a render stops
  at ``template_max_output_chars`` instead of building a gigabyte and measuring it after;
* loops: every ``{% for %}`` iteration counts against ``template_max_loop_iterations``, and
  every hook checks the time (CPU time, see :class:`RenderBudget`) against
  ``template_max_render_seconds``: both are shared by all the templates rendered for one
  event (see :class:`render_budget`).

Each limit reached raises :class:`~eventrules.errors.TemplateLimitError` naming the limit.
"""

from __future__ import annotations

import functools
import math
import re
import string
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any, Final

from jinja2 import ChainableUndefined, Template, Undefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from eventrules.errors import TemplateError, TemplateLimitError
from eventrules.limits import Limits, active_limits
from eventrules.workflows.templating_checks import ALLOWED_FILTERS, check_source, check_tree

__all__ = [
    "ENVIRONMENT",
    "RenderBudget",
    "compile_template",
    "missing_names",
    "render_budget",
    "text_size",
]

missing_names: ContextVar[list[str] | None] = ContextVar("missing_names", default=None)


class _RecordingUndefined(ChainableUndefined):
    """Renders as empty and records its name; an unsafe access still raises SecurityError."""

    __slots__ = ()

    def __str__(self) -> str:
        if self._undefined_exception is SecurityError:
            self._fail_with_undefined_error()
        names = missing_names.get()
        name = self._undefined_name
        if names is not None and name is not None:
            # a subscript's key can be any value (a list is unhashable): names are text
            names.append(name if isinstance(name, str) else repr(name))
        return ""


def _limit_error(limit: str, maximum: float, what: str) -> TemplateLimitError:
    return TemplateLimitError(f"{what} (limit {limit} = {maximum})", limit=limit, maximum=maximum)


@dataclass(slots=True)
class RenderBudget:
    """What the templates rendered for one event may still spend.

    ``produced`` counts the characters of the template being rendered; the caller resets it
    per template. Iterations and the time are shared by every template of the event.

    Time is the thread's CPU time, from the first :meth:`tick`: a render that waited (a
    loaded machine, a container's CPU quota) has not worked, and must not fail for it. The
    hooks compare the cheap wall clock with ``deadline``; only once it passes is the CPU
    clock read, and the deadline moved by the time spent waiting.
    """

    limits: Limits
    deadline: float = -math.inf
    cpu_started: float | None = None
    iterations: int = 0
    produced: int = 0

    def tick(self) -> None:
        if time.perf_counter() <= self.deadline:
            return
        seconds = self.limits.template_max_render_seconds
        if self.cpu_started is None:  # the first jinja template of the event starts the clock
            self.cpu_started = time.thread_time()
            self.deadline = time.perf_counter() + seconds
            return
        spent = time.thread_time() - self.cpu_started
        if spent > seconds:
            raise _limit_error("template_max_render_seconds", seconds, "rendering took too long")
        self.deadline = time.perf_counter() + (seconds - spent)

    def iterate(self) -> None:
        self.iterations += 1
        if self.iterations > self.limits.template_max_loop_iterations:
            raise _limit_error(
                "template_max_loop_iterations",
                self.limits.template_max_loop_iterations,
                "too many loop iterations",
            )
        if time.perf_counter() > self.deadline:
            self.tick()

    def produce(self, size: int) -> None:
        self.produced += size
        if self.produced > self.limits.template_max_output_chars:
            raise _limit_error(
                "template_max_output_chars",
                self.limits.template_max_output_chars,
                "the template produced too much text",
            )


_budget: ContextVar[RenderBudget | None] = ContextVar("render_budget", default=None)


class render_budget:  # noqa: N801 - used like contextlib's context managers
    """``with render_budget():`` opens the budget for one event's renders, or joins the one
    already open (a class, not a generator: it runs per event on the hot path)."""

    __slots__ = ("_token",)

    def __init__(self) -> None:
        self._token: Token[RenderBudget | None] | None = None

    def __enter__(self) -> RenderBudget:
        budget = _budget.get()
        if budget is None:
            budget = RenderBudget(active_limits())
            self._token = _budget.set(budget)
        return budget

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _budget.reset(self._token)
            self._token = None


def _tick() -> None:
    budget = _budget.get()
    # the deadline is compared here: a method call per hook was a visible share of a render
    if budget is not None and time.perf_counter() > budget.deadline:
        budget.tick()


_DIGITS_PER_BIT: Final = math.log10(2)


def _max_int_bits() -> int:
    # Python refuses to print integers with more digits; a template has no use for them either
    return int(sys.get_int_max_str_digits() / _DIGITS_PER_BIT) or sys.maxsize


def _scalar_size(value: Any) -> int | None:
    """The printed size of a scalar (None for containers and other objects)."""
    kind = type(value)
    if kind is str:
        return len(value)
    if kind is int:
        return int(value.bit_length() * _DIGITS_PER_BIT) + 2
    if kind is float:
        return 24
    if value is None or kind is bool:
        return 5
    return None


def text_size(value: Any, limit: int, *, indent: int = 0) -> int:
    """About ``len(str(value))`` (or its JSON with ``indent``), walked without building it.

    Exact for a string; for containers an estimate (quotes, separators and indentation
    counted) that stops as soon as it passes ``limit``, so a list of a million references to
    one long string costs no more than the limit to measure.
    """
    scalar = _scalar_size(value)
    if scalar is not None:
        return scalar
    if isinstance(value, str):
        return len(value)
    total = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        total += indent * depth + (1 if indent else 0)
        size = _scalar_size(item)
        if size is not None:
            total += size + 2
        elif isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, Undefined):
            if item._undefined_exception is SecurityError:  # an unsafe access, even in a list
                item._fail_with_undefined_error()
        elif isinstance(item, int | float):
            total += 24
        elif isinstance(item, Mapping):
            total += 2
            for key, member in item.items():
                total += 4
                stack.append((key, depth + 1))
                stack.append((member, depth + 1))
                if total > limit:
                    return total
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2
            for member in item:
                total += 2
                stack.append((member, depth + 1))
                if total > limit:
                    return total
        else:
            total += 64  # jinja's own objects (loop, cycler): short representations
        if total > limit:
            return total
    return total


def _check_text(value: Any, what: str) -> None:
    cap = active_limits().template_max_output_chars
    if text_size(value, cap) > cap:
        raise _limit_error("template_max_output_chars", cap, f"{what} would be too long")


def _check_size_argument(value: Any, what: str) -> None:
    cap = active_limits().template_max_output_chars
    if isinstance(value, int) and abs(value) > cap:
        raise _limit_error("template_max_output_chars", cap, f"{what} {value} is too large")


_SIZED: Final = frozenset({str, list, tuple, dict})


def _check_result(result: Any) -> Any:
    kind = type(result)
    if kind in _SIZED or (kind is not int and isinstance(result, str | list | tuple | dict)):
        cap = active_limits().template_max_output_chars
        if len(result) > cap:
            raise _limit_error("template_max_output_chars", cap, "a value would be too long")
    elif kind is int and result.bit_length() > _max_int_bits():
        raise _limit_error("int_max_str_digits", sys.get_int_max_str_digits(), "number too large")
    return result


_SEQUENCES: Final = (str, list, tuple)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    cap = active_limits().template_max_output_chars
    if operator == "**" and type(left) is int and type(right) is int and right > 0:
        if abs(left) > 1 and math.log2(abs(left)) * right > _max_int_bits():
            raise _limit_error(
                "int_max_str_digits", sys.get_int_max_str_digits(), "power too large"
            )
    elif operator == "*":
        for sized, count in ((left, right), (right, left)):
            if (
                isinstance(sized, _SEQUENCES)
                and isinstance(count, int)
                and len(sized) * count > cap
            ):
                raise _limit_error("template_max_output_chars", cap, "repetition result too long")
        integers = type(left) is int and type(right) is int
        if integers and left.bit_length() + right.bit_length() > _max_int_bits():
            raise _limit_error(
                "int_max_str_digits", sys.get_int_max_str_digits(), "product too large"
            )
    elif operator == "+" and isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        if len(left) + len(right) > cap:
            raise _limit_error("template_max_output_chars", cap, "concatenation too long")
    elif operator == "%" and isinstance(left, str):
        _check_percent_format(left, right)


_PERCENT_SPEC: Final = re.compile(
    r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[diouxXeEfFgGcrsa%]"
)


_HUGE_WIDTH: Final = 10**10


def _padding(widths: Iterable[str]) -> int:
    """The characters a format's widths and precisions can add (refusing ``*`` widths)."""
    total = 0
    for width in widths:
        if not width.isdigit():
            raise TemplateError("format: widths must be written in the format string")
        total += int(width) if len(width) < 10 else _HUGE_WIDTH
    return total


# format strings are usually literals in the template: measure each once
@functools.lru_cache(maxsize=512)
def _percent_padding(template: str) -> int:
    return _padding(part for spec in _PERCENT_SPEC.findall(template) for part in spec if part)


@functools.lru_cache(maxsize=512)
def _brace_padding(template: str) -> int:
    widths: list[str] = []
    for _, field, spec, _ in string.Formatter().parse(template):
        if field is not None and spec:
            if "{" in spec:
                raise TemplateError("format: nested replacement fields are not supported")
            widths += re.findall(r"\d+", spec)
    return _padding(widths)


def _check_formatted(template: str, padding: int, values: Iterable[Any]) -> None:
    cap = active_limits().template_max_output_chars
    size = len(template) + padding
    if size > cap:
        raise _limit_error("template_max_output_chars", cap, "format widths too large")
    for value in values:
        size += text_size(value, cap)
        if size > cap:
            raise _limit_error("template_max_output_chars", cap, "formatted text would be too long")


def _check_percent_format(template: str, values: Any) -> None:
    # short templates are cached; a long one (from data) is measured each time, not kept
    padding = (_percent_padding if len(template) <= 256 else _percent_padding.__wrapped__)(template)
    if isinstance(values, Mapping):
        members: Iterable[Any] = values.values()
    elif isinstance(values, tuple | list):
        members = values
    else:
        members = (values,)
    _check_formatted(template, padding, members)


def _check_brace_format(template: str, args: Any, kwargs: Any) -> None:
    padding = (_brace_padding if len(template) <= 256 else _brace_padding.__wrapped__)(template)
    _check_formatted(template, padding, [*args, *kwargs.values()])


def _replace_check(s: Any, old: str, new: str, count: int | None = None) -> None:
    text = s if isinstance(s, str) else str(s)
    found = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        found = min(found, count)
    cap = active_limits().template_max_output_chars
    if len(text) + found * max(0, len(new) - len(old)) > cap:
        raise _limit_error("template_max_output_chars", cap, "replace would build too long a text")


def _join_check(value: Iterable[Any], d: str = "", attribute: Any = None) -> list[Any]:
    items = _bounded_list(value)
    cap = active_limits().template_max_output_chars
    if text_size(items, cap) + len(str(d)) * len(items) > cap:
        raise _limit_error("template_max_output_chars", cap, "join would build too long a text")
    return items


def _bounded_list(value: Iterable[Any]) -> list[Any]:
    """The items of ``value`` (a generator from map/select is consumed once, so it is kept)."""
    if isinstance(value, list):
        return value
    cap = active_limits().template_max_output_chars
    items = []
    for item in value:
        items.append(item)
        if len(items) > cap:
            raise _limit_error("template_max_output_chars", cap, "too many items")
    return items


def _indent_check(s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> None:
    text = s if isinstance(s, str) else str(s)
    _check_size_argument(width, "indent width")
    step = len(width) if isinstance(width, str) else max(0, int(width))
    cap = active_limits().template_max_output_chars
    if len(text) + step * (text.count("\n") + 1) > cap:
        raise _limit_error("template_max_output_chars", cap, "indent would build too long a text")


def _wordwrap_check(
    s: Any,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> None:
    text = s if isinstance(s, str) else str(s)
    _check_size_argument(width, "wordwrap width")
    # every line is at least one character: at most len(text) + 1 separators
    separator = len(wrapstring) if isinstance(wrapstring, str) else 1
    cap = active_limits().template_max_output_chars
    if len(text) + (len(text) + 1) * separator > cap:
        raise _limit_error("template_max_output_chars", cap, "wordwrap would build too long a text")


def _tojson_check(value: Any, indent: int | None = None) -> None:
    _check_size_argument(indent, "tojson indent")
    cap = active_limits().template_max_output_chars
    # escaped characters (\u00e9) may make the JSON a few times longer than this estimate
    if text_size(value, cap, indent=indent or 0) > cap:
        raise _limit_error("template_max_output_chars", cap, "tojson would build too long a text")


def _sum_check(iterable: Any, attribute: Any = None, start: Any = 0) -> None:
    if not isinstance(start, int | float) or isinstance(start, bool):
        raise TemplateError("sum adds numbers: start must be a number")


def _format_check(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_percent_format(value if isinstance(value, str) else str(value), kwargs or args)


def _size_argument_check(name: str) -> Callable[..., None]:
    def check(value: Any, size: Any = None, *args: Any, **kwargs: Any) -> None:
        _check_size_argument(size if size is not None else kwargs.get(name), name)

    return check


# (check on the filter's own arguments, minus jinja's context/environment argument); a check
# returning a value replaces the subject (join keeps a consumed generator's items)
_FILTER_CHECKS: Final[dict[str, Callable[..., Any]]] = {
    "replace": _replace_check,
    "join": _join_check,
    "indent": _indent_check,
    "wordwrap": _wordwrap_check,
    "tojson": _tojson_check,
    "sum": _sum_check,
    "format": _format_check,
    "center": _size_argument_check("width"),
    "truncate": _size_argument_check("length"),
    "batch": _size_argument_check("linecount"),
    "slice": _size_argument_check("slices"),
}
# filters that turn their subject into a string: a huge list must not be printed to find out
_STRINGIFYING: Final = frozenset(
    {"capitalize", "center", "e", "escape", "forceescape", "format", "indent", "lower",
     "replace", "safe", "string", "striptags", "title", "trim", "truncate", "upper",
     "urlencode", "wordcount", "wordwrap"}
)  # fmt: skip


_UNCHECKED_FILTERS: Final = ALLOWED_FILTERS - _STRINGIFYING - _FILTER_CHECKS.keys()


def _guard_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    if name in _UNCHECKED_FILTERS:
        return function
    passes_context = getattr(function, "jinja_pass_arg", None) is not None
    check = _FILTER_CHECKS.get(name)
    stringifies = name in _STRINGIFYING

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        own = args[1:] if passes_context else args
        if not own:
            return function(*args, **kwargs)
        # a string subject is already in memory: only other values must be measured first
        if stringifies and type(own[0]) is not str:
            _check_text(own[0], f"the {name} filter's input")
        if check is None:
            return function(*args, **kwargs)
        replacement = check(*own, **kwargs)
        if replacement is not None:
            args = (*args[: len(args) - len(own)], replacement, *own[1:])
        return _check_result(function(*args, **kwargs))

    return guarded


_STR_METHODS: Final = frozenset(
    {"capitalize", "casefold", "center", "count", "endswith", "find", "index", "isalnum",
     "isalpha", "isascii", "isdecimal", "isdigit", "islower", "isnumeric", "isspace",
     "istitle", "isupper", "join", "ljust", "lower", "lstrip", "partition", "removeprefix",
     "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip",
     "split", "splitlines", "startswith", "strip", "swapcase", "title", "upper", "zfill",
     "escape", "striptags", "unescape"}
)  # fmt: skip
_MAPPING_METHODS: Final = frozenset({"get", "items", "keys", "values"})
_SEQUENCE_METHODS: Final = frozenset({"count", "index"})
_NUMBER_METHODS: Final = frozenset({"bit_length", "is_integer"})
_SIZED_METHODS: Final = frozenset({"center", "ljust", "rjust", "zfill"})


def _callable_methods(owner: Any) -> frozenset[str] | None:
    """The methods templates may call on a builtin value; None for jinja's own objects."""
    if isinstance(owner, str):
        return _STR_METHODS
    if isinstance(owner, Mapping):
        return _MAPPING_METHODS
    if isinstance(owner, list | tuple):
        return _SEQUENCE_METHODS
    if isinstance(owner, int | float):
        return _NUMBER_METHODS
    if isinstance(owner, bytes | bytearray | set | frozenset | type):
        return frozenset()
    return None


def _check_str_method(owner: str, name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    if name in _SIZED_METHODS and args:
        _check_size_argument(args[0], f"{name} width")
    elif name == "replace" and len(args) >= 2:
        _replace_check(owner, *args)
    elif name == "join" and args:
        items = _bounded_list(args[0])
        cap = active_limits().template_max_output_chars
        if text_size(items, cap) + len(owner) * len(items) > cap:
            raise _limit_error("template_max_output_chars", cap, "join would build too long a text")
        args = (items, *args[1:])
    return args


class _CountedLoop:
    """What a ``{% for %}`` iterates: the original iterable, each item counted, with the
    literal text its body prints on every iteration (``text``) counted as produced."""

    __slots__ = ("items", "text")

    def __init__(self, items: Any, text: int = 0) -> None:
        self.items = items
        self.text = text

    def __len__(self) -> int:
        return len(self.items)  # a TypeError tells jinja's loop to count by iterating

    def __iter__(self) -> Iterator[Any]:
        budget = _budget.get()
        text = self.text
        for item in self.items:
            if budget is not None:
                budget.iterate()
                if text:
                    budget.produced += text
                    if budget.produced > budget.limits.template_max_output_chars:
                        budget.produce(0)  # raises, naming the limit
            yield item


def _concat(*pieces: Any) -> str:
    """``a ~ b``, measured before it is built."""
    cap = active_limits().template_max_output_chars
    total = 0
    for piece in pieces:
        total += text_size(piece, cap)
        if total > cap:
            raise _limit_error("template_max_output_chars", cap, "concatenation too long")
    return "".join([str(piece) for piece in pieces])


def _literal(text: str) -> str:
    """Literal text inside a loop body: made an expression so :func:`_finalize` counts it."""
    return text


def _range(*bounds: int) -> range:
    numbers = range(*bounds)
    maximum = active_limits().template_max_loop_iterations
    if len(numbers) > maximum:
        raise _limit_error("template_max_loop_iterations", maximum, "range too long")
    return numbers


def _finalize(value: Any) -> Any:
    """Every ``{{ value }}`` passes here before it is printed: count it, or stop."""
    budget = _budget.get()
    if budget is None:
        return value
    if type(value) is str:
        budget.produce(len(value))
    elif not isinstance(value, Undefined):
        budget.produce(text_size(value, budget.limits.template_max_output_chars))
    return value


class _Instrument(NodeTransformer):
    """Rewrites a checked tree so loops, loop-body text and ``~`` go through the budget."""

    def __init__(self) -> None:
        self.loops = 0

    @staticmethod
    def _call(name: str, args: list[nodes.Expr], lineno: int) -> nodes.Call:
        return nodes.Call(
            nodes.EnvironmentAttribute(name, lineno=lineno), args, [], None, None, lineno=lineno
        )

    def visit_For(self, node: nodes.For) -> nodes.Node:  # noqa: N802 - the visitor's naming
        # text printed unconditionally on every iteration is counted by the loop itself (no
        # call per piece); text inside {% if %} and other blocks is counted where it prints
        direct = node.test is None  # with a filter, not every item reaches the body
        text = sum(
            len(piece.data)
            for child in node.body
            if direct and isinstance(child, nodes.Output)
            for piece in child.nodes
            if isinstance(piece, nodes.TemplateData)
        )
        counted = [self.visit(node.iter), nodes.Const(text, lineno=node.lineno)]
        node.iter = self._call("counted_loop", counted, node.lineno)
        self.loops += 1
        for child in node.body:
            if direct and isinstance(child, nodes.Output):
                child.nodes = [
                    piece if isinstance(piece, nodes.TemplateData) else self.visit(piece)
                    for piece in child.nodes
                ]
        node.body = [
            child if direct and isinstance(child, nodes.Output) else self.visit(child)
            for child in node.body
        ]
        node.else_ = [self.visit(child) for child in node.else_]
        self.loops -= 1
        if node.test is not None:
            node.test = self.visit(node.test)
        return node

    def visit_TemplateData(self, node: nodes.TemplateData) -> nodes.Node:  # noqa: N802
        if not self.loops:
            return node
        return self._call("literal", [nodes.Const(node.data, lineno=node.lineno)], node.lineno)

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:  # noqa: N802
        children = [self.visit(child) for child in node.nodes]
        return self._call("concat_checked", children, node.lineno)


class SandboxEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with the hooks above; one instance serves every template."""

    # every operator that can build a large value is intercepted (this also stops jinja from
    # evaluating constant expressions such as 'a' * 10**9 while compiling)
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self) -> None:
        super().__init__(
            undefined=_RecordingUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            finalize=_finalize,
        )
        self.globals.clear()
        self.globals["range"] = _range
        # filters whose output is bounded by their input run as they are; the others checked
        self.filters = {
            name: FILTERS[name]
            if name in _UNCHECKED_FILTERS
            else _guard_filter(name, FILTERS[name])
            for name in ALLOWED_FILTERS
        }
        self.literal = _literal
        self.concat_checked = _concat
        self.counted_loop = _CountedLoop

    def getattr(self, obj: Any, attribute: str) -> Any:
        value = super().getattr(obj, attribute)
        # probing for a dunder that is not data is an escape attempt: fail it, do not render ""
        if isinstance(value, Undefined) and attribute.startswith("__"):
            return self.unsafe_undefined(obj, attribute)
        return value

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        allowed = _callable_methods(obj)
        return allowed is None or not callable(value) or attr in allowed

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template: str = value.__self__
        is_map = value.__name__ == "format_map"

        def checked(*args: Any, **kwargs: Any) -> str:
            _tick()
            if is_map:
                mapping = args[0] if args and isinstance(args[0], Mapping) else {}
                _check_brace_format(template, (), mapping)
            else:
                _check_brace_format(template, args, kwargs)
            return _check_result(wrapped(*args, **kwargs))  # type: ignore[no-any-return]

        return checked

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        _check_binop(operator, left, right)
        try:
            result = self.binop_table[operator](left, right)
        except ArithmeticError as exc:
            raise TemplateError(f"{type(exc).__name__}: {exc}") from None
        return _check_result(result)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        if __obj is _literal or __obj is _concat or __obj is _CountedLoop:
            return __obj(*args)
        _tick()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            args = _check_str_method(owner, getattr(__obj, "__name__", ""), args)
        return _check_result(super().call(__context, __obj, *args, **kwargs))


ENVIRONMENT: Final = SandboxEnvironment()


def compile_template(source: str, limits: Limits) -> Template:
    """Check ``source`` (:mod:`~eventrules.workflows.templating_checks`), then compile it
    instrumented.

    Raises DefinitionError (the reason is its message) or jinja's TemplateSyntaxError.
    """
    check_source(ENVIRONMENT, source, limits)
    tree = ENVIRONMENT.parse(source)
    check_tree(tree, limits)
    _Instrument().visit(tree)
    return ENVIRONMENT.from_string(tree)
