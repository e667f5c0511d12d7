"""The console's aiohttp application: routes, the security middleware, error pages."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from eventrules.console.context import CONSOLE, Console
from eventrules.console.security import current_principal, security_middleware
from eventrules.console.views import (
    definitions,
    dlq,
    editor,
    executions,
    login,
    overview,
    rules,
    templates,
    workflows,
)
from eventrules.errors import (
    ConfigConflictError,
    EventRulesError,
    InputError,
    NotFoundError,
)

__all__ = ["STATIC_DIR", "make_console_app"]

STATIC_DIR = Path(__file__).parent / "static"
# a definition or an event typed into a form, plus the rest of the form
_MAX_BODY = 2 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error_page(request: web.Request, status: int, message: str) -> web.Response:
    console = request.app[CONSOLE]
    try:
        principal = current_principal(request)
    except KeyError:  # before login (the login form's own errors)
        return web.Response(
            status=status,
            text=f"<!doctype html><title>{status}</title><p>{html.escape(message)}</p>",
            content_type="text/html",
            charset="utf-8",
        )
    page = console.jinja.get_template("error.html").render(
        principal=principal,
        can_admin=principal.may("admin"),
        csrf_token="",
        flashes=[],
        path=request.path,
        version="",
        prefix=console.settings.topic_prefix,
        status=status,
        message=message,
    )
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects are raised on purpose
            raise
        return _error_page(request, exc.status, exc.reason)
    except InputError as exc:
        return _error_page(request, 400, str(exc))
    except NotFoundError as exc:
        return _error_page(request, 404, str(exc))
    except ConfigConflictError as exc:
        return _error_page(request, 409, str(exc))
    except EventRulesError as exc:
        return _error_page(request, 502, f"{type(exc).__name__}: {exc}")


def make_console_app(console: Console) -> web.Application:
    # the security middleware runs first (outermost), so error pages carry its headers too
    app = web.Application(
        client_max_size=_MAX_BODY,
        middlewares=[security_middleware(console.policy), _errors],
    )
    app[CONSOLE] = console
    router = app.router
    login.add_routes(router)
    overview.add_routes(router)
    editor.add_routes(router)  # before workflows: /workflows/new is not a workflow id
    definitions.add_routes(router)
    workflows.add_routes(router)
    rules.add_routes(router)
    executions.add_routes(router)
    dlq.add_routes(router)
    templates.add_routes(router)
    router.add_static("/static", STATIC_DIR)
    return app
