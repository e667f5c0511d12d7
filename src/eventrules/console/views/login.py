"""Logging in with a bearer token, and out."""

from __future__ import annotations

import asyncio
import hmac

from aiohttp import web

from eventrules.console.context import CONSOLE
from eventrules.console.forms import optional_text
from eventrules.console.security import (
    current_session,
    is_secure,
    login_cookie_name,
    new_login_nonce,
    safe_next,
    session_cookie_name,
    set_session_cookie,
)

__all__ = ["add_routes"]


def _login_page(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    console = request.app[CONSOLE]
    policy = console.policy
    nonce = new_login_nonce()
    page = console.jinja.get_template("login.html").render(
        error=error,
        nonce=nonce,
        next=safe_next(request.query.get("next") or ""),
    )
    response = web.Response(text=page, status=status, content_type="text/html", charset="utf-8")
    secure = is_secure(request, policy.trust_proxy)
    response.set_cookie(
        login_cookie_name(secure),
        nonce,
        max_age=1800,
        path="/",
        secure=secure,
        httponly=True,
        samesite="Strict",
    )
    return response


async def login_form(request: web.Request) -> web.Response:
    if request.app[CONSOLE].policy.anonymous_admin:
        raise web.HTTPSeeOther("/")
    return _login_page(request)


async def login(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    policy = console.policy
    form = await request.post()
    secure = is_secure(request, policy.trust_proxy)
    nonce = optional_text(form, "nonce", max_length=100) or ""
    expected = request.cookies.get(login_cookie_name(secure), "")
    if not nonce or not hmac.compare_digest(nonce.encode(), expected.encode()):
        return _login_page(request, error="The login form expired; try again.", status=403)
    token = optional_text(form, "token", max_length=500)
    principal = policy.tokens.authenticate(token)
    if principal is None:
        await asyncio.sleep(0.5)  # a wrong token costs the guesser time
        return _login_page(request, error="That token is not valid here.", status=401)
    session = policy.sessions.create(principal)
    response = web.HTTPSeeOther(safe_next(optional_text(form, "next", max_length=2000)))
    set_session_cookie(response, request, session, policy)
    response.del_cookie(login_cookie_name(secure), path="/")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    session = current_session(request)
    if session is not None:
        console.policy.sessions.drop(session.id)
    response = web.HTTPSeeOther("/login")
    secure = is_secure(request, console.policy.trust_proxy)
    response.del_cookie(session_cookie_name(secure), path="/")
    raise response


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/login", login_form)
    router.add_post("/login", login)
    router.add_post("/logout", logout)
    router.add_get("/healthz", healthz)
