"""Every error answer of the worker's web server is JSON {"error": ...}, as documented."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from eventrules.metrics import Metrics
from eventrules.rules import RulesEngine
from eventrules.runtime.web import make_web_app


class View:
    def __init__(self, *, ready: bool = True, fail_stats: bool = False) -> None:
        self.metrics = Metrics.create()
        self.rules = RulesEngine()
        self._ready = ready
        self._fail_stats = fail_stats

    def alive(self) -> bool:
        return True

    def ready(self) -> bool:
        return self._ready

    def readiness(self) -> dict[str, Any]:
        return {}

    def refresh_gauges(self) -> None:
        return None

    def workflow_stats(self) -> dict[str, dict[str, Any]]:
        if self._fail_stats:
            raise RuntimeError("stats broke")
        return {}


def _answer(view: View, method: str, path: str, **options: Any) -> tuple[int, Any, Any]:
    async def run() -> tuple[int, Any, Any]:
        async with TestClient(TestServer(make_web_app(view))) as client:
            response = await client.request(method, path, **options)
            assert response.content_type == "application/json", await response.text()
            return response.status, await response.json(), response.headers

    return asyncio.run(run())


def _big() -> io.BytesIO:
    return io.BytesIO(b"x" * 1_100_000)  # over the 1 MiB limit


@pytest.mark.parametrize(
    ("method", "path", "options", "status", "error"),
    [
        ("GET", "/nope", {}, 404, "Not Found"),
        ("GET", "/rules/evaluate", {}, 405, "Method Not Allowed"),
        ("POST", "/rules/evaluate", {"data": _big()}, 413, "Maximum request body size"),
        ("POST", "/rules/evaluate", {"data": b"{"}, 400, "request body is not JSON"),
        ("POST", "/rules/evaluate", {"json": {"facts": {}}}, 422, "rule_type"),
    ],
)
def test_error_answers_are_json(
    method: str, path: str, options: dict[str, Any], status: int, error: str
) -> None:
    got, body, headers = _answer(View(), method, path, **options)
    assert got == status
    assert set(body) == {"error"}
    assert error in body["error"]
    if status == 405:
        assert headers["Allow"] == "POST"


def test_not_ready_and_unexpected_failures_are_json(caplog: pytest.LogCaptureFixture) -> None:
    status, body, _ = _answer(View(ready=False), "POST", "/rules/evaluate", json={})
    assert (status, body) == (503, {"error": "not ready: the config table is still loading"})
    status, body, _ = _answer(View(fail_stats=True), "GET", "/workflows/stats")
    assert status == 500
    assert body == {"error": "internal error; see the worker's log"}
    assert "GET /workflows/stats failed" in caplog.text


def test_a_scrape_sees_the_counts_the_streams_have_not_applied_yet() -> None:
    view = View()
    # what a stream gathered since its last apply (apply_counts_due waits out an interval)
    view.metrics.ran("wf-1", "success", 0.002)

    async def scrape() -> str:
        async with TestClient(TestServer(make_web_app(view))) as client:
            response = await client.get("/metrics")
            assert response.status == 200
            return await response.text()

    body = asyncio.run(scrape())
    assert 'eventrules_executions_total{status="success",workflow="wf-1"} 1.0' in body
    assert 'eventrules_workflow_matches_total{workflow="wf-1"} 1.0' in body
