"""The webhook executor against a real HTTP server on 127.0.0.1 (no Kafka needed)."""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from eventrules.actions import WebhookExecutor, WebhookRequest, WebhookResult

pytestmark = pytest.mark.integration

SECRET = "whsec_" + base64.b64encode(b"integration-secret-0123456789ab").decode()
LOOPBACK_ONLY = ["127.0.0.1/32"]


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class RecordingServer(ThreadingHTTPServer):
    """Records requests; answers ``statuses`` in order (then 200) after ``delay`` seconds."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.connections = 0
        self.statuses: list[int] = []
        self.delay = 0.0
        self.released = threading.Event()  # set at teardown so delayed handlers exit at once
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.connections += 1
        return True


class _Handler(BaseHTTPRequestHandler):
    server: RecordingServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.server.received.append(
            Received(self.command, self.path, dict(self.headers.items()), body)
        )
        if self.server.delay:
            self.server.released.wait(self.server.delay)
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        try:
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test): nothing left to answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    httpd = RecordingServer()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.released.set()
        httpd.shutdown()
        httpd.server_close()  # joins the handler threads
        thread.join()


def call(
    url: str, *, allow_list: list[str], outcomes: list[str] | None = None, **fields: Any
) -> WebhookResult:
    async def main() -> WebhookResult:
        # trust_env=False: a proxy from the environment must not carry loopback traffic
        async with httpx.AsyncClient(trust_env=False) as client:
            executor = WebhookExecutor(
                client,
                secrets={"hooks": SECRET},
                allow_list=allow_list,
                backoff_base=0.01,
                on_attempt=None if outcomes is None else lambda o, s: outcomes.append(o),
            )
            fields.setdefault("message_id", "act-abc")
            return await executor.call(WebhookRequest(url=url, **fields))

    return asyncio.run(main())


def test_signed_request_arrives_and_verifies(server: RecordingServer) -> None:
    result = call(
        f"{server.url}/hook", allow_list=LOOPBACK_ONLY, body={"order": 1}, secret_name="hooks"
    )
    assert result.ok, result.error
    assert (result.status_code, result.attempts, result.response_body) == (200, 1, "ok")
    [received] = server.received
    assert received.path == "/hook"
    assert Webhook(SECRET).verify(received.body, received.headers) == {"order": 1}
    headers = {name.lower(): value for name, value in received.headers.items()}
    assert headers["idempotency-key"] == headers["webhook-id"] == "act-abc"
    assert headers["host"] == server.url.removeprefix("http://")


def test_server_error_is_retried_with_the_same_idempotency_key(server: RecordingServer) -> None:
    server.statuses = [500]
    outcomes: list[str] = []
    result = call(server.url, allow_list=LOOPBACK_ONLY, outcomes=outcomes, body=[1])
    assert result.ok, result.error
    assert result.attempts == 2
    assert outcomes == ["http_500", "success"]
    assert [r.headers["Idempotency-Key"] for r in server.received] == ["act-abc", "act-abc"]


def test_loopback_is_refused_without_an_allow_list_entry(server: RecordingServer) -> None:
    result = call(server.url, allow_list=[], body={"x": 1})
    assert not result.ok
    assert result.error == "blocked: 127.0.0.1 is a loopback address (allow-list: empty)"
    assert result.attempts == 0
    assert server.connections == 0
    assert server.received == []


def test_slow_server_times_out_on_every_attempt(server: RecordingServer) -> None:
    server.delay = 5.0
    result = call(server.url, allow_list=LOOPBACK_ONLY, timeout_seconds=0.3, max_attempts=2)
    assert not result.ok
    assert result.error == "timed out after 0.3s (2 attempts)"
    assert result.attempts == 2
    assert len(server.received) == 2
    assert result.duration_ms < 4000  # the deadline, not the server, ended each attempt


def test_closed_port_is_a_connection_error_after_retries() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # the socket is closed and never listened: connecting is refused
    outcomes: list[str] = []
    result = call(f"http://127.0.0.1:{port}/", allow_list=LOOPBACK_ONLY, outcomes=outcomes)
    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("connection failed:")
    assert result.error.endswith("(3 attempts)")
    assert outcomes == ["connect_error"] * 3
