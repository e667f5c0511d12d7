"""Static checks of a rule set: conflicts the runtime would never report.

What it claims, and on what grounds (enabled rules only, grouped by rule type):

* ``never_holds``: a rule's top-level conjunction contains simple comparisons on one field
  that no value passes (``x < 5 and x > 10``). A proof: the per-field domains are exact.
* ``expired``: the rule's ``valid_until`` is at or before the check time.
* ``overlap``: two rules of one type with equal priority can both match. Claimed only with a
  witness (facts that both rules' compiled conditions accept), which the report shows.
* ``shadowed``: under a first-hit policy, a rule evaluated earlier matches whenever the later
  one does, and is valid whenever the later one is, so the later one never applies. Claimed
  only when every member of the earlier rule's top-level conjunction is proven implied (a
  simple comparison whose domain contains the later rule's domain for that field, or a member
  the later rule also has, spelled identically).
* ``unknown``: an equal-priority pair that may overlap, or a pair that may shadow, where the
  conditions hold parts beyond simple comparisons (``any``/``not`` groups, ``contains``,
  ``matches``...) that decide it. The checker says so rather than guess.

Rules that are disjoint by their simple comparisons are proven not to overlap and are not
listed. Everything else is left out on purpose: ``any`` branches are not explored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations
from typing import Any, Literal

from eventrules.conditions import ConditionNode, node_to_data, node_to_text
from eventrules.conditions.tree import Compare
from eventrules.rules.decisions import DEFAULT_POLICIES, POLICIES, Policy
from eventrules.rules.evaluator import CompiledRule, compile_rule
from eventrules.rules.intervals import Domain, domain_of
from eventrules.rules.models import Rule

__all__ = ["CheckReport", "Finding", "FindingKind", "check_rules"]

FindingKind = Literal["never_holds", "expired", "overlap", "shadowed", "unknown"]
_KIND_ORDER = ("never_holds", "expired", "shadowed", "overlap", "unknown")


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    rule_type: str
    rule_ids: tuple[str, ...]
    message: str
    witness: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rule_type": self.rule_type,
            "rule_ids": list(self.rule_ids),
            "message": self.message,
            "witness": self.witness,
        }


@dataclass(frozen=True, slots=True)
class CheckReport:
    checked_at: datetime
    policies: dict[str, Policy]
    rules_checked: int
    findings: tuple[Finding, ...]

    @property
    def conflicts(self) -> tuple[Finding, ...]:
        """The proven findings (everything but ``unknown``)."""
        return tuple(finding for finding in self.findings if finding.kind != "unknown")

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked_at": self.checked_at.isoformat(),
            "policies": dict(self.policies),
            "rules_checked": self.rules_checked,
            "findings": [finding.to_dict() for finding in self.findings],
        }


@dataclass(frozen=True, slots=True)
class _Analysis:
    compiled: CompiledRule
    domains: dict[str, Domain]
    simple: dict[str, tuple[Compare, ...]]
    opaque: tuple[ConditionNode, ...]
    spellings: frozenset[str]

    @property
    def rule(self) -> Rule:
        return self.compiled.rule


def _spelling(node: ConditionNode) -> str:
    # JSON keeps true and 1 apart, which Python's == on the nodes would not
    return json.dumps(node_to_data(node), sort_keys=True, default=str)


def _analyse(compiled: CompiledRule) -> _Analysis:
    domains: dict[str, Domain] = {}
    simple: dict[str, list[Compare]] = {}
    opaque: list[ConditionNode] = []
    conjuncts = compiled.condition.conjuncts if compiled.condition is not None else ()
    for conjunct in conjuncts:
        node = conjunct.node
        domain = domain_of(node) if isinstance(node, Compare) else None
        if domain is None or not isinstance(node, Compare):
            opaque.append(node)
            continue
        current = domains.get(node.field)
        domains[node.field] = domain if current is None else current.intersect(domain)
        simple.setdefault(node.field, []).append(node)
    return _Analysis(
        compiled,
        domains,
        {name: tuple(nodes) for name, nodes in simple.items()},
        tuple(opaque),
        frozenset(_spelling(conjunct.node) for conjunct in conjuncts),
    )


def _empty_field(analysis: _Analysis) -> str | None:
    for name, domain in analysis.domains.items():
        if domain.satisfiable() is False:
            return name
    return None


def _set_path(facts: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = facts
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return  # a clash of paths: the witness will fail verification
        node = child
    node[last] = value


def _witness(first: _Analysis, second: _Analysis) -> dict[str, Any] | None:
    """Facts both rules accept, verified with their compiled conditions; else None."""
    facts: dict[str, Any] = {}
    for name in sorted(first.domains.keys() | second.domains.keys()):
        domain = first.domains.get(name, Domain())
        other = second.domains.get(name)
        key = (domain if other is None else domain.intersect(other)).witness()
        if key is None:
            return None
        _set_path(facts, name, key[1])
    for analysis in (first, second):
        test = analysis.compiled.test
        if test is not None and not test(facts):
            return None
    return facts


def _disjoint(first: _Analysis, second: _Analysis) -> bool:
    return any(
        domain.intersect(second.domains[name]).satisfiable() is False
        for name, domain in first.domains.items()
        if name in second.domains
    )


def _implies(later: _Analysis, earlier: _Analysis) -> bool | None:
    """Whether ``later``'s conditions imply ``earlier``'s: True proven, False not, None unknown."""
    for name, domain in earlier.domains.items():
        own = later.domains.get(name)
        if own is None or not own.within(domain):
            return False
    unmatched = [node for node in earlier.opaque if _spelling(node) not in later.spellings]
    return None if unmatched else True


def _windows_meet(first: Rule, second: Rule) -> bool:
    starts = [moment for moment in (first.valid_from, second.valid_from) if moment is not None]
    ends = [moment for moment in (first.valid_until, second.valid_until) if moment is not None]
    return not starts or not ends or max(starts) < min(ends)


def _window_covers(outer: Rule, inner: Rule) -> bool:
    if outer.valid_from is not None and (
        inner.valid_from is None or inner.valid_from < outer.valid_from
    ):
        return False
    return outer.valid_until is None or (
        inner.valid_until is not None and inner.valid_until <= outer.valid_until
    )


def _texts(nodes: Iterable[ConditionNode]) -> str:
    return " and ".join(repr(node_to_text(node)) for node in nodes)


def check_rules(
    rules: Iterable[Rule], *, at: datetime, policies: Mapping[str, str] | None = None
) -> CheckReport:
    """Check ``rules`` as of ``at`` (for expiry) under ``policies`` (defaults per type)."""
    chosen: dict[str, Policy] = dict(DEFAULT_POLICIES)
    for rule_type, policy in (policies or {}).items():
        if rule_type not in POLICIES or policy not in POLICIES[rule_type]:
            allowed = POLICIES.get(rule_type, ())
            raise ValueError(f"policy {policy!r} for {rule_type!r}: expected one of {allowed}")
        chosen[rule_type] = policy
    enabled = [rule for rule in rules if rule.enabled]
    by_type: dict[str, list[_Analysis]] = {}
    for rule in enabled:
        by_type.setdefault(rule.rule_type, []).append(_analyse(compile_rule(rule)))
    findings: list[Finding] = []
    for rule_type, members in sorted(by_type.items()):
        members.sort(key=lambda analysis: analysis.compiled.order_key)
        findings.extend(_check_type(rule_type, members, at, chosen[rule_type]))
    findings.sort(key=lambda f: (f.rule_type, _KIND_ORDER.index(f.kind), f.rule_ids))
    return CheckReport(at, chosen, len(enabled), tuple(findings))


def _check_type(
    rule_type: str, members: list[_Analysis], at: datetime, policy: Policy
) -> list[Finding]:
    findings: list[Finding] = []
    live: list[_Analysis] = []
    for analysis in members:
        rule = analysis.rule
        empty = _empty_field(analysis)
        if empty is not None:
            findings.append(
                Finding(
                    "never_holds",
                    rule_type,
                    (rule.id,),
                    f"{rule.id}: the conditions can never hold: no value of {empty} passes "
                    f"{_texts(analysis.simple[empty])}",
                )
            )
        if rule.valid_until is not None and rule.valid_until <= at:
            findings.append(
                Finding(
                    "expired",
                    rule_type,
                    (rule.id,),
                    f"{rule.id}: its window ended at {rule.valid_until.isoformat()}",
                )
            )
        elif empty is None:
            live.append(analysis)
    for first, second in combinations(live, 2):
        if first.rule.priority == second.rule.priority:
            finding = _overlap(rule_type, first, second)
            if finding is not None:
                findings.append(finding)
    if policy == "first":
        for index, later in enumerate(live):
            for earlier in live[:index]:
                finding = _shadow(rule_type, earlier, later)
                if finding is not None:
                    findings.append(finding)
                    if finding.kind == "shadowed":
                        break  # one proven cause is enough
    return findings


def _overlap(rule_type: str, first: _Analysis, second: _Analysis) -> Finding | None:
    if not _windows_meet(first.rule, second.rule) or _disjoint(first, second):
        return None
    ids = (first.rule.id, second.rule.id)
    witness = _witness(first, second)
    if witness is not None:
        return Finding(
            "overlap",
            rule_type,
            ids,
            f"{ids[0]} and {ids[1]} have the same priority ({first.rule.priority}) and can "
            f"both match; order between them falls back to the rule id",
            witness,
        )
    return Finding(
        "unknown",
        rule_type,
        ids,
        f"{ids[0]} and {ids[1]} have the same priority ({first.rule.priority}); whether both "
        "can match depends on conditions the checker does not analyse",
    )


def _shadow(rule_type: str, earlier: _Analysis, later: _Analysis) -> Finding | None:
    if not _window_covers(earlier.rule, later.rule):
        return None
    implied = _implies(later, earlier)
    if implied is False:
        return None
    ids = (later.rule.id, earlier.rule.id)
    order = (
        f"priority {earlier.rule.priority} > {later.rule.priority}"
        if earlier.rule.priority != later.rule.priority
        else f"same priority, {earlier.rule.id!r} sorts first"
    )
    if implied:
        return Finding(
            "shadowed",
            rule_type,
            ids,
            f"{later.rule.id} never applies under first-hit: whenever it matches, "
            f"{earlier.rule.id} matches too and is evaluated first ({order})",
        )
    return Finding(
        "unknown",
        rule_type,
        ids,
        f"{later.rule.id} may be shadowed by {earlier.rule.id} ({order}); it depends on "
        "conditions the checker does not analyse",
    )
