"""No secret of the security features ever appears in an error message: private keys, the
scheduler secret, client key passwords, bearer tokens."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from eventrules.auth import HttpToken, TokenSet, hash_token
from eventrules.definitions.signatures import ConfigSigner, ConfigVerifier
from eventrules.errors import ConfigurationError
from eventrules.runtime.admission import TickAuthenticator
from eventrules.settings import Settings
from unit.runtime.test_web_auth import View, _serve


def test_a_private_key_pasted_as_a_trusted_key_is_not_echoed() -> None:
    private_pem = ConfigSigner.generate().pem().decode()
    with pytest.raises(ConfigurationError) as caught:
        ConfigVerifier(["fine-looking-but-wrong", private_pem])
    message = str(caught.value)
    body = "".join(private_pem.splitlines()[1:-1])
    assert body[:16] not in message
    assert "#1" in message


def test_an_unreadable_signing_key_is_not_echoed(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nU0VDUkVUUEFZTE9BRA==\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigurationError) as caught:
        ConfigSigner.from_file(key)
    assert "U0VDUkVUUEFZTE9BRA" not in str(caught.value)


def test_a_short_scheduler_secret_is_not_echoed() -> None:
    with pytest.raises(ConfigurationError) as caught:
        TickAuthenticator("too-short-secret")
    assert "too-short-secret" not in str(caught.value)


def test_settings_errors_name_fields_not_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTRULES_SSL_KEY_PASSWORD", "client-key-pass-123")
    monkeypatch.setenv("EVENTRULES_SCHEDULER_SECRET", "scheduler-secret-456" * 2)
    monkeypatch.setenv("EVENTRULES_CONFIG_MAX_VERSION_STEP", "0")
    monkeypatch.setenv("EVENTRULES_WEB_ALLOW_UNAUTHENTICATED", "client-key-pass-123")
    with pytest.raises(ConfigurationError) as caught:
        Settings()
    message = str(caught.value)
    assert "EVENTRULES_CONFIG_MAX_VERSION_STEP" in message
    assert "EVENTRULES_WEB_ALLOW_UNAUTHENTICATED" in message
    assert "client-key-pass-123" not in message
    assert "scheduler-secret-456" not in message


def test_http_refusals_do_not_echo_the_presented_token() -> None:
    read_token = "ert_read-token-kept-private"
    tokens = TokenSet([HttpToken(name="ro", sha256=hash_token(read_token), scope="read")])

    async def calls() -> list[str]:
        bodies = []
        async for url in _serve(View(), tokens):
            async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
                for token in ("ert_wrong-token-guess", read_token):
                    response = await client.post(
                        "/change", headers={"Authorization": f"Bearer {token}"}
                    )
                    bodies.append(response.text + str(response.headers))
        return bodies

    wrong, weak = asyncio.run(calls())
    assert "ert_wrong-token-guess" not in wrong
    assert read_token not in weak
    assert "ro" in weak  # the holder's name, not the token
