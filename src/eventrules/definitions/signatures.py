"""Ed25519 signatures of config records: who published a definition, provably.

A publisher signs each record it writes to the config topic (and to the audit topic) with its
private key; the signature and the signer's key id travel in the record's headers. Workers hold
the trusted public keys and, when any are configured, reject records that are unsigned, signed
by an unknown key, or whose signature does not match.

The signature covers the topic (a record cannot be replayed onto another deployment's topic),
the key, the version (carried in a header, so a tombstone is bound to the version it deletes)
and the value, each length-prefixed so no two different records share a signed message.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from eventrules.errors import ConfigurationError, SignatureError

__all__ = [
    "SIGNATURE_HEADER",
    "SIGNER_HEADER",
    "VERSION_HEADER",
    "ConfigSigner",
    "ConfigVerifier",
    "RecordHeaders",
    "header_value",
    "key_id_of",
    "public_key_text",
]

SIGNER_HEADER = "eventrules-signer"
SIGNATURE_HEADER = "eventrules-signature"
VERSION_HEADER = "eventrules-version"
_DOMAIN = b"eventrules-config-signature-v1\x00"

# Kafka record headers as the clients give them (a header's value may be null).
RecordHeaders = Sequence[tuple[str, bytes | None]]


def _field(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def signed_message(topic: str, key: bytes, version: int, value: bytes | None) -> bytes:
    """The exact bytes an Ed25519 signature of a record covers."""
    body = b"\x00" if value is None else b"\x01" + _field(value)
    return _DOMAIN + _field(topic.encode()) + _field(key) + _field(str(version).encode()) + body


def _raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public: Ed25519PublicKey) -> str:
    """``ed25519:`` and the first 16 hex digits of the SHA-256 of the raw public key."""
    return "ed25519:" + hashlib.sha256(_raw_public(public)).hexdigest()[:16]


def public_key_text(public: Ed25519PublicKey) -> str:
    """The public key as configured in ``EVENTRULES_CONFIG_TRUSTED_KEYS`` (URL-safe base64)."""
    return base64.urlsafe_b64encode(_raw_public(public)).decode().rstrip("=")


def header_value(headers: RecordHeaders | None, name: str) -> bytes | None:
    """The last value of header ``name`` (None when absent)."""
    found = None
    for header, value in headers or ():
        if header == name:
            found = value
    return found


@dataclass(frozen=True)
class ConfigSigner:
    """A publisher's private key; ``key_id`` names it in headers and in the audit trail."""

    private_key: Ed25519PrivateKey
    key_id: str

    @classmethod
    def generate(cls) -> ConfigSigner:
        private = Ed25519PrivateKey.generate()
        return cls(private, key_id_of(private.public_key()))

    @classmethod
    def from_pem(cls, data: bytes, *, source: str = "the signing key") -> ConfigSigner:
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnicodeError):
            # never the content: it is the private key
            raise ConfigurationError(
                f"{source} is not an unencrypted PKCS#8 PEM private key"
                " (make one with `eventrules config keygen`)"
            ) from None
        if not isinstance(private, Ed25519PrivateKey):
            raise ConfigurationError(f"{source} is not an Ed25519 key")
        return cls(private, key_id_of(private.public_key()))

    @classmethod
    def from_file(cls, path: Path) -> ConfigSigner:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the config signing key {path}: {exc.strerror}"
            ) from None
        return cls.from_pem(data, source=f"the config signing key {path}")

    def pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def write(self, path: Path) -> None:
        """Write the private key readable by its owner only; refuses to overwrite."""
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(self.pem())

    @property
    def public_key(self) -> str:
        return public_key_text(self.private_key.public_key())

    def headers(
        self, topic: str, key: bytes, version: int, value: bytes | None
    ) -> list[tuple[str, bytes]]:
        """The headers that sign one record: signer, version and signature."""
        signature = self.private_key.sign(signed_message(topic, key, version, value))
        return [
            (SIGNER_HEADER, self.key_id.encode()),
            (VERSION_HEADER, str(version).encode()),
            (SIGNATURE_HEADER, base64.urlsafe_b64encode(signature).rstrip(b"=")),
        ]


def _parse_public_key(text: str, number: int) -> Ed25519PublicKey:
    stripped = text.strip()
    try:
        if stripped.startswith("-----BEGIN"):
            loaded = serialization.load_pem_public_key(stripped.encode())
            if not isinstance(loaded, Ed25519PublicKey):
                raise ValueError("not an Ed25519 key")
            return loaded
        raw = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, TypeError, UnicodeError):
        # never the value: a private key pasted here by mistake must not reach a log
        raise ConfigurationError(
            f"trusted config key #{number} is not an Ed25519 public key (URL-safe base64 of its"
            " 32 raw bytes, as `eventrules config keygen` prints, or PEM)"
        ) from None


class ConfigVerifier:
    """The trusted public keys; with none, :attr:`enforced` is False and nothing is checked."""

    def __init__(self, public_keys: Iterable[str] = ()) -> None:
        parsed = [_parse_public_key(text, n) for n, text in enumerate(public_keys, 1)]
        self._keys = {key_id_of(key): key for key in parsed}

    @property
    def enforced(self) -> bool:
        return bool(self._keys)

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def verify(
        self, topic: str, key: bytes, value: bytes | None, headers: RecordHeaders | None
    ) -> tuple[str, int]:
        """``(signer key id, signed version)`` of a correctly signed record; raises
        :class:`SignatureError` (reason ``unsigned``, ``unknown_signer`` or ``bad_signature``)."""
        signer_raw = header_value(headers, SIGNER_HEADER)
        signature_raw = header_value(headers, SIGNATURE_HEADER)
        version_raw = header_value(headers, VERSION_HEADER)
        if signer_raw is None or signature_raw is None or version_raw is None:
            raise SignatureError("unsigned", "the record carries no signature headers")
        signer = signer_raw.decode(errors="replace")
        public = self._keys.get(signer)
        if public is None:
            raise SignatureError("unknown_signer", f"signer {signer[:80]!r} is not trusted")
        try:
            version = int(version_raw.decode())
            signature = base64.urlsafe_b64decode(signature_raw + b"=" * (-len(signature_raw) % 4))
            public.verify(signature, signed_message(topic, key, version, value))
        except (ValueError, UnicodeError, InvalidSignature):
            raise SignatureError(
                "bad_signature", f"the signature of {signer} does not match the record"
            ) from None
        return signer, version
