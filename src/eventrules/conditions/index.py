"""A predicate index: which of many compiled conditions hold for one set of facts, cheaply.

Every member (a workflow, a rule) is one bit of a Python int, in the order the caller gave
(plan order): member 0 is the highest bit, so the set bits read left to right in ``bin()`` are
the matches in order. Each top-level AND member of a condition that reads a single field with
value-only operators (``==``, ``!=``, ``in``, ``not_in``, ``<``, ``<=``, ``>``, ``>=``,
``between``, ``exists``, ``is_empty`` and their negations, nested ``any``/``not`` of those on
the same field) is folded into that field's *constraint*. Per field, the values an event can
carry fall into a few regions inside which every constraint gives the same answer: missing,
null, true, false, NaN, each literal number and string named by any member, and the open
intervals between consecutive literals. Each region has a precomputed mask of the members
whose constraint holds there (members that do not read the field are always set), so matching
an event is one region lookup (a dict probe or a bisect) and one ``&`` per field, whatever the
number of members. An ``any`` whose members each read one field that way is one lookup too:
the members outside it, OR each field's branch masks. Anything else (a regex, ``contains``,
relative time, an ``any`` mixing those in) is a residual, tested only for the members that
survive the masks, each identical residual once per event. A mask is as wide as the index, so
more than 4,096 members are indexed in chunks, and a field whose masks would take more than
4 MiB is tested per member like a residual: memory stays linear in the members.

Masks are filled by running the members' own compiled tests on one value of each region, so
the index gives exactly what testing every condition gives: same kinds rules, same NaN and
bool-versus-number answers. A value of another kind (an array, an object, a datetime) is not
classified; its mask is computed on the spot by testing the constraints on it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Generic, TypeVar

from eventrules.conditions.compiler import CompiledCondition, Conjunct, Predicate
from eventrules.conditions.facts import DERIVED_FACTS
from eventrules.conditions.operators import OPERATORS
from eventrules.conditions.paths import Getter, compile_path
from eventrules.conditions.tree import AllOf, AnyOf, Compare, ConditionNode, Not
from eventrules.conditions.values import MISSING, is_number

__all__ = ["ConditionIndex", "reads_derived_facts"]

T = TypeVar("T")
ValueTest = Callable[[Any], bool]

# operators whose answer depends only on the value's kind and its place among the literals
_INDEXABLE: Final = frozenset(
    {
        "eq",
        "ne",
        "gt",
        "gte",
        "lt",
        "lte",
        "in",
        "not_in",
        "between",
        "exists",
        "not_exists",
        "is_empty",
        "is_not_empty",
    }
)
_EMPTINESS: Final = frozenset({"is_empty", "is_not_empty"})
# members per index: a mask is a Python int as wide as its index, so wider ones get chunked
_CHUNK: Final = 4096
# the most the masks of one field may take; past it the field is tested per candidate
_FIELD_BYTES: Final = 4 << 20
_NAN: Final = float("nan")


def reads_derived_facts(node: ConditionNode) -> bool:
    """Whether ``node`` may read a fact derived from the event time (see :mod:`.facts`)."""
    if isinstance(node, Compare):
        relative = OPERATORS[node.operator].make_relative_test is not None
        return relative or node.field.partition(".")[0] in DERIVED_FACTS
    children = (node.child,) if isinstance(node, Not) else node.children
    return any(reads_derived_facts(child) for child in children)


def _single_field(node: ConditionNode) -> str | None:
    """The one field ``node`` reads when every comparison in it is indexable, else None."""
    if isinstance(node, Compare):
        return node.field if node.operator in _INDEXABLE else None
    children = (node.child,) if isinstance(node, Not) else node.children
    fields = {_single_field(child) for child in children}
    if len(fields) != 1:
        return None
    return fields.pop()


def _branches(node: ConditionNode) -> dict[str, list[ConditionNode]] | None:
    """An ``any`` whose every member reads one field indexably, its members by field; or None."""
    if not isinstance(node, AnyOf):
        return None
    by_field: dict[str, list[ConditionNode]] = {}
    for child in node.children:
        path = _single_field(child)
        if path is None:
            return None
        by_field.setdefault(path, []).append(child)
    return by_field


def _value_test(node: ConditionNode) -> ValueTest:
    """``node`` as a test on the field's value (the field is read once, by the index)."""
    if isinstance(node, Compare):
        operator = OPERATORS[node.operator]
        if operator.make_test is None:  # pragma: no cover - relative operators are not indexable
            raise TypeError(f"operator {operator.name} has no value test")
        return operator.make_test(operator.prepare(node.value))
    if isinstance(node, Not):
        inner = _value_test(node.child)
        return lambda value: not inner(value)
    tests = [_value_test(child) for child in node.children]
    if isinstance(node, AllOf):
        return lambda value: all(test(value) for test in tests)
    return lambda value: any(test(value) for test in tests)


