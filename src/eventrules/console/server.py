"""Running the console: refuse to start without tokens (unless in development mode, bound to
loopback), build the index and its follower, serve until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from eventrules.auth import TokenSet, is_loopback
from eventrules.console.app import make_console_app
from eventrules.console.context import Console
from eventrules.console.index import ExecutionIndex
from eventrules.console.indexer import ExecutionIndexer
from eventrules.console.pages import make_environment
from eventrules.console.security import SecurityPolicy
from eventrules.console.sessions import SessionStore
from eventrules.errors import ConfigurationError
from eventrules.models.actions import ActionRegistry
from eventrules.settings import Settings
from eventrules.workflows.catalog import TriggerCatalog

__all__ = ["ConsoleOptions", "build_console", "serve_console"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsoleOptions:
    host: str
    port: int
    # development only: no tokens configured, everyone is admin, loopback only
    dev_no_auth: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None


def _check_access(settings: Settings, options: ConsoleOptions) -> None:
    if options.dev_no_auth:
        if settings.http_tokens:
            raise ConfigurationError(
                "--dev-no-auth is for a development machine without tokens; EVENTRULES_HTTP_TOKENS"
                " is set, so log in with a token instead"
            )
        if not is_loopback(options.host):
            raise ConfigurationError(
                f"--dev-no-auth serves anyone as admin: it binds loopback only, not {options.host}"
            )
        return
    if not settings.http_tokens:
        raise ConfigurationError(
            "no EVENTRULES_HTTP_TOKENS configured: the console serves no one anonymously"
            " (`eventrules auth new-token --name NAME --scope admin` makes one; --dev-no-auth"
            " serves a development machine on 127.0.0.1 without login)"
        )


def build_console(settings: Settings, options: ConsoleOptions) -> Console:
    """Everything the console needs, from ``settings``; raises ConfigurationError when it may
    not start as asked."""
    _check_access(settings, options)
    try:
        root: Path | None = settings.resolved_templates_dir()
    except ConfigurationError:
        root = None
    index = ExecutionIndex(settings.console_index_path, topic=settings.topic("executions"))
    policy = SecurityPolicy(
        TokenSet(settings.http_tokens),
        SessionStore(ttl_seconds=settings.console_session_minutes * 60),
        anonymous_admin=options.dev_no_auth,
        trust_proxy=settings.console_trust_proxy,
    )
    return Console(
        settings,
        policy,
        index,
        ExecutionIndexer(settings, index),
        TriggerCatalog.load(*settings.extra_trigger_files),
        ActionRegistry.from_entry_points(),
        root,
        make_environment(),
    )


def _tls(options: ConsoleOptions) -> ssl.SSLContext | None:
    if options.tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(options.tls_cert, options.tls_key)
    return context


async def serve_console(console: Console, options: ConsoleOptions) -> None:
    """Serve until SIGTERM/SIGINT, then stop the index follower and close the index."""
    console.indexer.start()
    runner = web.AppRunner(make_console_app(console), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, options.host, options.port, ssl_context=_tls(options)).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("console on %s:%s", options.host, options.port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await asyncio.to_thread(console.indexer.stop)
        console.close()
        console.index.close()
