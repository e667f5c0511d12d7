"""``eventrules auth``: make bearer tokens for the web server and the console."""

from __future__ import annotations

import click
import orjson

from eventrules.auth import hash_token, new_token

__all__ = ["auth"]


@click.group()
def auth() -> None:
    """Bearer tokens of the HTTP endpoints and the console."""


@auth.command("new-token")
@click.option("--name", required=True, help="Who holds it (shown in logs and the audit trail).")
@click.option("--scope", type=click.Choice(["read", "admin"]), default="read", show_default=True)
def new_token_command(name: str, scope: str) -> None:
    """Print a new random token once, and the entry that configures it.

    Give the token to its holder; add the entry to EVENTRULES_HTTP_TOKENS (a JSON list). Only
    the digest is configured, so the token cannot be read back from the settings."""
    token = new_token()
    entry = {"name": name, "sha256": hash_token(token), "scope": scope}
    click.echo(f"token: {token}")
    click.echo(f"EVENTRULES_HTTP_TOKENS entry: {orjson.dumps(entry).decode()}")
