"""The editor (create and edit, workflows in a form or as YAML/JSON, rules as YAML/JSON), its
test button, the review of the plan and the publish."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from eventrules.conditions import OPERATORS, node_to_data, parse_condition
from eventrules.console.context import CONSOLE, Console
from eventrules.console.dryrun import chosen_event, dry_run, sample_event
from eventrules.console.editor import (
    EditorState,
    apply_operation,
    definition_from_source,
    form_can_show,
    param_specs,
    raw_from_form,
    source_text,
    validate_definition,
)
from eventrules.console.forms import (
    MAX_DOCUMENT_BYTES,
    choice,
    definition_id,
    optional_text,
    safe_int,
    text_value,
)
from eventrules.console.pages import render, unified_diff
from eventrules.console.publishing import bases_of, decode_bases, encode_bases, publish_plan
from eventrules.console.security import admin_only, current_principal, current_session
from eventrules.console.views.definitions import KINDS, kind_of, live_item
from eventrules.definitions.files import Definition
from eventrules.errors import ConfigConflictError, DefinitionError, InputError
from eventrules.models.actions import action_type_name
from eventrules.models.workflows import Workflow
from eventrules.ops.config import Live, plan_changes
from eventrules.ops.templates import shipped_templates

__all__ = ["add_routes"]

_MODES = ("form", "yaml", "json")


def _blank(kind: str, author: str) -> dict[str, Any]:
    if kind == "rule":
        return {
            "kind": "rule",
            "id": "my-rule",
            "name": "My rule",
            "rule_type": "pricing",
            "conditions": "total >= 100",
            "actions": [{"type": "percentage_discount", "percent": 5}],
            "priority": 5,
            "enabled": True,
            "created_by": author,
        }
    return {
        "kind": "workflow",
        "id": "",
        "name": "",
        "trigger": "order.created",
        "priority": 5,
        "enabled": True,
        "actions": [{"type": "send_email"}],
        "created_by": author,
    }


def _for_form(raw: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A definition as the form shows it: conditions in the builder's structured form (or
    left as text when the one-line form does not parse)."""
    shown = dict(raw)
    conditions = shown.get("conditions")
    if conditions is None:
        return shown, False
    try:
        shown["conditions"] = node_to_data(parse_condition(conditions))
    except DefinitionError:
        return shown, isinstance(conditions, str)
    return shown, False


def _action_views(console: Console, raw: dict[str, Any]) -> list[dict[str, Any]]:
    classes = {name: cls for cls in console.registry.classes() if (name := action_type_name(cls))}
    views = []
    actions = raw.get("actions")
    for index, item in enumerate(actions if isinstance(actions, list) else []):
        action = item if isinstance(item, dict) else {}
        action_type = str(action.get("type", ""))
        action_class = classes.get(action_type)
        params = []
        for spec in param_specs(action_class) if action_class is not None else []:
            value = action.get(spec.name)
            if value is None and spec.name == "body":
                value = action.get("template")  # the seed's name for it
            if spec.widget == "list" and isinstance(value, list):
                shown = ", ".join(str(item) for item in value)
            elif spec.widget == "checkbox":
                shown = "on" if value else ""
            else:
                shown = "" if value is None else text_value(value)
            params.append({"spec": spec, "value": shown, "key": f"a.{index}.p.{spec.name}"})
        views.append({"index": index, "type": action_type, "params": params})
    return views


def _action_docs(console: Console) -> list[dict[str, Any]]:
    return [
        {"type": name, "params": param_specs(cls), "doc": (cls.__doc__ or "").strip()}
        for cls in console.registry.classes()
        if (name := action_type_name(cls))
    ]


def _page(request: web.Request, state: EditorState, **extra: Any) -> web.Response:
    console = request.app[CONSOLE]
    shown = state.raw
    if state.mode == "form":
        shown, as_text = _for_form(state.raw)
        state.text_conditions = state.text_conditions or as_text
    trigger = str(shown.get("trigger") or "")
    context: dict[str, Any] = {
        "state": state,
        "raw": shown,
        "actions": _action_views(console, shown) if state.kind == "workflow" else [],
        "action_docs": _action_docs(console) if state.kind == "workflow" else [],
        "catalog": list(console.catalog),
        "operators": list(OPERATORS.values()),
        "sample": sample_event(console.templates_root, trigger),
        "test": None,
        "test_input": "",
        "test_source": "sample",
    }
    context.update(extra)
    status = 400 if (state.problems or state.general) and extra.get("strict") else 200
    context.pop("strict", None)
    return render(request, "editor.html", status=status, **context)


