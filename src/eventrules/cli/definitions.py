"""Offline commands on definition files: ``validate`` and ``test`` (a dry run, no side effects)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from eventrules.conditions import ConditionTrace
from eventrules.definitions.files import Definition, parse_definition, read_definition_documents
from eventrules.errors import ConfigurationError, DefinitionError, PoisonEventError
from eventrules.models.event_files import event_from_file, parse_header_options
from eventrules.models.events import Event
from eventrules.models.workflows import Workflow
from eventrules.rules import Rule, compile_rule
from eventrules.settings import Settings
from eventrules.workflows.catalog import TriggerCatalog
from eventrules.workflows.compiled import compile_workflow
from eventrules.workflows.engine import Engine
from eventrules.workflows.memory import human
from eventrules.workflows.plan import RenderedAction, WorkflowTrace

__all__ = ["dry_run_command", "validate_command"]

_triggers_option = click.option(
    "--triggers",
    "extra_triggers",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Extra trigger catalog file or directory, merged over the built-in catalog and "
    "EVENTRULES_EXTRA_TRIGGER_FILES.",
)


def _catalog(extra: tuple[Path, ...]) -> TriggerCatalog:
    try:
        return TriggerCatalog.load(*Settings().extra_trigger_files, *extra)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None


def _console() -> Console:
    # created per call so click's CliRunner (which swaps sys.stdout) captures the output
    return Console(soft_wrap=True, highlight=False)


def _table(*columns: str, title: str | None = None) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _problems(console: Console, error: DefinitionError) -> None:
    console.print(f"  [red]{escape(error.args[0])}[/red]")
    for path, reason in error.problems:
        console.print(f"    [bold]{escape(path or '<root>')}[/bold]: {escape(reason)}")


def _check(raw: Any, catalog: TriggerCatalog, seen: dict[str, str], source: str) -> Definition:
    definition = parse_definition(raw)
    if isinstance(definition, Rule):
        compile_rule(definition)
    else:
        compile_workflow(definition, catalog)
    # the config topic keys by kind and id, so a rule and a workflow may share an id
    key = f"{definition.kind}:{definition.id}"
    if key in seen:
        reason = f"{definition.id!r} is also defined in {seen[key]}"
        raise DefinitionError(
            "duplicate id", definition_id=definition.id, problems=[("id", reason)]
        )
    seen[key] = source
    return definition


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@_triggers_option
def validate_command(files: tuple[Path, ...], extra_triggers: tuple[Path, ...]) -> None:
    """Check definition FILES (YAML or JSON, one definition or a list per file)."""
    console = _console()
    catalog = _catalog(extra_triggers)
    table = _table("source", "id", "kind", "trigger / rule type", "result")
    failures: list[tuple[str, DefinitionError]] = []
    seen: dict[str, str] = {}
    for path in files:
        try:
            documents = read_definition_documents(path)
        except DefinitionError as exc:
            failures.append((str(path), exc))
            table.add_row(str(path), "", "", "", "[red]unreadable[/red]")
            continue
        for document in documents:
            try:
                definition = _check(document.raw, catalog, seen, document.source)
            except DefinitionError as exc:
                failures.append((document.source, exc))
                invalid = "[red]invalid[/red]"
                table.add_row(document.source, exc.definition_id or "", "", "", invalid)
                continue
            ok = "[green]ok[/green]"
            detail = definition.rule_type if isinstance(definition, Rule) else definition.trigger
            table.add_row(document.source, definition.id, definition.kind, detail, ok)
    console.print(table)
    for source, error in failures:
        console.print(f"[red]✗[/red] {source}")
        _problems(console, error)
    if failures:
        raise click.exceptions.Exit(1)
    console.print(f"[green]{len(seen)} definition(s) valid[/green]")


def _read_event(path: Path, headers: tuple[str, ...], console: Console) -> Event:
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read the event: {exc}") from None
    try:
        event, filled = event_from_file(
            content,
            parse_header_options(headers),
            # a dry run may omit the time; it is the only place the CLI reads the clock
            now=datetime.now(UTC),
            fill_defaults=True,
            max_bytes=Settings().max_event_bytes,
        )
    except PoisonEventError as exc:
        raise click.ClickException(f"{path}: invalid event ({exc.reason}): {exc.detail}") from None
    if filled:
        console.print(
            f"[yellow]note[/yellow]: filled in {', '.join(filled)} for the dry run; "
            "the worker dead-letters an event without them"
        )
    return event


def _load_definitions(path: Path) -> list[Workflow]:
    workflows = []
    try:
        for document in read_definition_documents(path):
            definition = parse_definition(document.raw)
            if isinstance(definition, Rule):
                raise click.ClickException(
                    f"{document.source}: {definition.id!r} is a rule; "
                    "try `eventrules rules eval` instead"
                )
            workflows.append(definition)
    except DefinitionError as exc:
        raise click.ClickException(str(exc)) from None
    return workflows


def _condition_tree(parent: Tree, trace: ConditionTrace) -> None:
    mark = "[green]✓[/green]" if trace.outcome else "[red]✗[/red]"
    label = trace.text if trace.kind == "compare" else trace.kind.upper()
    branch = parent.add(f"{mark} {escape(label)}  [dim]{escape(trace.reason)}[/dim]")
    for child in trace.children:
        _condition_tree(branch, child)


def _show_trace(
    console: Console, trace: WorkflowTrace, actions: tuple[RenderedAction, ...]
) -> None:
    verdict = "[green]WOULD FIRE[/green]" if trace.fired else "[yellow]would not fire[/yellow]"
    tree = Tree(f"[bold]{trace.workflow_id}[/bold] v{trace.workflow_version}: {verdict}")
    for reason in trace.reasons:
        tree.add(escape(reason))
    for line in trace.memory:
        tree.add(f"[cyan]memory[/cyan] {escape(line)}")
    if trace.condition is not None:
        _condition_tree(tree.add("conditions"), trace.condition)
    console.print(tree)
    table = _table("#", "action", "status", "rendered parameters", title="actions (dry run)")
    for action in actions:
        status = "[green]ok[/green]" if action.ok else "[red]failed[/red]"
        detail = action.error or json.dumps(action.params, ensure_ascii=False)
        if action.missing:
            detail += f"\nmissing variables: {', '.join(action.missing)}"
        if action.delay is not None:
            detail += f"\nruns {human(action.delay)} after the event (durable timer)"
        table.add_row(str(action.index), action.type, status, escape(detail))
    console.print(table)


@click.command("test")
@click.argument("definition", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--event",
    "event_file",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="The event as the topic carries it: a CloudEvents JSON envelope (structured mode), "
    '{"headers": {"ce_type": ...}, "data": {...}} (binary mode), or the data with --header.',
)
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="NAME=VALUE",
    help="A record header (repeatable), e.g. ce_type=order.created: --event is then the "
    "record value as is.",
)
@click.option("--id", "workflow_id", help="Only this definition when the file holds several.")
@click.option("--json", "as_json", is_flag=True, help="Print the trace and actions as JSON.")
@_triggers_option
def dry_run_command(
    *,
    definition: Path,
    event_file: Path,
    headers: tuple[str, ...],
    workflow_id: str | None,
    as_json: bool,
    extra_triggers: tuple[Path, ...],
) -> None:
    """Dry-run DEFINITION against an event: show the trace and the rendered actions."""
    engine = Engine(_catalog(extra_triggers))
    workflows = _load_definitions(definition)
    if workflow_id is not None:
        workflows = [workflow for workflow in workflows if workflow.id == workflow_id]
        if not workflows:
            raise click.ClickException(f"{definition} has no definition with id {workflow_id!r}")
    for workflow in workflows:
        try:
            engine.upsert(workflow)
        except DefinitionError as exc:
            raise click.ClickException(str(exc)) from None
    # with --json the note goes to stderr, so stdout stays one JSON document
    event = _read_event(event_file, headers, Console(stderr=True) if as_json else _console())
    console = _console()
    results: list[dict[str, Any]] = []
    for workflow in workflows:
        trace = engine.trace(workflow.id, event)
        actions = engine.render_actions(workflow.id, event)
        if as_json:
            results.append(
                {"trace": trace.to_dict(), "actions": [action.to_dict() for action in actions]}
            )
        else:
            _show_trace(console, trace, actions)
    if as_json:
        click.echo(json.dumps(results, indent=2, default=str, ensure_ascii=False))
