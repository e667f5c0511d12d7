"""The webhook executor against httpx.MockTransport: retries, backoff, headers, refusals."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from eventrules.actions import WebhookExecutor, WebhookRequest, WebhookResult
from eventrules.actions.webhook import RESPONSE_BODY_LIMIT
from eventrules.errors import ConfigurationError

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
PUBLIC = "93.184.216.34"
DNS = {
    "hooks.example.com": [PUBLIC],
    "two.example.com": [PUBLIC, "93.184.216.35"],
    "internal.example.com": ["10.0.0.5"],
}

Reply = httpx.Response | Exception | Callable[[httpx.Request], Any]


async def resolve(host: str, port: int) -> Sequence[str]:
    if host not in DNS:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return DNS[host]


@dataclass
class Run:
    result: WebhookResult
    requests: list[httpx.Request]
    sleeps: list[float]
    attempts: list[str] = field(default_factory=list)


def call(
    replies: Sequence[Reply],
    *,
    url: str = "http://hooks.example.com/hook",
    client_options: dict[str, Any] | None = None,
    executor_options: dict[str, Any] | None = None,
    **request_fields: Any,
) -> Run:
    """One executor call; each request the server sees gets the next reply."""
    requests: list[httpx.Request] = []
    sleeps: list[float] = []
    outcomes: list[str] = []
    pending = iter(replies)

    async def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        reply = next(pending)
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return await reply(request)  # type: ignore[no-any-return]
        return reply

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def main() -> WebhookResult:
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport, **(client_options or {})) as client:
            options: dict[str, Any] = {
                "secrets": {"shop": SECRET},
                "resolver": resolve,
                "sleep": fake_sleep,
                "jitter": lambda: 1.0,
                "on_attempt": lambda outcome, seconds: outcomes.append(outcome),
            }
            options.update(executor_options or {})
            executor = WebhookExecutor(client, **options)
            request_fields.setdefault("message_id", "act-1")
            return await executor.call(WebhookRequest(url=url, **request_fields))

    result = asyncio.run(main())
    return Run(result, requests, sleeps, outcomes)


def test_success_pins_the_vetted_address_and_keeps_the_host_header() -> None:
    run = call([httpx.Response(200, text="thanks")], body={"order": 42}, headers={"X-Shop": "1"})
    assert run.result == WebhookResult(True, 200, 1, run.result.duration_ms, None, "thanks")
    [sent] = run.requests
    assert sent.url == httpx.URL(f"http://{PUBLIC}/hook")
    assert sent.headers["Host"] == "hooks.example.com"
    assert sent.headers["Idempotency-Key"] == "act-1"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["X-Shop"] == "1"
    assert "webhook-signature" not in sent.headers  # no secret named, nothing to sign with
    assert orjson.loads(sent.content) == {"order": 42}
    assert run.attempts == ["success"]


def test_https_keeps_the_host_name_for_tls() -> None:
    run = call([httpx.Response(204)], url="https://hooks.example.com:8443/h?x=1")
    [sent] = run.requests
    assert sent.url == httpx.URL(f"https://{PUBLIC}:8443/h?x=1")
    assert sent.headers["Host"] == "hooks.example.com:8443"
    assert sent.extensions["sni_hostname"] == "hooks.example.com"
    assert run.result.ok


def test_signed_request_verifies_with_the_reference_library() -> None:
    run = call([httpx.Response(200)], body={"total": 9.5}, secret_name="shop")
    [sent] = run.requests
    assert sent.headers["webhook-id"] == sent.headers["Idempotency-Key"] == "act-1"
    assert Webhook(SECRET).verify(sent.content, dict(sent.headers)) == {"total": 9.5}


def test_every_retry_is_re_signed_with_a_fresh_timestamp() -> None:
    now = int(time.time())
    ticks = iter([now, now + 30])
    run = call(
        [httpx.Response(502), httpx.Response(200)],
        body="plain text",
        secret_name="shop",
        executor_options={"clock": lambda: next(ticks)},
    )
    assert run.result.ok
    assert run.result.attempts == 2
    first, second = run.requests
    assert [r.headers["webhook-timestamp"] for r in run.requests] == [str(now), str(now + 30)]
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
    for sent in run.requests:
        assert sent.headers["Idempotency-Key"] == sent.headers["webhook-id"] == "act-1"
        Webhook(SECRET).verify(sent.content, dict(sent.headers), json_parse=False)


def test_unknown_secret_fails_without_sending() -> None:
    run = call([], secret_name="missing")
    assert not run.result.ok
    assert run.result.attempts == 0
    assert run.result.error is not None
    assert "unknown secret 'missing'" in run.result.error
    assert "not sent" in run.result.error
    assert run.requests == []


def test_a_malformed_secret_is_refused_at_start_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError, match="'shop'") as info:
        WebhookExecutor(httpx.AsyncClient(), secrets={"shop": "whsec_%%%%"})
    assert "%%%%" not in str(info.value)


def test_full_jitter_backoff_doubles_up_to_the_cap() -> None:
    run = call(
        [httpx.Response(500)] * 5,
        max_attempts=5,
        executor_options={"backoff_base": 0.2, "backoff_max": 1.0},
    )
    assert run.sleeps == pytest.approx([0.2, 0.4, 0.8, 1.0])
    assert run.result.error == "HTTP 500 after 5 attempts"
    assert run.result.status_code == 500
    assert run.attempts == ["http_500"] * 5


def test_jitter_scales_each_delay() -> None:
    run = call([httpx.Response(503)] * 3, executor_options={"jitter": lambda: 0.25})
    assert run.sleeps == pytest.approx([0.05, 0.1])


def test_retry_then_success_reuses_the_idempotency_key() -> None:
    run = call([httpx.ConnectError("refused"), httpx.Response(500), httpx.Response(201)])
    assert run.result.ok
    assert run.result.attempts == 3
    assert {r.headers["Idempotency-Key"] for r in run.requests} == {"act-1"}
    assert run.attempts == ["connect_error", "http_500", "success"]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_client_errors_other_than_429_are_not_retried(status: int) -> None:
    run = call([httpx.Response(status, text="nope")])
    assert run.result.error == f"HTTP {status} after 1 attempt"
    assert run.result.response_body == "nope"
    assert len(run.requests) == 1
    assert run.sleeps == []


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (429, "3", 3.0),
        (503, "1.5", 1.5),
        (429, "120", 10.0),  # capped by backoff_max
        (429, "Thu, 01 Jan 2026 00:00:07 GMT", 7.0),  # HTTP-date, against the injected clock
        (429, "soon", 0.2),  # unreadable: the usual backoff
    ],
)
def test_retry_after_is_honoured(status: int, retry_after: str, expected: float) -> None:
    replies = [httpx.Response(status, headers={"Retry-After": retry_after}), httpx.Response(200)]
    run = call(replies, executor_options={"clock": lambda: 1_767_225_600.0})
    assert run.sleeps == pytest.approx([expected])
    assert run.result.ok


def test_connection_errors_exhaust_the_attempts() -> None:
    run = call([httpx.ConnectError("Connection refused")] * 3)
    assert run.result.error == "connection failed: Connection refused (3 attempts)"
    assert run.result.status_code is None
    assert len(run.sleeps) == 2


def test_transport_timeouts_are_retried() -> None:
    run = call([httpx.ReadTimeout("slow")] * 2, max_attempts=2, timeout_seconds=2.0)
    assert run.result.error == "timed out after 2.0s (2 attempts)"
    assert run.attempts == ["timeout", "timeout"]


def test_the_per_attempt_deadline_covers_a_slow_response() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    started = time.perf_counter()
    run = call([slow, slow], max_attempts=2, timeout_seconds=0.05)
    assert run.result.error == "timed out after 0.05s (2 attempts)"
    assert time.perf_counter() - started < 2


def test_a_broken_connection_is_retried() -> None:
    run = call([httpx.RemoteProtocolError("Server disconnected"), httpx.Response(200)])
    assert run.result.ok
    assert run.attempts == ["network_error", "success"]


def test_unresolvable_host_is_retried_then_reported() -> None:
    run = call([], url="http://nowhere.example.com/", max_attempts=2)
    assert run.result.error == (
        "could not resolve nowhere.example.com: [Errno -2] Name or service not known (2 attempts)"
    )
    assert run.attempts == ["dns_error", "dns_error"]


def test_retries_rotate_through_the_vetted_addresses() -> None:
    run = call([httpx.ConnectError("down"), httpx.Response(200)], url="http://two.example.com/")
    assert [r.url.host for r in run.requests] == [PUBLIC, "93.184.216.35"]
    assert run.result.ok


def test_private_destination_is_refused_before_any_request() -> None:
    run = call([], url="http://internal.example.com/")
    assert run.result.error == (
        "blocked: internal.example.com resolves to 10.0.0.5, a private address (allow-list: empty)"
    )
    assert run.result.attempts == 0
    assert run.requests == []
    assert run.attempts == ["blocked"]


def test_allow_list_admits_a_private_destination() -> None:
    run = call(
        [httpx.Response(200)],
        url="http://internal.example.com/",
        executor_options={"allow_list": ["10.0.0.0/24"]},
    )
    assert run.result.ok
    assert run.requests[0].url.host == "10.0.0.5"


def test_redirects_are_not_followed_even_if_the_client_would() -> None:
    run = call(
        [httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/"})],
        client_options={"follow_redirects": True},
    )
    assert run.result.error == "HTTP 302 after 1 attempt (redirects are not followed)"
    assert len(run.requests) == 1


def test_response_body_is_capped() -> None:
    run = call([httpx.Response(200, content=b"x" * (RESPONSE_BODY_LIMIT * 3))])
    assert run.result.response_body == "x" * RESPONSE_BODY_LIMIT + " [truncated]"


@pytest.mark.parametrize(
    ("body", "content", "content_type"),
    [
        ("plain", b"plain", "text/plain; charset=utf-8"),
        (b"\x00\x01", b"\x00\x01", "application/octet-stream"),
        ([1, "two"], b'[1,"two"]', "application/json"),
    ],
)
def test_body_encodings(body: Any, content: bytes, content_type: str) -> None:
    run = call([httpx.Response(200)], body=body)
    assert run.requests[0].content == content
    assert run.requests[0].headers["Content-Type"] == content_type


def test_a_workflow_content_type_wins_and_get_sends_no_body() -> None:
    run = call([httpx.Response(200)], method="get", headers={"content-type": "text/csv"})
    [sent] = run.requests
    assert sent.method == "GET"
    assert sent.content == b""
    assert sent.headers.get_list("content-type") == ["text/csv"]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"headers": {"X-Evil": "a\r\nHost: internal"}}, "not single-line ASCII"),
        ({"headers": {"X-Name": "café"}}, "not single-line ASCII"),
        ({"headers": {"Bad Name": "v"}}, "invalid header name"),
        ({"headers": {"Host": "internal"}}, "set by the executor"),
        ({"headers": {"webhook-signature": "v1,forged"}}, "set by the executor"),
        ({"body": {"when": object()}}, "not JSON-serialisable"),
        ({"url": "ftp://hooks.example.com/"}, "invalid url"),
        ({"url": "http://[::1/"}, "invalid url"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"message_id": ""}, "message_id is empty"),
    ],
)
def test_unusable_requests_fail_without_sending(fields: dict[str, Any], error: str) -> None:
    run = call([], **fields)
    assert not run.result.ok
    assert run.result.error is not None
    assert error in run.result.error
    assert run.requests == []


def test_actions_are_isolated_from_each_other() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500 if request.url.path == "/fail" else 200)

    async def noop_sleep(seconds: float) -> None:
        pass

    async def main() -> list[WebhookResult]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            executor = WebhookExecutor(client, secrets={}, resolver=resolve, sleep=noop_sleep)
            urls = ["/fail", "http://internal.example.com/", "/ok"]
            return await asyncio.gather(
                *(
                    executor.call(
                        WebhookRequest(
                            url=u if u.startswith("http") else f"http://hooks.example.com{u}",
                            message_id=f"act-{i}",
                        )
                    )
                    for i, u in enumerate(urls)
                )
            )

    failed, blocked, succeeded = asyncio.run(main())
    assert failed.error == "HTTP 500 after 3 attempts"
    assert blocked.error is not None
    assert blocked.error.startswith("blocked:")
    assert succeeded.ok
