"""The ``call_webhook`` executor: one HTTP call with retries, signatures and the SSRF guard.

:meth:`WebhookExecutor.call` never raises for remote or network problems: every failure becomes a
:class:`WebhookResult` with ``ok=False`` and a readable ``error``, so one failing action cannot
stop the others. Each attempt resolves the host, vets every address (:mod:`.ssrf`) and connects to
a vetted address with the original ``Host`` header (and TLS SNI), so DNS cannot be rebound
between the check and the connection. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from eventrules.actions.pools import DestinationPools, tls_context
from eventrules.actions.signing import decode_secret, signature_headers
from eventrules.actions.ssrf import AllowList, Resolver, system_resolver, vet_destination
from eventrules.errors import ConfigurationError, WebhookBlockedError, WebhookError

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from eventrules.settings import Settings

__all__ = [
    "RESPONSE_BODY_LIMIT",
    "AttemptHook",
    "WebhookExecutor",
    "WebhookRequest",
    "WebhookResult",
]

RESPONSE_BODY_LIMIT = 4 * 1024

# Called once per attempt with (outcome, seconds): "success", "http_<status>", "timeout",
# "connect_error", "network_error", "dns_error", "request_error" or "blocked".
AttemptHook = Callable[[str, float], None]

# Set by the executor on every attempt; a workflow that sets one is refused, not overridden.
_RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "idempotency-key",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True, kw_only=True)
class WebhookRequest:
    """One rendered ``call_webhook`` action.

    ``message_id`` is deterministic (the action id): it is the ``webhook-id`` and the
    ``Idempotency-Key`` of every attempt, so a receiver can drop retried duplicates.
    """

    url: str
    message_id: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None  # str/bytes are sent as they are; anything else as JSON (orjson)
    timeout_seconds: float = 10.0
    max_attempts: int = 3
    secret_name: str | None = None


@dataclass(frozen=True)
class WebhookResult:
    ok: bool
    status_code: int | None
    attempts: int  # attempts that tried to reach the endpoint; a refused destination is 0
    duration_ms: float
    error: str | None
    response_body: str | None  # at most RESPONSE_BODY_LIMIT bytes, decoded leniently
    # a failure another attempt may cure (timeout, connection, 429, 5xx): worth a retry later
    retryable: bool = False


@dataclass(frozen=True)
class _Prepared:
    request: WebhookRequest
    url: httpx.URL
    host: str
    port: int
    headers: dict[str, str]
    content: bytes | None
    key: bytes | None


@dataclass(frozen=True)
class _Attempt:
    outcome: str
    detail: str = ""
    counted: bool = True
    retryable: bool = False
    status_code: int | None = None
    response_body: str | None = None
    retry_after: float | None = None


class WebhookExecutor:
    """Runs ``call_webhook`` actions through one shared ``httpx.AsyncClient`` (owned by the caller).

    ``secrets`` maps the secret *name* a workflow references to its ``whsec_<base64>`` value; they
    are decoded here so a malformed secret fails at start-up, not on the first event.
    ``allow_list`` holds CIDRs or exact host names the SSRF guard admits. ``jitter`` returns a
    float in [0, 1) and, like ``clock`` and ``sleep``, is injectable so tests are deterministic.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        secrets: Mapping[str, str],
        allow_list: Sequence[str] = (),
        backoff_base: float = 0.2,
        backoff_max: float = 10.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        resolver: Resolver | None = None,
        on_attempt: AttemptHook | None = None,
        jitter: Callable[[], float] = random.random,
        tracer: Tracer | None = None,
    ) -> None:
        self._client = client
        self._keys = {name: _decode_named_secret(name, value) for name, value in secrets.items()}
        self._allow_list = AllowList.parse(allow_list)
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._clock = clock
        self._sleep = sleep
        self._resolver = resolver or system_resolver
        self._on_attempt = on_attempt
        self._jitter = jitter
        self._tracer = tracer

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        client: httpx.AsyncClient,
        *,
        on_attempt: AttemptHook | None = None,
        tracer: Tracer | None = None,
    ) -> WebhookExecutor:
        """The executor a worker (and a manual run) uses: secrets and allow-list from settings."""
        return cls(
            client,
            secrets={
                name: value.get_secret_value() for name, value in settings.webhook_secrets.items()
            },
            allow_list=settings.webhook_allow_list,
            on_attempt=on_attempt,
            tracer=tracer,
        )

    @staticmethod
    def new_client(ca_location: str | None = None) -> httpx.AsyncClient:
        """The HTTP client webhooks go through: no redirects, trust_env=False so an
        environment proxy cannot carry webhook traffic past the SSRF guard, and connections
        pooled per host name and vetted address (:mod:`.pools`), never shared across hosts.
        ``ca_location``: the CAs server certificates are checked against (default: certifi)."""
        return httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            transport=DestinationPools(context=tls_context(ca_location)),
        )

    async def call(self, request: WebhookRequest) -> WebhookResult:
        # perf_counter, not the injected wall clock: durations must survive clock adjustments
        started = time.perf_counter()
        try:
            prepared = self._prepare(request)
        except WebhookError as exc:
            return WebhookResult(False, None, 0, _elapsed_ms(started), str(exc), None)
        attempts = 0
        number = 0
        while True:
            number += 1
            attempt = await self._attempt(prepared, number)
            attempts += attempt.counted
            if not attempt.retryable or number >= request.max_attempts:
                break
            await self._sleep(self._delay(number, attempt.retry_after))
        ok = attempt.outcome == "success"
        return WebhookResult(
            ok=ok,
            status_code=attempt.status_code,
            attempts=attempts,
            duration_ms=_elapsed_ms(started),
            error=None if ok else _describe_failure(attempt, attempts, request),
            response_body=attempt.response_body,
            retryable=not ok and attempt.retryable,
        )

    def _prepare(self, request: WebhookRequest) -> _Prepared:
        if request.max_attempts < 1 or request.timeout_seconds <= 0:
            raise WebhookError("max_attempts must be >= 1 and timeout_seconds > 0")
        if not request.message_id:
            raise WebhookError("message_id is empty: it is the webhook-id and Idempotency-Key")
        try:
            url = httpx.URL(request.url)
        except httpx.InvalidURL as exc:
            raise WebhookError(f"invalid url {request.url!r}: {exc}") from None
        if url.scheme not in ("http", "https") or not url.raw_host:
            raise WebhookError(f"invalid url {request.url!r}: need http(s)://host/...")
        key = None
        if request.secret_name is not None:
            key = self._keys.get(request.secret_name)
            if key is None:
                raise WebhookError(
                    f"unknown secret {request.secret_name!r}: not configured on this worker, "
                    "so the request was not sent unsigned"
                )
        content, content_type = _encode_body(request.body)
        defaults = {"User-Agent": "eventrules-webhook"}
        if content_type is not None:
            defaults["Content-Type"] = content_type
        for name, value in request.headers.items():
            _check_header(name, value)
            if name.lower() in _RESERVED_HEADERS:
                raise WebhookError(f"header {name!r} is set by the executor, not the workflow")
        _check_header("Idempotency-Key", request.message_id)
        overridden = {name.lower() for name in request.headers}
        headers = {k: v for k, v in defaults.items() if k.lower() not in overridden}
        headers |= request.headers
        return _Prepared(
            request=request,
            url=url,
            host=url.raw_host.decode("ascii"),
            port=url.port or (443 if url.scheme == "https" else 80),
            headers=headers,
            content=content,
            key=key,
        )

    async def _attempt(self, prepared: _Prepared, number: int) -> _Attempt:
        if self._tracer is None:
            return await self._try(prepared, number)
        from eventrules import tracing  # noqa: PLC0415 - opentelemetry loads only when tracing

        method = prepared.request.method.upper()
        attributes = tracing.http_client_attributes(
            method, prepared.url, resend_count=number - 1, action_id=prepared.request.message_id
        )
        with self._tracer.start_as_current_span(
            method, kind=tracing.CLIENT, attributes=attributes
        ) as span:
            # the request carries this attempt's traceparent, in place of any the workflow set
            headers = tracing.trace_headers(tracing.without_trace_headers(prepared.headers))
            attempt = await self._try(dataclasses.replace(prepared, headers=dict(headers)), number)
            tracing.record_outcome(span, attempt.outcome, attempt.status_code, attempt.detail)
            return attempt

    async def _try(self, prepared: _Prepared, number: int) -> _Attempt:
        timeout = prepared.request.timeout_seconds
        begun = time.perf_counter()
        try:
            # one deadline for resolving, connecting, sending and reading the capped body
            async with asyncio.timeout(timeout):
                attempt = await self._send(prepared, number)
        except WebhookBlockedError as exc:
            attempt = _Attempt("blocked", str(exc), counted=False)
        except (TimeoutError, httpx.TimeoutException):
            attempt = _Attempt("timeout", retryable=True)
        except httpx.ConnectError as exc:
            attempt = _Attempt("connect_error", f"connection failed: {exc}", retryable=True)
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            attempt = _Attempt("network_error", f"connection broke: {exc}", retryable=True)
        except httpx.HTTPError as exc:
            # local protocol, proxy or decoding problems: sending it again cannot help
            attempt = _Attempt("request_error", f"request failed: {exc!r}")
        except OSError as exc:
            attempt = _Attempt(
                "dns_error", f"could not resolve {prepared.host}: {exc}", retryable=True
            )
        if self._on_attempt is not None:
            self._on_attempt(attempt.outcome, time.perf_counter() - begun)
        return attempt

    async def _send(self, prepared: _Prepared, number: int) -> _Attempt:
        addresses = await vet_destination(
            prepared.host, prepared.port, allow_list=self._allow_list, resolver=self._resolver
        )
        # later attempts rotate through the vetted addresses, so one dead address is not fatal
        address = addresses[(number - 1) % len(addresses)]
        headers = dict(prepared.headers)
        headers["Host"] = prepared.url.netloc.decode("ascii")
        headers["Idempotency-Key"] = prepared.request.message_id
        if prepared.key is not None:
            # re-signed on every attempt: receivers reject stale webhook-timestamps
            headers |= signature_headers(
                prepared.key,
                message_id=prepared.request.message_id,
                timestamp=int(self._clock()),
                body=prepared.content or b"",
            )
        extensions: dict[str, Any] = {}
        if prepared.url.scheme == "https" and str(address) != prepared.host:
            # the URL now names the IP; TLS must still present and verify the original host name
            extensions["sni_hostname"] = prepared.host
        async with self._client.stream(
            prepared.request.method.upper(),
            prepared.url.copy_with(host=str(address)),
            content=prepared.content,
            headers=headers,
            timeout=httpx.Timeout(prepared.request.timeout_seconds),
            follow_redirects=False,
            extensions=extensions,
        ) as response:
            body = await _read_capped(response)
        status = response.status_code
        if 200 <= status < 300:
            return _Attempt("success", status_code=status, response_body=body)
        retryable = status == 429 or status >= 500
        retry_after = None
        if status in _RETRY_AFTER_STATUSES:
            retry_after = _parse_retry_after(response.headers.get("Retry-After"), self._clock())
        return _Attempt(
            f"http_{status}",
            retryable=retryable,
            status_code=status,
            response_body=body,
            retry_after=retry_after,
        )

    def _delay(self, number: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self._backoff_max)
        # full jitter: uniform in [0, capped exponential], spreads retries of many workers
        ceiling = min(self._backoff_max, self._backoff_base * 2.0 ** (number - 1))
        return ceiling * self._jitter()


