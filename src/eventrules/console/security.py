"""Who may see and who may change: login with a bearer token, session cookies, CSRF checks and
the headers every response carries.

A request is authenticated by an ``Authorization: Bearer`` header (scripts; no cookie, so no
CSRF exposure) or by the session cookie a login sets. Every state-changing request made with a
cookie must carry the session's CSRF token (form field ``csrf_token`` or header
``X-CSRF-Token``) and, when the browser sends one, an Origin equal to the console's own.
Handlers marked :func:`admin_only` answer 403 to a ``read`` principal.
"""

from __future__ import annotations

import asyncio
import html
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlsplit

from aiohttp import web

from eventrules.auth import Principal, TokenSet, bearer_token
from eventrules.console.sessions import Session, SessionStore

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SecurityPolicy",
    "admin_only",
    "current_principal",
    "current_session",
    "is_secure",
    "login_cookie_name",
    "new_login_nonce",
    "safe_next",
    "security_middleware",
    "session_cookie_name",
    "set_session_cookie",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_PUBLIC_PATHS: Final = frozenset({"/login", "/healthz"})
_PRINCIPAL: Final = "eventrules.principal"
_SESSION: Final = "eventrules.session"
# Scripts and styles only from the console itself; no inline code, no frames, no other hosts.
_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS: Final = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass(frozen=True)
class SecurityPolicy:
    tokens: TokenSet
    sessions: SessionStore
    # development only (`eventrules console --dev-no-auth`): no tokens, everyone is admin
    anonymous_admin: bool = False
    trust_proxy: bool = False


def admin_only(handler: Handler) -> Handler:
    """Mark a handler as changing something: a ``read`` principal gets 403."""
    handler.needs_admin = True  # type: ignore[attr-defined]
    return handler


def is_secure(request: web.Request, trust_proxy: bool) -> bool:
    """Served over TLS, directly or (when trusted) behind a proxy that says so."""
    if request.secure:
        return True
    forwarded = request.headers.get("X-Forwarded-Proto", "")
    return trust_proxy and forwarded.split(",")[0].strip().lower() == "https"


def session_cookie_name(secure: bool) -> str:
    # __Host-: the browser refuses it unless Secure, Path=/ and no Domain (no subdomain games)
    return "__Host-eventrules-session" if secure else "eventrules-session"


def login_cookie_name(secure: bool) -> str:
    return "__Host-eventrules-login" if secure else "eventrules-login"


def current_principal(request: web.Request) -> Principal:
    principal: Principal = request[_PRINCIPAL]
    return principal


def current_session(request: web.Request) -> Session | None:
    session: Session | None = request.get(_SESSION)
    return session


def safe_next(target: str | None) -> str:
    """A local path to go to after login; anything else (other hosts, schemes) is '/'."""
    if not target or len(target) > 2000:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(ord(char) < 32 for char in target):
        return "/"
    return target


def _origin_ok(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        # Old browsers and scripts send none; the CSRF token still has to match.
        return True
    return origin == f"{request.scheme}://{request.host}" or (
        urlsplit(origin).netloc == request.host
    )


async def _csrf_presented(request: web.Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        form = await request.post()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def _denied(request: web.Request, status: int, message: str) -> web.Response:
    if request.headers.get("Accept", "").startswith("application/json"):
        return web.json_response({"error": message}, status=status)
    # HTML, not text/plain: the browser styles a text page inline, which the CSP refuses
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{status}</title></head><body><h1>{status}</h1>"
        f'<p>{html.escape(message)}</p><p><a href="/login">Log in</a> · <a href="/">Overview</a>'
        "</p></body></html>"
    )
    return web.Response(status=status, text=page, content_type="text/html", charset="utf-8")


def security_middleware(policy: SecurityPolicy) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await _guarded(request, handler, policy)
        except web.HTTPException as exc:  # redirects are raised
            exc.headers.update(_HEADERS)
            exc.headers["Cache-Control"] = "no-store"
            raise
        response.headers.update(_HEADERS)
        if "Cache-Control" not in response.headers and not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    return middleware


async def _guarded(
    request: web.Request, handler: Handler, policy: SecurityPolicy
) -> web.StreamResponse:
    if request.path in _PUBLIC_PATHS or request.path.startswith("/static/"):
        return await handler(request)
    session: Session | None = None
    principal: Principal | None = None
    via_cookie = False
    presented = bearer_token(request.headers.get("Authorization"))
    if presented is not None:
        principal = policy.tokens.authenticate(presented)
        if principal is None:
            await asyncio.sleep(0.2)  # a wrong token costs the guesser time
            return _denied(request, 401, "invalid bearer token")
    else:
        secure = is_secure(request, policy.trust_proxy)
        session = policy.sessions.get(request.cookies.get(session_cookie_name(secure)))
        if session is not None:
            principal, via_cookie = session.principal, True
    fresh: Session | None = None
    if principal is None and presented is None and policy.anonymous_admin:
        if request.method not in _SAFE_METHODS:
            return _denied(request, 403, "open a page first: writes need the session's CSRF token")
        session = fresh = policy.sessions.create(Principal("dev", "admin"))
        principal, via_cookie = session.principal, True
    if principal is None:
        if request.method in _SAFE_METHODS and not request.headers.get("HX-Request"):
            raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='/?=&')}")
        return _denied(request, 401, "log in first")
    if request.method not in _SAFE_METHODS and via_cookie and session is not None:
        if not _origin_ok(request):
            return _denied(request, 403, "cross-origin request refused")
        if not session.csrf_matches(await _csrf_presented(request)):
            return _denied(request, 403, "missing or wrong CSRF token; reload the page")
    if getattr(handler, "needs_admin", False) and not principal.may("admin"):
        return _denied(request, 403, f"{principal.name} has a read token: changes need admin")
    request[_PRINCIPAL] = principal
    request[_SESSION] = session
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if fresh is not None:
            set_session_cookie(exc, request, fresh, policy)
        raise
    if fresh is not None:
        set_session_cookie(response, request, fresh, policy)
    return response


def set_session_cookie(
    response: web.StreamResponse, request: web.Request, session: Session, policy: SecurityPolicy
) -> None:
    secure = is_secure(request, policy.trust_proxy)
    response.set_cookie(
        session_cookie_name(secure),
        session.id,
        max_age=int(policy.sessions.ttl),
        path="/",
        secure=secure,
        httponly=True,
        samesite="Strict",
    )


def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)
