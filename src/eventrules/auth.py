"""HTTP bearer tokens: who may read and who may change, for the worker's web server and the
console.

Tokens are configured by their SHA-256 digest (``EVENTRULES_HTTP_TOKENS``), never in clear, each
with a name (for logs and the audit trail) and a scope: ``read`` sees, ``admin`` also changes.
A presented token is hashed and compared with every configured digest in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "HttpToken",
    "Principal",
    "Scope",
    "TokenSet",
    "bearer_token",
    "hash_token",
    "is_loopback",
    "new_token",
]

Scope = Literal["read", "admin"]
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TOKEN_PREFIX = "ert_"  # noqa: S105 - a prefix that makes leaked tokens greppable, not a secret


def hash_token(token: str) -> str:
    """The digest a token is configured by (lowercase hex SHA-256 of its UTF-8 bytes)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return _TOKEN_PREFIX + secrets.token_urlsafe(32)


class HttpToken(BaseModel):
    """One configured token: ``{"name": "ops", "sha256": "<hex>", "scope": "admin"}``."""

    # hide_input_in_errors: a token pasted in clear by mistake must not reach a log
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")
    sha256: str
    scope: Scope = "read"

    @field_validator("sha256")
    @classmethod
    def _digest(cls, value: str) -> str:
        # The message must not echo the value: a token given in clear by mistake is a secret.
        if not _HEX64.fullmatch(value):
            raise ValueError(
                "must be the 64 lowercase hex digits of SHA-256 (see `eventrules auth new-token`)"
            )
        return value


@dataclass(frozen=True)
class Principal:
    """Who presented a valid token."""

    name: str
    scope: Scope

    def may(self, needed: Scope) -> bool:
        return self.scope == "admin" or needed == "read"


class TokenSet:
    """The configured tokens; with none configured, :attr:`enabled` is False."""

    def __init__(self, tokens: Sequence[HttpToken] = ()) -> None:
        self._tokens = tuple(tokens)
        self._digests = [(bytes.fromhex(token.sha256), token) for token in self._tokens]

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def authenticate(self, presented: str | None) -> Principal | None:
        """The principal of ``presented``, or None; every digest is compared (constant time)."""
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        found: HttpToken | None = None
        for expected, token in self._digests:
            if hmac.compare_digest(digest, expected) and found is None:
                found = token
        return Principal(found.name, found.scope) if found is not None else None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def is_loopback(host: str) -> bool:
    """Whether a server bound to ``host`` is reachable from this machine only (where serving
    without tokens is allowed)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
