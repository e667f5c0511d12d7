"""Templates: the shipped gallery, and install (planned and reviewed like `config apply`)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from eventrules.console.context import CONSOLE
from eventrules.console.pages import render, unified_diff
from eventrules.console.publishing import bases_of, encode_bases
from eventrules.console.security import admin_only, current_principal
from eventrules.definitions.files import Definition
from eventrules.errors import InputError
from eventrules.models.workflows import Workflow
from eventrules.ops.config import plan_changes
from eventrules.ops.templates import shipped_templates

__all__ = ["add_routes"]


async def _shipped(request: web.Request) -> dict[str, tuple[Definition, Any]]:
    root = request.app[CONSOLE].templates_root
    if root is None:
        return {}
    return await asyncio.to_thread(shipped_templates, root)


async def gallery(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    shipped = await _shipped(request)
    live = await console.live()
    cards = []
    for name, (definition, _) in sorted(shipped.items()):
        current = live.get((definition.kind, definition.id))
        cards.append(
            {
                "name": name,
                "definition": definition,
                "what": definition.trigger
                if isinstance(definition, Workflow)
                else definition.rule_type,
                "installed": current.value.get("version") if current else None,
            }
        )
    return render(request, "templates.html", cards=cards, missing=console.templates_root is None)


@admin_only
async def install(request: web.Request) -> web.Response:
    """Plan installing the chosen templates and show the review (publish is one click on)."""
    console = request.app[CONSOLE]
    form = await request.post()
    names = [name for name in form.getall("name", []) if isinstance(name, str)][:50]
    shipped = await _shipped(request)
    unknown = [name for name in names if name not in shipped]
    if not names or unknown:
        raise InputError("name", "choose shipped templates")
    definitions = [shipped[name][0] for name in names]
    console.forget("live")
    live = await console.live()
    changes = plan_changes(definitions, live, updated_by=current_principal(request).name)
    keys = [(d.kind, d.id) for d in definitions]
    return render(
        request,
        "review.html",
        title=f"Install {', '.join(names)}",
        changes=changes,
        diffs=[
            {
                "key": f"{c.kind}:{c.definition_id}",
                "lines": unified_diff(
                    live[(c.kind, c.definition_id)].value
                    if (c.kind, c.definition_id) in live
                    else None,
                    c.value,
                    "live",
                    f"v{c.version}",
                ),
            }
            for c in changes
            if c.action != "unchanged"
        ],
        definitions=orjson.dumps(
            [d.model_dump(mode="json", exclude_none=True) for d in definitions]
        ).decode(),
        bases=encode_bases(bases_of(live, keys)),
        back="/templates",
        conflicts=[],
    )


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/templates", gallery)
    router.add_post("/templates/install", install)
