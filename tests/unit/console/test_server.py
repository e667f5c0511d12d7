"""The console refuses to serve anyone anonymously, except a development machine on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventrules.auth import HttpToken, hash_token
from eventrules.console.server import ConsoleOptions, build_console
from eventrules.errors import ConfigurationError
from eventrules.settings import Settings


def settings(tmp_path: Path, *, tokens: bool) -> Settings:
    entries = [HttpToken(name="ops", sha256=hash_token("t"), scope="admin")] if tokens else []
    return Settings(http_tokens=entries, console_index_path=tmp_path / "index.sqlite3")


def test_without_tokens_it_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="serves no one anonymously"):
        build_console(settings(tmp_path, tokens=False), ConsoleOptions("127.0.0.1", 1))


def test_the_development_flag_binds_loopback_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="loopback only"):
        build_console(
            settings(tmp_path, tokens=False),
            ConsoleOptions("0.0.0.0", 1, dev_no_auth=True),  # noqa: S104
        )
    built = build_console(
        settings(tmp_path, tokens=False), ConsoleOptions("127.0.0.1", 1, dev_no_auth=True)
    )
    assert built.policy.anonymous_admin
    built.index.close()


def test_the_development_flag_is_refused_when_tokens_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="log in with a token"):
        build_console(
            settings(tmp_path, tokens=True), ConsoleOptions("127.0.0.1", 1, dev_no_auth=True)
        )
    built = build_console(settings(tmp_path, tokens=True), ConsoleOptions("0.0.0.0", 1))  # noqa: S104
    assert not built.policy.anonymous_admin
    assert built.policy.tokens.enabled
    built.index.close()