@admin_only
async def new_definition(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    kind = kind_of(request)
    raw = _blank(kind, current_principal(request).name)
    template = optional_text(request.query, "template", max_length=200)
    if template is not None and console.templates_root is not None:
        shipped = await asyncio.to_thread(shipped_templates, console.templates_root)
        if template not in shipped:
            raise InputError("template", "no such template")
        definition, _ = shipped[template]
        raw = definition.model_dump(mode="json", exclude_none=True)
        kind = definition.kind
    mode = "form" if form_can_show(kind, raw) else "yaml"
    state = EditorState(kind, mode, raw, source=source_text(raw, "yaml"))
    return _page(request, state)


@admin_only
async def edit_definition(request: web.Request) -> web.Response:
    kind = kind_of(request)
    ident = definition_id(request.match_info["definition_id"], "definition")
    item = await live_item(request, kind, ident)
    raw = {
        key: value
        for key, value in item.value.items()
        if key not in {"updated_at", "updated_by", "created_at"}
    }
    state = EditorState(
        kind,
        "form" if form_can_show(kind, raw) else "yaml",
        raw,
        source=source_text(raw, "yaml"),
        is_new=False,
        base_offset=item.offset,
        base_version=int(item.value.get("version", 0)),
    )
    return _page(request, state)


def _state_from_form(console: Console, form: Any) -> EditorState:
    kind = choice(form, "kind", ("workflow", "rule")) or "workflow"
    mode = choice(form, "mode", _MODES) or "form"
    if kind == "rule" and mode == "form":
        mode = "yaml"
    state = EditorState(
        kind,
        mode,
        {},
        is_new=optional_text(form, "is_new", max_length=5) == "true",
        base_offset=safe_int(form, "base_offset", low=-1),
        base_version=safe_int(form, "base_version", low=0),
    )
    if mode == "form":
        state.text_conditions = optional_text(form, "cond.mode", max_length=10) == "text"
        state.raw = raw_from_form(form, console.registry)
        return state
    state.source = optional_text(form, "source", max_length=MAX_DOCUMENT_BYTES) or ""
    raw = definition_from_source(state.source, mode)
    if not isinstance(raw, dict):
        raise InputError("source", "expected one definition (a mapping)")
    state.raw = raw
    return state


def _switch_mode(state: EditorState, target: str, console: Console) -> None:
    if target == state.mode or (state.kind == "rule" and target == "form"):
        return
    if target == "form":
        definition, problems = validate_definition(state.raw, console.catalog, console.registry)
        if definition is None:
            state.general.append("Fix these before switching to the form:")
            state.add_problems(problems)
            return
        raw = definition.model_dump(mode="json", exclude_none=True)
        if not form_can_show(state.kind, raw):
            state.general.append(
                "This workflow has memory (throttle, dedupe or absence), which the form does"
                " not show: edit it as YAML or JSON."
            )
            return
        state.raw = raw
    state.mode = target
    if target != "form":
        state.source = source_text(state.raw, target)


@admin_only
async def editor_post(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    form = await request.post()
    operation = optional_text(form, "op", max_length=60) or "refresh"
    try:
        state = _state_from_form(console, form)
    except InputError as exc:
        typed = form.get("source")
        state = EditorState(
            "rule" if form.get("kind") == "rule" else "workflow",
            "yaml",
            {},
            source=typed if isinstance(typed, str) and len(typed) <= MAX_DOCUMENT_BYTES else "",
        )
        state.general.append(str(exc))
        return _page(request, state, strict=True)
    if state.kind == "workflow" and not state.is_new:
        state.raw["version"] = state.base_version
    if operation.startswith("mode:"):
        _switch_mode(state, operation.removeprefix("mode:"), console)
        return _page(request, state)
    if operation == "cond-text":
        state.text_conditions = True
        return _page(request, state)
    if operation == "cond-parse":
        state.text_conditions = False
        return _page(request, state)
    if operation.startswith(("cond-", "act-")):
        new_action = choice(form, "new_action", console.registry.names())
        apply_operation(state.raw, operation, new_action=new_action)
        return _page(request, state)
    definition, problems = validate_definition(state.raw, console.catalog, console.registry)
    if definition is None:
        state.add_problems(problems)
        return _page(request, state, strict=operation in {"review", "test"})
    if operation == "test":
        return await _test(request, state, definition, form)
    if operation == "review":
        return await _review(request, state, definition)
    return _page(request, state)


async def _test(
    request: web.Request, state: EditorState, definition: Definition, form: Any
) -> web.Response:
    console = request.app[CONSOLE]
    if not isinstance(definition, Workflow):
        state.general.append("rules are tried on the Rules page (evaluate)")
        return _page(request, state)
    source = choice(form, "source", ("sample", "typed", "recent")) or "typed"
    typed = optional_text(form, "event", max_length=MAX_DOCUMENT_BYTES) or ""
    try:
        event, typed = chosen_event(form, definition.trigger, console.templates_root)
    except InputError as exc:
        return _page(
            request,
            state,
            test_input=typed,
            test_source=source,
            test_error=str(exc),
        )
    trace, actions = dry_run(definition, event, console.catalog, console.settings.zoneinfo())
    return _page(
        request,
        state,
        test={"trace": trace, "actions": actions, "event": event},
        test_input=typed,
        test_source=source,
    )


async def _review(request: web.Request, state: EditorState, definition: Definition) -> web.Response:
    console = request.app[CONSOLE]
    key = (definition.kind, definition.id)
    console.forget("live")
    live = await console.live()
    if state.is_new and key in live:
        state.problems.setdefault("id", []).append(
            f"a {definition.kind} with this id exists (v{live[key].value.get('version')})"
        )
        return _page(request, state, strict=True)
    changes = plan_changes([definition], live, updated_by=current_principal(request).name)
    # the plan is checked against what the editor was opened on, not what is live now
    if state.is_new:
        bases = bases_of(Live(), [key])
    else:
        bases = bases_of(live, [key])
        bases = [
            type(base)(base.kind, base.definition_id, state.base_offset, state.base_version)
            for base in bases
        ]
    current = live.get(key)
    change = changes[0]
    return render(
        request,
        "review.html",
        title=f"Review {definition.kind} {definition.id}",
        changes=changes,
        diffs=[
            {
                "key": f"{definition.kind}:{definition.id}",
                "lines": unified_diff(
                    current.value if current else None,
                    change.value,
                    f"live v{change.live_version}" if current else "(new)",
                    f"v{change.version}",
                ),
            }
        ],
        definitions=orjson.dumps([definition.model_dump(mode="json", exclude_none=True)]).decode(),
        bases=encode_bases(bases),
        back=f"/{definition.kind}s/{definition.id}/edit" if not state.is_new else "",
        conflicts=[],
    )


@admin_only
async def publish(request: web.Request) -> web.StreamResponse:
    """Publish what a review page showed: definitions re-validated and re-planned against the
    live table, and refused when a planned definition moved since the review's bases."""
    console = request.app[CONSOLE]
    form = await request.post()
    text = optional_text(form, "definitions", max_length=MAX_DOCUMENT_BYTES * 4) or ""
    bases = decode_bases(optional_text(form, "bases", max_length=MAX_DOCUMENT_BYTES))
    force = optional_text(form, "force", max_length=5) == "true"
    try:
        raws = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise InputError("definitions", "not what the review page sent") from None
    if not isinstance(raws, list) or not raws or len(raws) > len(bases):
        raise InputError("definitions", "not what the review page sent")
    definitions = []
    for raw in raws:
        definition, problems = validate_definition(raw, console.catalog, console.registry)
        if definition is None:
            raise InputError("definitions", "; ".join(f"{p}: {r}" for p, r in problems))
        definitions.append(definition)
    planned = {(base.kind, base.definition_id) for base in bases}
    if any((d.kind, d.id) not in planned for d in definitions):
        raise InputError("definitions", "not what the review page sent")
    console.forget("live")
    live = await console.live()
    changes = plan_changes(definitions, live, updated_by=current_principal(request).name)
    try:
        written = await asyncio.to_thread(
            publish_plan,
            console.settings,
            changes,
            bases,
            force=force,
            author=current_principal(request).name,
        )
    except ConfigConflictError as exc:
        return render(
            request,
            "review.html",
            status=409,
            title="Not published: changed meanwhile",
            changes=changes,
            diffs=[],
            definitions=text,
            bases=encode_bases(bases_of(live, planned)),
            back="",
            conflicts=exc.conflicts,
        )
    finally:
        console.forget("live", "stats")
    session = current_session(request)
    published = ", ".join(
        f"{c.kind} {c.definition_id} v{c.version}" for c in changes if c.action != "unchanged"
    )
    console.flash(
        session.id if session else None,
        "ok",
        f"Published {written} change(s): {published or 'nothing changed'}.",
    )
    first = definitions[0]
    target = f"/{first.kind}s/{first.id}" if len(definitions) == 1 else "/templates"
    raise web.HTTPSeeOther(target)


def add_routes(router: web.UrlDispatcher) -> None:
    for section in KINDS:
        router.add_get(f"/{section}/new", new_definition)
        router.add_get(f"/{section}/{{definition_id}}/edit", edit_definition)
    router.add_post("/editor", editor_post)
    router.add_post("/publish", publish)
