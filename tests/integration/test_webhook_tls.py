"""Webhook TLS on real servers: two HTTPS servers on one IP, each with a certificate for its own
host only, and host names that both resolve to that IP. A pooled connection verified for one
host must never carry a request for the other (no Kafka needed)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from eventrules.actions import WebhookExecutor, WebhookRequest
from integration.certs import Authority
from integration.harness import free_port

pytestmark = pytest.mark.integration


@dataclass
class Server:
    host: str
    port: int
    received: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(request.headers["Host"])
        return web.Response(text=f"{self.host} here")


async def _start(server: Server, context: ssl.SSLContext) -> web.AppRunner:
    app = web.Application()
    app.router.add_post("/hook", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", server.port, ssl_context=context).start()
    return runner


async def _resolve_to_loopback(host: str, port: int) -> Sequence[str]:
    return ["127.0.0.1"]


async def _scenario(tmp_path: Path) -> tuple[dict[str, bool], Server, Server, int]:
    authority = Authority.create(tmp_path / "ca")
    servers = []
    runners = []
    for name in ("evil.test", "victim.test"):
        issued = authority.issue(name, dns=(name,))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(issued.cert, issued.key)
        server = Server(name, free_port())
        runners.append(await _start(server, context))
        servers.append(server)
    evil, victim = servers
    client = WebhookExecutor.new_client(str(authority.ca_file))
    executor = WebhookExecutor(
        client,
        secrets={},
        allow_list=[f"127.0.0.1:{evil.port}", f"127.0.0.1:{victim.port}"],
        resolver=_resolve_to_loopback,
    )
    outcomes: dict[str, bool] = {}
    calls = [
        ("evil.test", evil.port),  # valid: pools a connection to 127.0.0.1:evil
        ("victim.test", evil.port),  # same IP and port as the pooled one: evil's certificate
        ("victim.test", victim.port),  # valid
        ("evil.test", victim.port),  # victim's certificate
        ("evil.test", evil.port),  # valid again: its own pool survived
    ]
    try:
        for number, (host, port) in enumerate(calls):
            result = await executor.call(
                WebhookRequest(
                    url=f"https://{host}:{port}/hook",
                    message_id=f"m-{number}",
                    body={"secret": "for " + host},
                    max_attempts=1,
                )
            )
            outcomes[f"{host}@{'evil' if port == evil.port else 'victim'}"] = result.ok
            if not result.ok:
                assert "certificate" in (result.error or "").lower(), result.error
        pools = len(client._transport)  # type: ignore[arg-type]
    finally:
        await client.aclose()
        for runner in runners:
            await runner.cleanup()
    return outcomes, evil, victim, pools


def test_a_certificate_for_one_host_is_never_accepted_for_another(tmp_path: Path) -> None:
    outcomes, evil, victim, pools = asyncio.run(_scenario(tmp_path))
    assert outcomes == {
        "evil.test@evil": True,
        "victim.test@evil": False,
        "victim.test@victim": True,
        "evil.test@victim": False,
    }
    # each server only ever saw requests for its own host
    assert evil.received == [f"evil.test:{evil.port}", f"evil.test:{evil.port}"]
    assert victim.received == [f"victim.test:{victim.port}"]
    assert pools == 4  # one per (host name, port, address)
