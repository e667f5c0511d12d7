"""The checks every config record passes before its content is looked at: the signature (when
trusted keys are configured) and the version rules. Shared by the worker's config table and the
operations that read the live table, so both agree on what is live."""

from __future__ import annotations

from dataclasses import dataclass, field

from eventrules.definitions.signatures import (
    VERSION_HEADER,
    ConfigVerifier,
    RecordHeaders,
    header_value,
)
from eventrules.definitions.versions import VersionMarks
from eventrules.errors import ConfigRecordError

__all__ = ["ConfigGate"]

Ident = tuple[str, str]


@dataclass
class ConfigGate:
    """``topic`` is the name signatures are bound to; ``marks`` the high-water marks so far."""

    topic: str
    verifier: ConfigVerifier = field(default_factory=ConfigVerifier)
    marks: VersionMarks = field(default_factory=VersionMarks)

    def signed_version(
        self, key: bytes, value: bytes | None, headers: RecordHeaders | None
    ) -> int | None:
        """The version the record's headers carry (verified when keys are trusted); raises
        :class:`ConfigRecordError` for a bad signature or an unreadable version header."""
        if self.verifier.enforced:
            return self.verifier.verify(self.topic, key, value, headers)[1]
        raw = header_value(headers, VERSION_HEADER)
        if raw is None:
            return None
        try:
            return int(raw.decode())
        except (UnicodeError, ValueError):
            raise ConfigRecordError(
                "version_mismatch", "the version header is not a number"
            ) from None

    def check_delete(self, ident: Ident, version: int | None) -> None:
        refused = self.marks.refuse_delete(ident, version)
        if refused is not None:
            raise ConfigRecordError(*refused)

    def check_upsert(self, ident: Ident, version: int, signed_version: int | None) -> None:
        if signed_version is not None and signed_version != version:
            raise ConfigRecordError(
                "version_mismatch", f"signed as v{signed_version} but the value is v{version}"
            )
        refused = self.marks.refuse_upsert(ident, version)
        if refused is not None:
            raise ConfigRecordError(*refused)
