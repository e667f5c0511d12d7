"""The worker's HTTP server: /metrics, /healthz, /readyz, /workflows/stats, /rules/evaluate.

Every error answer is JSON, ``{"error": "..."}``, whoever produced it (a view, or aiohttp for
an unknown path, a wrong method or a body over the size limit).

With bearer tokens configured (``EVENTRULES_HTTP_TOKENS``, see :mod:`eventrules.auth`), every
path but the probes ``/healthz`` and ``/readyz`` needs one: the ``read`` scope for GET and
``POST /rules/evaluate`` (a question, not a change), ``admin`` for anything else.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from eventrules.auth import Principal, Scope, TokenSet, bearer_token, is_loopback
from eventrules.errors import ConfigurationError, RequestNotJSONError, RuleRequestError
from eventrules.metrics import Metrics
from eventrules.rules import RulesEngine
from eventrules.runtime.rules_service import decode_request, evaluate_request

__all__ = ["MAX_BODY_BYTES", "PRINCIPAL", "WorkerView", "check_exposure", "make_web_app"]

MAX_BODY_BYTES = 1_048_576

log = logging.getLogger(__name__)


class WorkerView(Protocol):
    """What the web views ask of a worker."""

    metrics: Metrics
    rules: RulesEngine

    def alive(self) -> bool:
        """False once a part has died: the liveness probe restarts us."""

    def ready(self) -> bool:
        """True once the config table has caught up."""

    def readiness(self) -> dict[str, Any]:
        """What /readyz reports besides ``ready``."""

    def refresh_gauges(self) -> None: ...

    def workflow_stats(self) -> dict[str, dict[str, Any]]: ...


_WORKER: web.AppKey[WorkerView] = web.AppKey("worker")
_TOKENS: web.AppKey[TokenSet] = web.AppKey("tokens")
# Who made an authenticated request (absent when tokens are off or the path is public).
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")
_PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_READ_POSTS = frozenset({"/rules/evaluate"})
# aiohttp refuses a charset inside content_type; the exposition format is UTF-8 anyway.
_METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST.split(";")[0]
_METRICS_VERSION = CONTENT_TYPE_LATEST.split("version=")[-1].split(";")[0]


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def metrics(request: web.Request) -> web.Response:
    worker = request.app[_WORKER]
    worker.refresh_gauges()
    # the streams apply their counts at most every APPLY_INTERVAL_SECONDS: a scrape sees all
    worker.metrics.apply_counts()
    response = web.Response(body=generate_latest(worker.metrics.registry))
    response.headers["Content-Type"] = (
        f"{_METRICS_CONTENT_TYPE}; version={_METRICS_VERSION}; charset=utf-8"
    )
    return response


async def healthz(request: web.Request) -> web.Response:
    worker = request.app[_WORKER]
    alive = worker.alive()
    body = {"status": "ok" if alive else "failing", "time": datetime.now(UTC).isoformat()}
    return _json(body, 200 if alive else 503)


async def readyz(request: web.Request) -> web.Response:
    worker = request.app[_WORKER]
    ready = worker.ready()
    body = {"ready": ready, **worker.readiness()}
    return _json(body, 200 if ready else 503)


async def workflow_stats(request: web.Request) -> web.Response:
    return _json(request.app[_WORKER].workflow_stats())


async def rules_evaluate(request: web.Request) -> web.Response:
    worker = request.app[_WORKER]
    if not worker.ready():
        return _json({"error": "not ready: the config table is still loading"}, 503)
    # an oversized body (413) and anything unforeseen (500) are JSON through json_errors
    raw = await request.read()
    try:
        body = decode_request(raw)
        decision = evaluate_request(worker.rules, body, metrics=worker.metrics)
    except RequestNotJSONError as exc:
        return _json({"error": str(exc)}, 400)
    except RuleRequestError as exc:
        return _json({"error": str(exc)}, 422)
    return _json(decision)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own error answers (404, 405, 413, ...) and unexpected failures as JSON."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        text = exc.text or ""
        # aiohttp's default text is "404: Not Found"; a specific one (413's sizes) says more
        message = exc.reason if text.startswith(f"{exc.status}:") or not text else text
        response = _json({"error": message}, exc.status)
        for name in ("Allow", "Retry-After", "WWW-Authenticate"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return _json({"error": "internal error; see the worker's log"}, 500)


def _needed_scope(request: web.Request) -> Scope:
    read = request.method in _READ_METHODS or request.path in _READ_POSTS
    return "read" if read else "admin"


def _refused(status: int, error: str, challenge: str) -> web.Response:
    response = _json({"error": error}, status)
    response.headers["WWW-Authenticate"] = challenge
    return response


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    tokens = request.app[_TOKENS]
    if not tokens.enabled or request.path in _PUBLIC_PATHS:
        return await handler(request)
    failures = request.app[_WORKER].metrics.http_auth_failures
    principal = tokens.authenticate(bearer_token(request.headers.get("Authorization")))
    if principal is None:
        failures.labels("unauthenticated").inc()
        return _refused(401, "a valid bearer token is required", 'Bearer realm="eventrules"')
    needed = _needed_scope(request)
    if not principal.may(needed):
        failures.labels("forbidden").inc()
        return _refused(
            403,
            f"the token of {principal.name} has scope {principal.scope}; this needs {needed}",
            f'Bearer realm="eventrules", error="insufficient_scope", scope="{needed}"',
        )
    request[PRINCIPAL] = principal
    return await handler(request)


def check_exposure(host: str, tokens: TokenSet, *, allow_unauthenticated: bool) -> None:
    """Refuse to serve a non-loopback address without tokens unless explicitly allowed."""
    if tokens.enabled or allow_unauthenticated or is_loopback(host):
        return
    raise ConfigurationError(
        f"refusing to serve HTTP on {host or 'every interface'} without bearer tokens: set"
        " EVENTRULES_HTTP_TOKENS (`eventrules auth new-token`), bind 127.0.0.1, or allow it"
        " explicitly with EVENTRULES_WEB_ALLOW_UNAUTHENTICATED=true (--allow-unauthenticated)"
    )


def make_web_app(worker: WorkerView, tokens: TokenSet | None = None) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[json_errors, authenticate])
    app[_WORKER] = worker
    app[_TOKENS] = tokens or TokenSet()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/workflows/stats", workflow_stats)
    app.router.add_post("/rules/evaluate", rules_evaluate)
    return app
