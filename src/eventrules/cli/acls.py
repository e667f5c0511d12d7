"""``eventrules acls``: the least-privilege Kafka ACLs of each component, shown or applied."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from eventrules.ops.acls import COMPONENTS, apply_grants, grants
from eventrules.settings import Settings

__all__ = ["acls"]

_COMPONENT = click.argument("component", type=click.Choice(COMPONENTS))
_TOPIC = click.option(
    "--topic", default=None, help="producer: the logical topic it writes, e.g. events.orders."
)


@click.group()
def acls() -> None:
    """Least-privilege Kafka ACLs: worker, publisher (CLI), producer, console, topics."""


@acls.command("show")
@_COMPONENT
@_TOPIC
def show_command(component: str, topic: str | None) -> None:
    """What COMPONENT needs, for this deployment's topic prefix and app id."""
    table = Table("resource", "pattern", "name", "operations", "why")
    for grant in grants(component, Settings(), topic=topic):
        table.add_row(
            grant.resource, grant.pattern, grant.name, " ".join(grant.operations), grant.why
        )
    Console(width=200).print(table)


@acls.command("apply")
@_COMPONENT
@_TOPIC
@click.option("--principal", required=True, help="Whom to grant them to, e.g. User:worker.")
def apply_command(component: str, topic: str | None, principal: str) -> None:
    """Create COMPONENT's ACLs for PRINCIPAL (run as a user allowed to alter ACLs)."""
    settings = Settings()
    created = apply_grants(settings, grants(component, settings, topic=topic), principal)
    click.echo(f"created {created} ACL binding(s) for {principal} ({component})")
