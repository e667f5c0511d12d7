"""Entry point of the ``eventrules`` console script."""

from __future__ import annotations

import contextlib
import logging
import os

import click

from eventrules import __version__
from eventrules.cli.acls import acls
from eventrules.cli.auth import auth
from eventrules.cli.broker import broker
from eventrules.cli.config import config
from eventrules.cli.console import console
from eventrules.cli.definitions import dry_run_command, validate_command
from eventrules.cli.dlq import dlq
from eventrules.cli.docs import docs
from eventrules.cli.executions import executions
from eventrules.cli.rules import rules
from eventrules.cli.simulate import simulate_command
from eventrules.cli.templates import templates
from eventrules.cli.topics import topics
from eventrules.cli.worker import worker
from eventrules.cli.workflows import workflows
from eventrules.errors import ConfigurationError, EventRulesError
from eventrules.limits import set_limits
from eventrules.logs import setup_logging
from eventrules.settings import Settings


class _Cli(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        # Settings and shipped files are read inside every command: their errors are messages
        # ("Error: ..." and exit 1), not tracebacks.
        try:
            return super().invoke(ctx)
        except EventRulesError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="eventrules")
def cli() -> None:
    """Kafka-native workflow automation and business rules."""
    # Warnings and errors of the libraries (librdkafka's included) in the project's format;
    # `eventrules worker` sets its own level. Read raw: a bad value must not stop `--help`.
    # A host that already logs (a test runner, an embedding program) keeps its own setup.
    if not logging.getLogger().handlers:
        log_format = os.environ.get("EVENTRULES_LOG_FORMAT", "auto").lower()
        chosen = log_format if log_format in ("text", "json") else "auto"
        setup_logging("warning", log_format=chosen)
    # Definitions are checked against the limits the workers apply (EVENTRULES_* settings).
    # A bad setting leaves the defaults: --help must work, and commands that read the
    # settings report it themselves.
    with contextlib.suppress(ConfigurationError):
        set_limits(Settings().limits())


cli.add_command(broker)
cli.add_command(topics)
cli.add_command(config)
cli.add_command(templates)
cli.add_command(validate_command)
cli.add_command(dry_run_command)
cli.add_command(simulate_command)
cli.add_command(worker)
cli.add_command(rules)
cli.add_command(executions)
cli.add_command(dlq)
cli.add_command(workflows)
cli.add_command(auth)
cli.add_command(docs)
cli.add_command(acls)
cli.add_command(console)


def main() -> None:
    cli()
