"""Per-field value sets: what a conjunction of simple comparisons lets one field be.

A *simple* comparison is ``eq ne gt gte lt lte between in not_in`` with scalar values (string,
number, boolean, null). Every one of them is false on a missing field, so each implies the
field is present. For one field, the comparisons of a conjunction intersect into a
:class:`Domain`: a finite set of allowed values and/or an interval of one kind (numbers or
strings, as the ordering operators demand), minus a finite set of excluded values.

The domain of a single comparison is exact; the intersection is exact too, so the answers are:

* ``satisfiable()``: False is a proof that no value passes; True means a value exists (a
  witness is found or the interval is dense: there is a real between any two reals); None is
  "unknown" (strings are not dense: nothing lies strictly between ``"a"`` and ``"a\\x00"``).
* ``within(other)``: True is a proof that every value of this domain is in ``other``; False
  means "not proven".

Values compare as the condition language does: ``1 == 1.0``, ``1 != true``, ``"1" != 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from eventrules.conditions import Compare
from eventrules.conditions.values import is_number

__all__ = ["SIMPLE_OPERATORS", "Bound", "Domain", "domain_of", "value_key"]

SIMPLE_OPERATORS: Final = frozenset(
    {"eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in"}
)

# (kind, value): tuples compare kinds first, so True and 1 stay apart while 1 == 1.0
Key = tuple[str, Any]


def value_key(value: Any) -> Key | None:
    """The strict-equality key of a scalar, or None for arrays, objects and other values."""
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("boolean", value)
    if is_number(value):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    return None


def _kind(value: Any) -> str | None:
    if is_number(value):
        return "number"
    return "string" if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Bound:
    value: Any
    inclusive: bool


def _tighter_low(a: Bound | None, b: Bound | None) -> Bound | None:
    if a is None or b is None:
        return a or b
    if a.value != b.value:
        return a if a.value > b.value else b
    return a if not a.inclusive else b


def _tighter_high(a: Bound | None, b: Bound | None) -> Bound | None:
    if a is None or b is None:
        return a or b
    if a.value != b.value:
        return a if a.value < b.value else b
    return a if not a.inclusive else b


def _low_at_least(inner: Bound | None, outer: Bound | None) -> bool:
    """``inner`` as a lower bound excludes everything ``outer`` excludes."""
    if outer is None:
        return True
    if inner is None:
        return False
    if inner.value != outer.value:
        return bool(inner.value > outer.value)
    return outer.inclusive or not inner.inclusive


def _high_at_most(inner: Bound | None, outer: Bound | None) -> bool:
    if outer is None:
        return True
    if inner is None:
        return False
    if inner.value != outer.value:
        return bool(inner.value < outer.value)
    return outer.inclusive or not inner.inclusive


@dataclass(frozen=True, slots=True)
class Domain:
    """Values one present field may take. ``allowed`` None means "not a finite set";
    ``kind`` is set by an ordering comparison; ``contradictory`` by two kinds at once."""

    allowed: frozenset[Key] | None = None
    kind: str | None = None
    low: Bound | None = None
    high: Bound | None = None
    excluded: frozenset[Key] = frozenset()
    contradictory: bool = False

    def contains(self, key: Key) -> bool:
        if self.contradictory or key in self.excluded:
            return False
        if self.allowed is not None and key not in self.allowed:
            return False
        if self.kind is None:
            return True
        kind, value = key
        if kind != self.kind:
            return False
        low, high = self.low, self.high
        if low is not None and (value < low.value or (value == low.value and not low.inclusive)):
            return False
        return high is None or value < high.value or (value == high.value and high.inclusive)

    def intersect(self, other: Domain) -> Domain:
        if self.contradictory or other.contradictory:
            return Domain(contradictory=True)
        if self.kind is not None and other.kind is not None and self.kind != other.kind:
            return Domain(contradictory=True)
        if self.allowed is None or other.allowed is None:
            allowed = self.allowed if other.allowed is None else other.allowed
        else:
            allowed = self.allowed & other.allowed
        return Domain(
            allowed=allowed,
            kind=self.kind or other.kind,
            low=_tighter_low(self.low, other.low),
            high=_tighter_high(self.high, other.high),
            excluded=self.excluded | other.excluded,
        )

    def _point(self) -> Key | None:
        low, high = self.low, self.high
        if (
            self.kind is not None
            and low is not None
            and high is not None
            and low.value == high.value
            and low.inclusive
            and high.inclusive
        ):
            return (self.kind, low.value)
        return None

    def _finite(self) -> frozenset[Key] | None:
        if self.allowed is not None:
            return self.allowed
        point = self._point()
        return frozenset({point}) if point is not None else None

    def satisfiable(self) -> bool | None:
        if self.contradictory:
            return False
        finite = self._finite()
        if finite is not None:
            return any(self.contains(key) for key in finite)
        low, high = self.low, self.high
        if low is not None and high is not None and low.value >= high.value:
            return False  # equal bounds with both inclusive were handled as a point
        if self.kind == "string" and high is not None and high.value == "" and not high.inclusive:
            return False  # nothing sorts before the empty string
        if self.kind == "number" or self.kind is None:
            return True  # dense (or any kind at all) minus finitely many exclusions
        return True if self.witness() is not None else None

    def witness(self) -> Key | None:
        """A value of the domain, preferring readable ones; None when none was found."""
        if self.contradictory:
            return None
        finite = self._finite()
        if finite is not None:
            candidates: list[Key] = sorted(finite, key=repr)
        elif self.kind == "number":
            candidates = [("number", value) for value in self._numbers()]
        elif self.kind == "string":
            candidates = [("string", value) for value in self._strings()]
        else:
            spare = len(self.excluded) + 1
            candidates = [("number", n) for n in range(spare)] + [("string", "x" * (spare + 1))]
        for key in candidates:
            if self.contains(key):
                return key
        return None

    def _numbers(self) -> list[Any]:
        spare = len(self.excluded) + 2
        low, high = self.low, self.high
        if low is None:
            if high is None:
                return list(range(spare))
            return [high.value - step for step in range(spare)]
        if high is None:
            return [low.value + step for step in range(spare)]
        span = high.value - low.value
        whole = [low.value + step for step in range(spare) if low.value + step <= high.value]
        return [*whole, *(low.value + span * step / (spare + 1) for step in range(1, spare + 1))]

    def _strings(self) -> list[str]:
        low, high = self.low, self.high
        base = low.value if low is not None else ""
        candidates = [base, *(base + suffix for suffix in ("a", "b", "z", "\x00", "\x00\x00"))]
        if high is not None:
            candidates.append(high.value)
        return candidates

    def within(self, other: Domain) -> bool:
        """True when every value of this domain is proven to be in ``other``."""
        if self.satisfiable() is False:
            return True
        finite = self._finite()
        if finite is not None:
            return all(other.contains(key) for key in finite if self.contains(key))
        if other.contradictory or other._finite() is not None:
            return False  # an infinite set in a finite one: not proven
        if other.kind is not None and (
            self.kind != other.kind
            or not _low_at_least(self.low, other.low)
            or not _high_at_most(self.high, other.high)
        ):
            return False
        return not any(self.contains(key) for key in other.excluded)


def domain_of(node: Compare) -> Domain | None:
    """The exact domain of one comparison, or None when it is not a simple comparison."""
    operator, value = node.operator, node.value
    if operator not in SIMPLE_OPERATORS:
        return None
    if operator in {"eq", "ne"}:
        key = value_key(value)
        if key is None:
            return None
        members = frozenset({key})
        return Domain(allowed=members) if operator == "eq" else Domain(excluded=members)
    if operator in {"in", "not_in"}:
        keys = [value_key(item) for item in value]
        if any(key is None for key in keys):
            return None
        members = frozenset(key for key in keys if key is not None)
        return Domain(allowed=members) if operator == "in" else Domain(excluded=members)
    if operator == "between":
        low, high = value
        return Domain(kind=_kind(low), low=Bound(low, True), high=Bound(high, True))
    kind = _kind(value)
    if kind is None:
        return None
    bound = Bound(value, operator in {"gte", "lte"})
    if operator in {"gt", "gte"}:
        return Domain(kind=kind, low=bound)
    return Domain(kind=kind, high=bound)
