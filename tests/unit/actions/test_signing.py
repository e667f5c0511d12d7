"""Signatures must verify with the Standard Webhooks reference library, byte for byte."""

from __future__ import annotations

import base64
import re
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from eventrules.actions.signing import decode_secret, sign, signature_headers

KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()


@pytest.mark.parametrize(
    "secret",
    [
        SECRET,
        SECRET.removeprefix("whsec_"),  # the prefix is optional, as in the reference library
        "whsec_" + base64.b64encode(KEY[:31]).decode().rstrip("="),  # unpadded
    ],
)
def test_decode_secret_reads_the_forms_the_reference_library_reads(secret: str) -> None:
    key = decode_secret(secret)
    assert key == Webhook(secret)._whsecret


@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_", ""])
def test_decode_secret_refuses_unusable_secrets_without_echoing_them(secret: str) -> None:
    with pytest.raises(ValueError, match="secret") as info:
        decode_secret(secret)
    if secret.removeprefix("whsec_"):
        assert secret not in str(info.value)


def test_signature_matches_the_reference_library() -> None:
    timestamp = 1_767_225_600
    body = '{"order": 42, "note": "café"}'
    ours = sign(KEY, message_id="msg_1", timestamp=timestamp, body=body.encode())
    reference = Webhook(SECRET).sign("msg_1", datetime.fromtimestamp(timestamp, tz=UTC), body)
    assert ours == reference
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", ours)


def test_signature_headers_verify_and_a_changed_body_does_not() -> None:
    body = b'{"a":1}'
    headers = signature_headers(KEY, message_id="act-7", timestamp=int(time.time()), body=body)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == "act-7"
    assert Webhook(SECRET).verify(body, headers) == {"a": 1}
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(b'{"a":2}', headers)


@settings(max_examples=50, deadline=None)
@given(
    message_id=st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), min_size=1),
    body=st.text(),
)
def test_any_id_and_utf8_body_verify(message_id: str, body: str) -> None:
    headers = signature_headers(
        KEY, message_id=message_id, timestamp=int(time.time()), body=body.encode()
    )
    Webhook(SECRET).verify(body.encode(), headers, json_parse=False)