def _literals(node: ConditionNode, numbers: set[Any], strings: set[str]) -> None:
    """Collect the scalar literals ``node`` compares with, by kind."""
    if isinstance(node, Not):
        _literals(node.child, numbers, strings)
        return
    if isinstance(node, AllOf | AnyOf):
        for child in node.children:
            _literals(child, numbers, strings)
        return
    if node.operator in _EMPTINESS:
        strings.add("")
    value = node.value
    for item in value if isinstance(value, list) else (value,):
        if is_number(item):
            numbers.add(item)
        elif isinstance(item, str):
            strings.add(item)


def _number_between(low: Any, high: Any) -> Any:
    """A number strictly between ``low`` and ``high`` (None: unbounded), or None if none is."""
    candidates: list[Any] = []
    if low is None:
        candidates.append(-math.inf)
        if high is not None and not math.isinf(high):
            candidates.append(math.floor(high) - 1)
    else:
        if not math.isinf(low):
            candidates.append(math.floor(low) + 1)
            try:
                as_float = float(low)
            except OverflowError:
                as_float = math.inf
            candidates.extend((as_float, math.nextafter(as_float, math.inf)))
        candidates.append(math.inf)
    for candidate in candidates:
        if (low is None or low < candidate) and (high is None or candidate < high):
            return candidate
    return None


def _string_between(low: str | None, high: str | None) -> str | None:
    """A string strictly between ``low`` and ``high`` (None: unbounded), or None if none is."""
    candidate = "" if low is None else low + "\x00"
    if (low is None or low < candidate) and (high is None or candidate < high):
        return candidate
    return None


class _Constraint:
    """One member's single-field test on one field (``holds`` is called per region)."""

    __slots__ = ("bit", "holds")

    def __init__(self, bit: int, tests: list[ValueTest]) -> None:
        self.bit = bit
        if len(tests) == 1:
            self.holds = tests[0]
        else:
            self.holds = lambda value: all(test(value) for test in tests)


class _Ordered:
    """Masks over one ordered kind (numbers or strings): a dict of literal points, the gaps."""

    __slots__ = ("gaps", "literals", "points")

    def __init__(
        self,
        literals: list[Any],
        between: Callable[[Any, Any], Any],
        constraints: list[_Constraint],
        fixed: int,
        member_literals: list[set[Any]],
    ) -> None:
        self.literals = literals
        count = len(literals)
        # region 2i+1 is literals[i]; region 2i is the gap below it, region 2*count the top gap
        representatives: list[Any] = []
        for index in range(count + 1):
            low = literals[index - 1] if index else None
            high = literals[index] if index < count else None
            representatives.append(between(low, high))
            if index < count:
                representatives.append(literals[index])
        toggles = [0] * (2 * count + 1)
        start = fixed
        for constraint, own in zip(constraints, member_literals, strict=True):
            positions = sorted({bisect.bisect_left(literals, literal) for literal in own})
            # the member's answer is constant between its own literals: one test per stretch
            stretches = [(0, 2 * positions[0])] if positions else [(0, 2 * count)]
            for number, position in enumerate(positions):
                upper = 2 * positions[number + 1] if number + 1 < len(positions) else 2 * count
                stretches += [(2 * position + 1, 2 * position + 1), (2 * position + 2, upper)]
            previous = False
            for first, last in stretches:
                answer = _answer(constraint, representatives, first, last, previous)
                if first == 0:
                    if answer:
                        start |= constraint.bit
                elif answer != previous:
                    toggles[first] ^= constraint.bit
                previous = answer
        masks = []
        mask = start
        for toggle in toggles:
            mask ^= toggle
            masks.append(mask)
        self.points = {literals[index]: masks[2 * index + 1] for index in range(count)}
        gaps = masks[0::2]
        # no ordering comparison on this kind: every gap is alike, one probe of the dict suffices
        self.gaps = gaps if any(gap != gaps[0] for gap in gaps) else [gaps[0]]


