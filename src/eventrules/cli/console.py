"""``eventrules console``: the web console over the topics (see docs/console.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from eventrules.console.server import ConsoleOptions, build_console, serve_console
from eventrules.errors import EventRulesError
from eventrules.logs import setup_logging
from eventrules.settings import Settings

__all__ = ["console"]


@click.command()
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 6070).")
@click.option(
    "--index",
    "index_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite file of the executions index (rebuilt from the topic when missing).",
)
@click.option(
    "--dev-no-auth",
    is_flag=True,
    help="Development only: with no EVENTRULES_HTTP_TOKENS, serve 127.0.0.1 without login.",
)
@click.option("--tls-cert", type=click.Path(exists=True, path_type=Path), default=None)
@click.option("--tls-key", type=click.Path(exists=True, path_type=Path), default=None)
@click.option(
    "--loglevel",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def console(
    *,
    host: str | None,
    port: int | None,
    index_path: Path | None,
    dev_no_auth: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    loglevel: str,
) -> None:
    """Serve the web console: workflows, rules, executions, dead letters, templates.

    Log in with a bearer token of EVENTRULES_HTTP_TOKENS: a read token sees, an admin token
    changes. Runs until stopped."""
    setup_logging(loglevel)
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    overrides: dict[str, object] = {}
    if index_path is not None:
        overrides["console_index_path"] = index_path
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
        options = ConsoleOptions(
            host=host or settings.console_host,
            port=port if port is not None else settings.console_port,
            dev_no_auth=dev_no_auth,
            tls_cert=tls_cert,
            tls_key=tls_key,
        )
        built = build_console(settings, options)
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    scheme = "https" if tls_cert else "http"
    click.echo(
        f"eventrules console on {scheme}://{options.host}:{options.port}"
        f" ({settings.bootstrap_servers}, index {settings.console_index_path})"
    )
    asyncio.run(serve_console(built, options))
