"""``eventrules broker``: the local single-node Kafka broker for development, tests and CI."""

from __future__ import annotations

import click

from eventrules.errors import EventRulesError
from eventrules.ops.broker import LocalBroker, local_broker, wait_until_answering
from eventrules.settings import Settings


def _broker() -> LocalBroker:
    return local_broker(Settings())


@click.group()
def broker() -> None:
    """Run a local Apache Kafka broker (KRaft, one node, 127.0.0.1)."""


@broker.command()
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait for readiness.")
def start(timeout: float) -> None:
    """Start the broker, or reuse the one already answering on the port."""
    local = _broker()
    try:
        started = local.start(timeout=timeout)
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    verb = "started" if started else "already running"
    click.echo(f"kafka {verb} at {local.bootstrap_servers} (data in {local.data_dir})")


@broker.command()
def stop() -> None:
    """Stop the broker started from this data directory."""
    local = _broker()
    stopped = local.stop()
    click.echo("kafka stopped" if stopped else "no broker of ours was running")


@broker.command()
def status() -> None:
    """Say whether the broker process is running and answering."""
    local = _broker()
    pid = local.running_pid()
    answering = local.is_answering()
    click.echo(f"pid: {pid or '-'}  answering at {local.bootstrap_servers}: {answering}")
    if not answering:
        raise SystemExit(1)


@broker.command()
@click.option("--timeout", default=60.0, show_default=True)
def wait(timeout: float) -> None:
    """Wait until the broker at EVENTRULES_BOOTSTRAP_SERVERS answers metadata requests."""
    settings = Settings()
    try:
        wait_until_answering(settings, timeout=timeout)
    except EventRulesError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"kafka ready at {settings.bootstrap_servers}")
