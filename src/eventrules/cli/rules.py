"""``eventrules rules``: evaluate rules against facts, check a rule set for conflicts, and show
per-rule execution counts.

Rules come from definition files (``--file``, ``--dir``; workflows found there are skipped) or,
without either, from the live config topic. The evaluation time defaults to now.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from eventrules.definitions.files import read_definition_documents
from eventrules.errors import DefinitionError, EventRulesError, RuleEvaluationError
from eventrules.ops.config import live_rules
from eventrules.ops.rules import scrape_rule_stats
from eventrules.rules import (
    DEFAULT_PRICE_FIELD,
    POLICIES,
    RULE_TYPES,
    CheckReport,
    Decision,
    Rule,
    RulesEngine,
    check_rules,
    parse_rule,
)
from eventrules.settings import Settings

__all__ = ["rules"]

_DEFINITION_SUFFIXES = frozenset({".yaml", ".yml", ".json"})
_POLICY_NAMES = sorted({policy for names in POLICIES.values() for policy in names})


def _console() -> Console:
    # created per call so click's CliRunner (which swaps sys.stdout) captures the output
    return Console(soft_wrap=True, highlight=False)


def _sources(function: Any) -> Any:
    function = click.option(
        "--dir",
        "dirs",
        multiple=True,
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="Directory of definition files (searched recursively; workflows are skipped).",
    )(function)
    return click.option(
        "--file",
        "files",
        multiple=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Definition file (YAML or JSON); repeat for several.",
    )(function)


def _at_option(function: Any) -> Any:
    return click.option(
        "--at",
        "at_text",
        help="Evaluation time, ISO-8601 with an offset (default: now).",
    )(function)


def _rule_files(files: tuple[Path, ...], dirs: tuple[Path, ...]) -> list[Path]:
    found = list(files)
    for directory in dirs:
        found.extend(
            sorted(p for p in directory.rglob("*") if p.suffix.lower() in _DEFINITION_SUFFIXES)
        )
    return found


def _load_rules(files: tuple[Path, ...], dirs: tuple[Path, ...]) -> list[Rule]:
    """Every ``kind: rule`` document; other documents (workflows, events) are skipped."""
    if not files and not dirs:
        return _live_rules()
    rules: list[Rule] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    for path in _rule_files(files, dirs):
        try:
            documents = read_definition_documents(path)
        except DefinitionError as exc:
            problems.append(str(exc))
            continue
        for document in documents:
            if not isinstance(document.raw, dict) or document.raw.get("kind") != "rule":
                continue
            try:
                rule = parse_rule(document.raw)
            except DefinitionError as exc:
                problems.append(f"{document.source}: {exc}")
                continue
            if rule.id in seen:
                problems.append(f"{document.source}: id {rule.id!r} also in {seen[rule.id]}")
                continue
            seen[rule.id] = document.source
            rules.append(rule)
    if problems:
        raise click.ClickException("\n".join(problems))
    if not rules:
        raise click.ClickException("no rule definitions (kind: rule) found")
    return rules


def _live_rules() -> list[Rule]:
    """The rules on the config topic (what running workers use)."""
    try:
        rules = live_rules(Settings())
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    if not rules:
        raise click.ClickException("no live rules on the config topic; use --file or --dir")
    return rules


def _parse_at(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"not ISO-8601: {text!r}", param_hint="--at") from None
    if moment.utcoffset() is None:
        raise click.BadParameter("add an offset: 2026-01-10T14:30:00+01:00", param_hint="--at")
    return moment


def _parse_facts(text: str) -> dict[str, Any]:
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(str(exc), param_hint="--facts") from None
    try:
        facts = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"invalid JSON: {exc}", param_hint="--facts") from None
    if not isinstance(facts, dict):
        raise click.BadParameter("expected a JSON object", param_hint="--facts")
    return facts


def _timezone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown timezone {name!r}", param_hint="--timezone") from None


@click.group("rules")
def rules() -> None:
    """Evaluate business rules, check rule sets, show per-rule execution counts."""


@rules.command("eval")
@click.option(
    "--type",
    "rule_type",
    required=True,
    type=click.Choice([*RULE_TYPES, "order_validation"]),
    help="Which rules to evaluate.",
)
@click.option("--facts", "facts_text", required=True, help="Facts as a JSON object, or @file.")
@_sources
@_at_option
@click.option(
    "--policy", type=click.Choice(_POLICY_NAMES), help="Override the type's default policy."
)
@click.option(
    "--price-field",
    default=DEFAULT_PRICE_FIELD,
    show_default=True,
    help="Dotted path of the price pricing rules discount.",
)
@click.option(
    "--timezone",
    "timezone_name",
    default="UTC",
    show_default=True,
    help="Timezone of time facts such as dayOfWeek and hour.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def eval_command(  # click passes options as keywords
    *,
    rule_type: str,
    facts_text: str,
    files: tuple[Path, ...],
    dirs: tuple[Path, ...],
    at_text: str | None,
    policy: str | None,
    price_field: str,
    timezone_name: str,
    as_json: bool,
) -> None:
    """Evaluate the rules of one type against facts and print the decision."""
    facts = _parse_facts(facts_text)
    at = _parse_at(at_text)
    engine = RulesEngine(_load_rules(files, dirs), timezone=_timezone(timezone_name))
    try:
        decision = engine.evaluate(rule_type, facts, at=at, policy=policy, price_field=price_field)
    except RuleEvaluationError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(decision.to_dict(), indent=2, ensure_ascii=False))
        return
    _show_decision(_console(), decision)


def _show_decision(console: Console, decision: Decision) -> None:
    console.print(
        f"[bold]{decision.rule_type}[/bold] decision ({decision.policy}) "
        f"at {decision.evaluated_at.isoformat()}"
    )
    table = Table(title="matched rules")
    for column in ("rule", "version", "priority", "applied"):
        table.add_column(column)
    for matched in decision.matched:
        applied = "[green]yes[/green]" if matched.applied else "[dim]no[/dim]"
        table.add_row(escape(matched.rule_id), str(matched.version), str(matched.priority), applied)
    console.print(table if decision.matched else "no rule matched")
    for miss in decision.outside_window:
        console.print(f"[yellow]not applied[/yellow] {escape(miss.rule_id)}: {escape(miss.reason)}")
    price = decision.price
    if price is not None:
        console.print(f"{price.price_field}: {price.original} -> [bold]{price.final}[/bold]")
        for discount in price.discounts:
            console.print(
                f"  -{discount.amount} {discount.type} ({escape(discount.rule_id)})"
                f" -> {discount.price_after}"
            )
    if not decision.allowed:
        console.print("[red]BLOCKED[/red]")
        for block in decision.blocks:
            console.print(f"  {escape(block.rule_id)}: {escape(block.reason)}")
    for label, values in (
        ("destination", decision.destinations),
        ("segments", decision.segments),
        ("tags", decision.tags),
    ):
        if values:
            console.print(f"{label}: {escape(', '.join(values))}")
    for path, value in decision.fields.items():
        console.print(f"set {escape(path)} = {escape(json.dumps(value, ensure_ascii=False))}")


def _parse_policies(values: tuple[str, ...]) -> dict[str, str]:
    policies: dict[str, str] = {}
    choices = "; ".join(f"{kind}: {'/'.join(names)}" for kind, names in POLICIES.items())
    for value in values:
        rule_type, sep, policy = value.partition("=")
        if not sep or rule_type not in POLICIES or policy not in POLICIES[rule_type]:
            raise click.BadParameter(
                f"{value!r}: expected TYPE=POLICY, e.g. pricing=first ({choices})",
                param_hint="--policy",
            )
        policies[rule_type] = policy
    return policies


@rules.command("check")
@_sources
@_at_option
@click.option(
    "--policy",
    "policy_values",
    multiple=True,
    help="TYPE=POLICY the rules run under (shadowing needs first-hit); repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check_command(
    files: tuple[Path, ...],
    dirs: tuple[Path, ...],
    at_text: str | None,
    policy_values: tuple[str, ...],
    as_json: bool,
) -> None:
    """Report conflicts: overlaps at equal priority, shadowed rules, expired windows and
    conditions that can never hold. Exits 1 when a conflict is proven."""
    policies = _parse_policies(policy_values)
    report = check_rules(_load_rules(files, dirs), at=_parse_at(at_text), policies=policies)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        _show_report(_console(), report)
    if report.conflicts:
        raise click.exceptions.Exit(1)


def _show_report(console: Console, report: CheckReport) -> None:
    console.print(
        f"checked {report.rules_checked} enabled rule(s) at {report.checked_at.isoformat()}"
    )
    if not report.findings:
        console.print("[green]no conflicts found[/green]")
        return
    table = Table()
    for column in ("type", "finding", "rules", "detail"):
        table.add_column(column, overflow="fold")
    for finding in report.findings:
        style = "yellow" if finding.kind == "unknown" else "red"
        detail = finding.message
        if finding.witness is not None:
            detail += f"\nboth match e.g. {json.dumps(finding.witness, ensure_ascii=False)}"
        table.add_row(
            finding.rule_type,
            f"[{style}]{finding.kind}[/{style}]",
            escape(", ".join(finding.rule_ids)),
            escape(detail),
        )
    console.print(table)
    console.print(
        f"{len(report.conflicts)} conflict(s); "
        f"{len(report.findings) - len(report.conflicts)} pair(s) the checker cannot decide"
    )


@rules.command("stats")
@click.option(
    "--url",
    "urls",
    multiple=True,
    default=("http://127.0.0.1:6066",),
    show_default=True,
    help="A worker's web address; repeat for every worker (counts are summed).",
)
@click.option("--json", "as_json", is_flag=True)
def stats_command(urls: tuple[str, ...], as_json: bool) -> None:
    """Execution count and last execution per rule, scraped from the workers' metrics."""
    try:
        rows = scrape_rule_stats(urls)
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("rule", "applied", "matched, not applied", "last executed")
    for rule, row in rows.items():
        table.add_row(
            rule,
            str(row["applied"]),
            str(row["matched_not_applied"]),
            str(row["last_executed"] or "-"),
        )
    _console().print(table)