def _decode_named_secret(name: str, value: str) -> bytes:
    try:
        return decode_secret(value)
    except ValueError as exc:
        raise ConfigurationError(f"webhook secret {name!r} is unusable: {exc}") from None


def _encode_body(body: Any) -> tuple[bytes | None, str | None]:
    if body is None:
        return None, None
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    try:
        return orjson.dumps(body), "application/json"
    except TypeError as exc:  # orjson.JSONEncodeError
        raise WebhookError(f"body is not JSON-serialisable: {exc}") from None


def _check_header(name: str, value: str) -> None:
    # templated values come from event data: refuse header injection and non-ASCII up front
    if not _HEADER_NAME.match(name):
        raise WebhookError(f"invalid header name {name!r}")
    if not value.isascii() or any(char in value for char in "\r\n\0"):
        raise WebhookError(f"header {name!r} has a value that is not single-line ASCII")


async def _read_capped(response: httpx.Response) -> str:
    # read at most the limit: a hostile endpoint must not make the worker buffer a huge body
    kept = bytearray()
    async for chunk in response.aiter_bytes():
        kept += chunk
        if len(kept) > RESPONSE_BODY_LIMIT:
            return kept[:RESPONSE_BODY_LIMIT].decode(errors="replace") + " [truncated]"
    return kept.decode(errors="replace")


def _parse_retry_after(value: str | None, now: float) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None  # unparseable: fall back to the usual backoff


def _describe_failure(attempt: _Attempt, attempts: int, request: WebhookRequest) -> str:
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    if attempt.outcome == "blocked":
        return attempt.detail
    if attempt.outcome == "timeout":
        return f"timed out after {request.timeout_seconds}s ({tries})"
    if attempt.status_code is not None:
        redirect = " (redirects are not followed)" if 300 <= attempt.status_code < 400 else ""
        return f"HTTP {attempt.status_code} after {tries}{redirect}"
    return f"{attempt.detail} ({tries})"


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
