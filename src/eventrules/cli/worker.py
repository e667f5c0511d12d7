"""``eventrules worker``: run a stream worker with its web server."""

from __future__ import annotations

import asyncio
import logging

import click

from eventrules.errors import EventRulesError
from eventrules.logs import setup_logging
from eventrules.runtime.worker import Worker
from eventrules.settings import Settings


@click.command()
@click.option("--web-port", type=int, default=None, help="Port of /metrics, /healthz, /readyz.")
@click.option("--web-host", default=None, help="Address the web server binds (default 127.0.0.1).")
@click.option(
    "--processing-guarantee",
    type=click.Choice(["at_least_once", "exactly_once"]),
    default=None,
    help="Delivery mode for topic outputs (see README, 'Delivery semantics').",
)
@click.option(
    "--allow-unauthenticated",
    is_flag=True,
    default=None,
    help="Serve a non-loopback --web-host without HTTP tokens (refused otherwise).",
)
@click.option(
    "--loglevel",
    default=None,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="Log level (default: EVENTRULES_LOG_LEVEL, info).",
)
def worker(
    web_port: int | None,
    web_host: str | None,
    processing_guarantee: str | None,
    allow_unauthenticated: bool | None,
    loglevel: str | None,
) -> None:
    """Consume events, run matching workflows, answer rule requests. Runs until stopped."""
    overrides: dict[str, object] = {}
    if web_port is not None:
        overrides["web_port"] = web_port
    if web_host is not None:
        overrides["web_host"] = web_host
    if processing_guarantee is not None:
        overrides["processing_guarantee"] = processing_guarantee
    if loglevel is not None:
        overrides["log_level"] = loglevel
    if allow_unauthenticated:
        overrides["web_allow_unauthenticated"] = True
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
        setup_logging(settings.log_level, log_format=settings.log_format)
        running = Worker.build(settings)
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    # through the log, so a container's output stays one JSON object per line
    logging.getLogger(__name__).info(
        "eventrules worker %s on %s (%s), web on %s:%s",
        settings.app_id,
        settings.bootstrap_servers,
        settings.processing_guarantee,
        settings.web_host,
        settings.web_port,
    )
    asyncio.run(running.run())
