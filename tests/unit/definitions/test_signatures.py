"""Ed25519 signatures of config records: what they cover and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventrules.definitions.signatures import (
    SIGNATURE_HEADER,
    ConfigSigner,
    ConfigVerifier,
)
from eventrules.errors import ConfigurationError, SignatureError

TOPIC = "eventrules.config"


def _reason(verifier: ConfigVerifier, *args: object) -> str:
    with pytest.raises(SignatureError) as caught:
        verifier.verify(*args)  # type: ignore[arg-type]
    return caught.value.reason


def test_a_signed_record_verifies_and_names_its_signer_and_version() -> None:
    signer = ConfigSigner.generate()
    verifier = ConfigVerifier([signer.public_key])
    headers = signer.headers(TOPIC, b"workflow:a", 3, b'{"id": "a"}')
    assert verifier.verify(TOPIC, b"workflow:a", b'{"id": "a"}', headers) == (signer.key_id, 3)
    tombstone = signer.headers(TOPIC, b"workflow:a", 4, None)
    assert verifier.verify(TOPIC, b"workflow:a", None, tombstone) == (signer.key_id, 4)


def test_the_signature_covers_topic_key_version_and_value() -> None:
    signer = ConfigSigner.generate()
    verifier = ConfigVerifier([signer.public_key])
    headers = signer.headers(TOPIC, b"workflow:a", 3, b"{}")
    assert _reason(verifier, "other.config", b"workflow:a", b"{}", headers) == "bad_signature"
    assert _reason(verifier, TOPIC, b"workflow:b", b"{}", headers) == "bad_signature"
    assert _reason(verifier, TOPIC, b"workflow:a", b"{ }", headers) == "bad_signature"
    # a tombstone is not the empty value, and a signed value is no licence to delete
    assert _reason(verifier, TOPIC, b"workflow:a", None, headers) == "bad_signature"
    bumped = [(n, b"4" if n == "eventrules-version" else v) for n, v in headers]
    assert _reason(verifier, TOPIC, b"workflow:a", b"{}", bumped) == "bad_signature"


def test_unsigned_unknown_and_garbled_signatures_are_refused() -> None:
    trusted, stranger = ConfigSigner.generate(), ConfigSigner.generate()
    verifier = ConfigVerifier([trusted.public_key])
    assert _reason(verifier, TOPIC, b"rule:r", b"{}", []) == "unsigned"
    foreign = stranger.headers(TOPIC, b"rule:r", 1, b"{}")
    assert _reason(verifier, TOPIC, b"rule:r", b"{}", foreign) == "unknown_signer"
    # a stranger claiming the trusted key id does not get through either
    claimed = [(n, trusted.key_id.encode() if n == "eventrules-signer" else v) for n, v in foreign]
    assert _reason(verifier, TOPIC, b"rule:r", b"{}", claimed) == "bad_signature"
    garbled = [
        (n, b"!!!" if n == SIGNATURE_HEADER else v)
        for n, v in trusted.headers(TOPIC, b"rule:r", 1, b"{}")
    ]
    assert _reason(verifier, TOPIC, b"rule:r", b"{}", garbled) == "bad_signature"


def test_keys_round_trip_through_files_and_bad_keys_are_refused_without_echo(
    tmp_path: Path,
) -> None:
    signer = ConfigSigner.generate()
    path = tmp_path / "keys" / "signing.pem"
    signer.write(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert ConfigSigner.from_file(path).key_id == signer.key_id
    with pytest.raises(FileExistsError):
        signer.write(path)
    secret_text = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LW1hdGVyaWFs\n-----END PRIVATE KEY-----\n"
    bad = tmp_path / "bad.pem"
    bad.write_text(secret_text)
    with pytest.raises(ConfigurationError) as caught:
        ConfigSigner.from_file(bad)
    assert "c2VjcmV0LW1hdGVyaWFs" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="not an Ed25519 public key"):
        ConfigVerifier(["not-a-key"])
    assert not ConfigVerifier().enforced
    assert ConfigVerifier([signer.public_key]).key_ids == [signer.key_id]
