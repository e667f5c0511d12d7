"""Changes to one live definition, workflow or rule: enable/disable and delete (with a
confirmation page). Each goes through plan and ``publish_checked`` against the version the page
showed, so a concurrent edit is refused and shown."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from eventrules.console.context import CONSOLE
from eventrules.console.forms import definition_id, optional_text, safe_int
from eventrules.console.pages import redirect, render
from eventrules.console.publishing import Base, publish_plan
from eventrules.console.security import admin_only, current_principal, safe_next
from eventrules.errors import ConfigConflictError, NotFoundError
from eventrules.ops.config import LiveDefinition, PlannedChange, plan_toggle

__all__ = ["KINDS", "add_routes", "kind_of", "live_item", "section_of"]

KINDS = {"workflows": "workflow", "rules": "rule"}


def section_of(kind: str) -> str:
    return f"{kind}s"


def kind_of(request: web.Request) -> str:
    """``workflow`` or ``rule``, from the section of the path (routes exist for both only)."""
    return KINDS[request.path.split("/")[1]]


def _target(request: web.Request) -> tuple[str, str]:
    return kind_of(request), definition_id(request.match_info["definition_id"], "definition")


async def live_item(request: web.Request, kind: str, ident: str) -> LiveDefinition:
    console = request.app[CONSOLE]
    item = (await console.live()).get((kind, ident))
    if item is None:  # maybe newer than the cached table: read it again before saying no
        console.forget("live")
        item = (await console.live()).get((kind, ident))
    if item is None:
        raise NotFoundError(f"no live {kind} {ident!r}")
    return item


def _base_from_form(form: Any, kind: str, ident: str) -> Base:
    # the version and offset the page showed: what the change is planned against
    return Base(
        kind,
        ident,
        safe_int(form, "base_offset", low=-1),
        safe_int(form, "base_version", low=0),
    )


async def _publish(
    request: web.Request, change: PlannedChange, base: Base, back: str, done: str
) -> web.StreamResponse:
    console = request.app[CONSOLE]
    try:
        await asyncio.to_thread(
            publish_plan,
            console.settings,
            [change],
            [base],
            force=False,
            author=current_principal(request).name,
        )
    except ConfigConflictError as exc:
        detail = "; ".join(f"{key}: {what}" for key, what in exc.conflicts)
        raise redirect(
            request, back, "error", f"Not published: changed since you loaded it ({detail})."
        ) from None
    finally:
        console.forget("live")
    raise redirect(request, back, "ok", done)


@admin_only
async def toggle(request: web.Request) -> web.StreamResponse:
    kind, ident = _target(request)
    form = await request.post()
    back = safe_next(optional_text(form, "next"))
    enabled = optional_text(form, "enabled", max_length=5) == "true"
    item = await live_item(request, kind, ident)
    if bool(item.value.get("enabled", True)) == enabled:
        raise redirect(request, back, "info", f"{ident} is already {'on' if enabled else 'off'}.")
    change = plan_toggle(item, enabled=enabled, updated_by=current_principal(request).name)
    word = "enabled" if enabled else "disabled"
    return await _publish(
        request,
        change,
        _base_from_form(form, kind, ident),
        back,
        f"{ident} {word}: published v{change.version}.",
    )


@admin_only
async def delete_page(request: web.Request) -> web.Response:
    kind, ident = _target(request)
    item = await live_item(request, kind, ident)
    return render(request, "confirm_delete.html", kind=kind, item=item)


@admin_only
async def delete(request: web.Request) -> web.StreamResponse:
    kind, ident = _target(request)
    form = await request.post()
    base = _base_from_form(form, kind, ident)
    change = PlannedChange("delete", kind, ident, None, None, base.version)
    return await _publish(request, change, base, f"/{section_of(kind)}", f"{kind} {ident} deleted.")


def add_routes(router: web.UrlDispatcher) -> None:
    for section in KINDS:
        router.add_post(f"/{section}/{{definition_id}}/toggle", toggle)
        router.add_get(f"/{section}/{{definition_id}}/delete", delete_page)
        router.add_post(f"/{section}/{{definition_id}}/delete", delete)
