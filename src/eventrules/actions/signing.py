"""Standard Webhooks signatures (https://www.standardwebhooks.com/), version ``v1`` (HMAC-SHA256).

A secret is configured as ``whsec_<base64 of the key bytes>``, the form Standard Webhooks
libraries generate and accept; the ``whsec_`` prefix is optional and unpadded base64 is accepted,
exactly as the reference library reads it, so a receiver can verify with the same string.
Characters outside the base64 alphabet are an error here (the reference library drops them).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

__all__ = ["SECRET_PREFIX", "decode_secret", "sign", "signature_headers"]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the public format prefix, not a secret


def decode_secret(value: str) -> bytes:
    """The HMAC key of a ``whsec_...`` secret; raises ``ValueError`` (never echoing the secret)."""
    encoded = value.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("secret is not base64 (expected whsec_<base64>)") from None
    if not key:
        raise ValueError("secret is empty")
    return key


def sign(key: bytes, *, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` over the exact body bytes sent."""
    signed = b".".join((message_id.encode(), str(timestamp).encode(), body))
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode('ascii')}"


def signature_headers(
    key: bytes, *, message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery attempt."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, message_id=message_id, timestamp=timestamp, body=body),
    }