def _answer(
    constraint: _Constraint, representatives: list[Any], first: int, last: int, default: bool
) -> bool:
    """The constraint's answer on regions ``first..last``, tested on any value among them."""
    for region in range(first, last + 1):
        value = representatives[region]
        if value is not None:
            return constraint.holds(value)
    return default  # every region of the stretch is empty: no value can land there


class _FieldIndex:
    """The masks of one field path for every region of values."""

    __slots__ = (
        "affordable",
        "constraints",
        "false",
        "fixed",
        "get",
        "missing",
        "nan",
        "null",
        "numbers",
        "path",
        "selectivity",
        "strings",
        "true",
    )

    def __init__(
        self,
        path: str,
        members: list[tuple[_Constraint, list[ConditionNode]]],
        all_bits: int,
        *,
        either: bool = False,
    ) -> None:
        self.path = path
        self.get: Getter = compile_path(path)
        self.constraints = constraints = [constraint for constraint, _ in members]
        number_sets: list[set[Any]] = []
        string_sets: list[set[Any]] = []
        all_numbers: set[Any] = set()
        all_strings: set[str] = set()
        for _, nodes in members:
            numbers: set[Any] = set()
            strings: set[str] = set()
            for node in nodes:
                _literals(node, numbers, strings)
            number_sets.append(numbers)
            string_sets.append(strings)
            all_numbers |= numbers
            all_strings |= strings
        regions = 2 * (len(all_numbers) + len(all_strings)) + 7
        self.affordable = regions * (all_bits.bit_length() // 8 + 32) <= _FIELD_BYTES
        if not self.affordable:
            return
        constrained = 0
        for constraint in constraints:
            constrained |= constraint.bit
        # a branch of an ``any`` sets only the members it satisfies; a conjunct passes the rest
        self.fixed = fixed = 0 if either else all_bits & ~constrained
        self.missing, self.null, self.true, self.false, self.nan = (
            self._tested(value) for value in (MISSING, None, True, False, _NAN)
        )
        self.numbers = _Ordered(
            sorted(all_numbers), _number_between, constraints, fixed, number_sets
        )
        self.strings = _Ordered(
            sorted(all_strings), _string_between, constraints, fixed, string_sets
        )
        masks = [self.missing, self.null, self.true, self.false]
        masks += [*self.numbers.points.values(), *self.numbers.gaps]
        masks += [*self.strings.points.values(), *self.strings.gaps]
        width = max(all_bits.bit_length(), 1)
        # the share of members a typical region keeps: the smaller, the earlier it is applied
        self.selectivity = sum(mask.bit_count() for mask in masks) / (len(masks) * width)

    def _tested(self, value: Any) -> int:
        mask = self.fixed
        for constraint in self.constraints:
            if constraint.holds(value):
                mask |= constraint.bit
        return mask

    def lookup(self) -> Callable[[Mapping[str, Any]], int]:
        """The field's mask for some facts, as one closure (the hot path: no attribute reads)."""
        missing, null, true, false, nan = self.missing, self.null, self.true, self.false, self.nan
        tested = self._tested
        number_points, number_literals = self.numbers.points, self.numbers.literals
        number_gaps = self.numbers.gaps
        string_points, string_literals = self.strings.points, self.strings.literals
        string_gaps = self.strings.gaps
        number_gap = number_gaps[0] if len(number_gaps) == 1 else None
        string_gap = string_gaps[0] if len(string_gaps) == 1 else None
        first, dot, _ = self.path.partition(".")
        get = self.get
        bisect_left = bisect.bisect_left

        def lookup(facts: Mapping[str, Any]) -> int:
            if dot:
                value = get(facts)
                if value is MISSING:
                    return missing
            else:
                try:
                    value = facts[first]
                except KeyError:
                    return missing
            kind = type(value)
            if kind is str:
                found = string_points.get(value)
                if found is not None:
                    return found
                if string_gap is not None:
                    return string_gap
                return string_gaps[bisect_left(string_literals, value)]
            if kind is int or kind is float:
                found = number_points.get(value)
                if found is not None:
                    return found
                if value != value:  # noqa: PLR0124 - NaN
                    return nan
                if number_gap is not None:
                    return number_gap
                return number_gaps[bisect_left(number_literals, value)]
            if value is None:
                return null
            if kind is bool:
                return true if value else false
            return tested(value)

        return lookup


class _Residual:
    """A condition member the masks cannot decide, shared by every member that has it."""

    __slots__ = ("number", "test")

    def __init__(self, number: int, test: Predicate) -> None:
        self.number = number
        self.test = test


class ConditionIndex(Generic[T]):
    """Members with their compiled conditions (None: always true), in the caller's order.

    :meth:`match` returns the members whose condition holds, in that order; :meth:`first`
    the first of them. Both give exactly what testing every condition would.
    """

    __slots__ = (
        "_all",
        "_chunks",
        "_conditions",
        "_lookups",
        "_members",
        "_padded",
        "_residual_bits",
        "_residuals",
    )

    def __init__(self, members: Sequence[tuple[T, CompiledCondition | None]]) -> None:
        self._members = tuple(member for member, _ in members)
        # match() reads one entry past the last member (and pops it): Any, not T | None
        self._padded: tuple[Any, ...] = (*self._members, None)
        self._conditions = tuple(condition for _, condition in members)
        count = len(members)
        self._all = (1 << count) - 1
        self._lookups: tuple[Callable[[Mapping[str, Any]], int], ...] = ()
        self._residuals: dict[int, tuple[_Residual, ...]] = {}
        self._residual_bits = 0
        # memory grows with members x regions; chunks keep it linear in the members
        self._chunks = (
            tuple(
                ConditionIndex(members[start : start + _CHUNK]) for start in range(0, count, _CHUNK)
            )
            if count > _CHUNK
            else ()
        )
        if count <= _CHUNK:
            self._build()

    def __len__(self) -> int:
        return len(self._members)

    def _build(self) -> None:
        count = len(self._members)
        placed: dict[str, list[tuple[int, Conjunct]]] = {}
        groups: list[list[tuple[int, Conjunct]]] = []  # the k-th any() across fields of members
        leftover: dict[int, list[Conjunct]] = {}
        for position, condition in enumerate(self._conditions):
            slot = 0
            for conjunct in condition.conjuncts if condition is not None else ():
                path = _single_field(conjunct.node)
                if path is not None:
                    placed.setdefault(path, []).append((position, conjunct))
                elif _branches(conjunct.node) is not None:
                    if slot == len(groups):
                        groups.append([])
                    groups[slot].append((position, conjunct))
                    slot += 1
                else:
                    leftover.setdefault(position, []).append(conjunct)
        lookups: list[tuple[float, Callable[[Mapping[str, Any]], int]]] = []
        for path, conjuncts in placed.items():
            field = self._field(path, [(p, [c.node]) for p, c in conjuncts], conjuncts)
            if field is not None:
                lookups.append((field.selectivity, field.lookup()))
            else:  # too many distinct literals for masks of this width: test them per member
                for position, conjunct in conjuncts:
                    leftover.setdefault(position, []).append(conjunct)
        for group in groups:
            either = self._either(group)
            if either is not None:
                lookups.append((1.0, either))  # an OR of lookups: applied after the fields
            else:
                for position, conjunct in group:
                    leftover.setdefault(position, []).append(conjunct)
        shared: dict[str, _Residual] = {}
        for position, own in leftover.items():
            residuals = []
            for conjunct in own:
                key = repr(conjunct.node)
                if key not in shared:
                    shared[key] = _Residual(len(shared), conjunct.test)
                residuals.append(shared[key])
            self._residuals[position] = tuple(residuals)
            self._residual_bits |= 1 << (count - 1 - position)
        lookups.sort(key=lambda item: item[0])
        self._lookups = tuple(lookup for _, lookup in lookups)

    def _field(
        self,
        path: str,
        tests: list[tuple[int, list[ConditionNode]]],
        conjuncts: Sequence[tuple[int, Conjunct]] = (),
        *,
        either: bool = False,
    ) -> _FieldIndex | None:
        """Masks of ``path`` for members' conjunctions (or, ``either``, disjunctions) of tests."""
        count = len(self._members)
        compiled = {id(c.node): c.value_test for _, c in conjuncts if c.value_test is not None}
        by_member: dict[int, list[ConditionNode]] = {}
        for position, nodes in tests:
            by_member.setdefault(position, []).extend(nodes)
        members = []
        for position, nodes in by_member.items():
            if either and len(nodes) > 1:
                checks = [_value_test(AnyOf(tuple(nodes)))]
            else:
                checks = [compiled.get(id(node)) or _value_test(node) for node in nodes]
            members.append((_Constraint(1 << (count - 1 - position), checks), nodes))
        field = _FieldIndex(path, members, self._all, either=either)
        return field if field.affordable else None

    def _either(
        self, group: list[tuple[int, Conjunct]]
    ) -> Callable[[Mapping[str, Any]], int] | None:
        """One lookup for ``any`` groups across fields: the OR of each field's branch masks."""
        by_path: dict[str, list[tuple[int, list[ConditionNode]]]] = {}
        outside = self._all
        for position, conjunct in group:
            outside &= ~(1 << (len(self._members) - 1 - position))
            for path, nodes in (_branches(conjunct.node) or {}).items():
                by_path.setdefault(path, []).append((position, nodes))
        fields = [self._field(path, tests, either=True) for path, tests in by_path.items()]
        if any(field is None for field in fields):
            return None
        branches = tuple(field.lookup() for field in fields if field is not None)

        def either(facts: Mapping[str, Any]) -> int:
            mask = outside
            for branch in branches:
                mask |= branch(facts)
            return mask

        return either

    def match(self, facts: Mapping[str, Any]) -> list[T]:
        if self._chunks:
            return [member for chunk in self._chunks for member in chunk.match(facts)]
        count = len(self._members)
        mask = self._all
        for lookup in self._lookups:
            mask &= lookup(facts)
            if not mask:
                return []
        if mask & self._residual_bits:
            mask = self._check_residuals(mask, facts)
        digits = bin(mask)
        # the runs of zeros between set bits give each match's place: one C split, then a
        # comprehension (no method call per match); bin() drops leading zeros, digits[2] is the
        # top bit. The run after the last set bit lands on the padding entry, popped.
        position = count - len(digits) - 1
        padded = self._padded
        matched = [padded[position := position + len(run) + 1] for run in digits.split("1")]
        matched.pop()
        return matched

    def first(self, facts: Mapping[str, Any]) -> T | None:
        """The first member whose condition holds, testing no residual beyond it."""
        for chunk in self._chunks:
            found = chunk.first(facts)
            if found is not None:
                return found
        if self._chunks:
            return None
        count = len(self._members)
        mask = self._all
        for lookup in self._lookups:
            mask &= lookup(facts)
            if not mask:
                return None
        residual_bits = self._residual_bits
        while mask:
            position = count - mask.bit_length()
            bit = 1 << (count - 1 - position)
            if not bit & residual_bits or all(r.test(facts) for r in self._residuals[position]):
                return self._members[position]
            mask ^= bit
        return None

    def _check_residuals(self, mask: int, facts: Mapping[str, Any]) -> int:
        """``mask`` without the members whose residuals fail; each residual tested once."""
        count = len(self._members)
        outcomes: dict[int, bool] = {}
        pending = mask & self._residual_bits
        while pending:
            position = count - pending.bit_length()
            bit = 1 << (count - 1 - position)
            pending ^= bit
            for residual in self._residuals[position]:
                outcome = outcomes.get(residual.number)
                if outcome is None:
                    outcome = outcomes[residual.number] = residual.test(facts)
                if not outcome:
                    mask ^= bit
                    break
        return mask
