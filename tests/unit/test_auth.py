"""Bearer tokens: configured by digest, matched in constant time, scoped read/admin."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from eventrules.auth import HttpToken, TokenSet, bearer_token, hash_token, new_token
from eventrules.cli.main import cli
from eventrules.settings import Settings


def test_a_token_authenticates_as_its_name_and_scope() -> None:
    admin, reader = new_token(), new_token()
    tokens = TokenSet(
        [
            HttpToken(name="ops", sha256=hash_token(admin), scope="admin"),
            HttpToken(name="dash", sha256=hash_token(reader), scope="read"),
        ]
    )
    assert tokens.enabled
    ops = tokens.authenticate(admin)
    dash = tokens.authenticate(reader)
    assert ops is not None
    assert (ops.name, ops.scope) == ("ops", "admin")
    assert dash is not None
    assert (dash.name, dash.scope) == ("dash", "read")
    assert ops.may("admin")
    assert ops.may("read")
    assert dash.may("read")
    assert not dash.may("admin")
    assert tokens.authenticate(admin + "x") is None
    assert tokens.authenticate("") is None
    assert tokens.authenticate(None) is None
    assert not TokenSet().enabled


def test_only_digests_are_accepted_and_a_clear_token_is_never_echoed() -> None:
    clear = new_token()
    with pytest.raises(ValidationError) as raised:
        HttpToken(name="ops", sha256=clear)
    assert clear not in str(raised.value)
    with pytest.raises(ValidationError):
        HttpToken(name="bad name!", sha256=hash_token(clear))


def test_settings_read_tokens_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    token = new_token()
    entry = {"name": "ops", "sha256": hash_token(token), "scope": "admin"}
    monkeypatch.setenv("EVENTRULES_HTTP_TOKENS", orjson.dumps([entry]).decode())
    principal = TokenSet(Settings().http_tokens).authenticate(token)
    assert principal is not None
    assert principal.scope == "admin"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Basic abc", None),
        ("Bearer ", None),
        (None, None),
        ("", None),
    ],
)
def test_bearer_header_parsing(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected


def test_new_token_command_prints_a_token_and_the_entry_that_matches_it() -> None:
    result = CliRunner().invoke(cli, ["auth", "new-token", "--name", "ops", "--scope", "admin"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split(": ", 1) for line in result.output.strip().splitlines())
    entry = orjson.loads(lines["EVENTRULES_HTTP_TOKENS entry"])
    assert entry == {"name": "ops", "sha256": hash_token(lines["token"]), "scope": "admin"}
