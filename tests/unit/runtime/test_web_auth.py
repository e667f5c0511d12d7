"""The worker's web server over real HTTP: who may call what with which token."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from eventrules.auth import HttpToken, TokenSet, hash_token
from eventrules.errors import ConfigurationError
from eventrules.metrics import Metrics
from eventrules.rules import RulesEngine
from eventrules.runtime.web import check_exposure, make_web_app

READ, ADMIN = "ert_read-token-for-tests", "ert_admin-token-for-tests"
TOKENS = TokenSet(
    [
        HttpToken(name="grafana", sha256=hash_token(READ), scope="read"),
        HttpToken(name="ops", sha256=hash_token(ADMIN), scope="admin"),
    ]
)


class View:
    def __init__(self) -> None:
        self.metrics = Metrics.create()
        self.rules = RulesEngine()

    def alive(self) -> bool:
        return True

    def ready(self) -> bool:
        return True

    def readiness(self) -> dict[str, Any]:
        return {}

    def refresh_gauges(self) -> None:
        pass

    def workflow_stats(self) -> dict[str, dict[str, Any]]:
        return {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _serve(view: View, tokens: TokenSet) -> AsyncIterator[str]:
    runner = web.AppRunner(make_web_app(view, tokens))
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _calls(tokens: TokenSet) -> tuple[View, dict[str, int]]:
    view = View()
    statuses: dict[str, int] = {}
    async for url in _serve(view, tokens):
        async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
            for name, token in (
                ("none", None),
                ("bad", "ert_wrong"),
                ("read", READ),
                ("admin", ADMIN),
            ):
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                for method, path in (
                    ("GET", "/healthz"),
                    ("GET", "/readyz"),
                    ("GET", "/metrics"),
                    ("GET", "/workflows/stats"),
                    ("POST", "/rules/evaluate"),
                    ("POST", "/workflows/x/run"),
                ):
                    body = (
                        {"rule_type": "pricing", "facts": {"total": 10}}
                        if method == "POST"
                        else None
                    )
                    response = await client.request(method, path, json=body, headers=headers)
                    statuses[f"{name} {method} {path}"] = response.status_code
                    if response.status_code == 401:
                        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return view, statuses


def test_with_tokens_everything_but_the_probes_needs_one_of_the_right_scope() -> None:
    view, got = asyncio.run(_calls(TOKENS))
    for who in ("none", "bad", "read", "admin"):
        assert got[f"{who} GET /healthz"] == 200
        assert got[f"{who} GET /readyz"] == 200
    for who in ("none", "bad"):
        for call in ("GET /metrics", "GET /workflows/stats", "POST /rules/evaluate"):
            assert got[f"{who} {call}"] == 401, call
        assert got[f"{who} POST /workflows/x/run"] == 401
    for who in ("read", "admin"):
        assert got[f"{who} GET /metrics"] == 200
        assert got[f"{who} GET /workflows/stats"] == 200
        assert got[f"{who} POST /rules/evaluate"] == 200
    # changing something needs admin: a read token is refused before the route is even looked up
    assert got["read POST /workflows/x/run"] == 403
    assert got["admin POST /workflows/x/run"] == 404
    failures = view.metrics.http_auth_failures
    assert failures.labels("unauthenticated")._value.get() == 8
    assert failures.labels("forbidden")._value.get() == 1


def test_without_tokens_everything_is_open_as_before() -> None:
    _, got = asyncio.run(_calls(TokenSet()))
    assert got["none GET /metrics"] == 200
    assert got["none POST /rules/evaluate"] == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_binds_need_no_tokens(host: str) -> None:
    check_exposure(host, TokenSet(), allow_unauthenticated=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.1.2.3", "worker.internal"])  # noqa: S104
def test_other_binds_need_tokens_or_an_explicit_opt_out(host: str) -> None:
    with pytest.raises(ConfigurationError, match="EVENTRULES_HTTP_TOKENS"):
        check_exposure(host, TokenSet(), allow_unauthenticated=False)
    check_exposure(host, TOKENS, allow_unauthenticated=False)
    check_exposure(host, TokenSet(), allow_unauthenticated=True)
