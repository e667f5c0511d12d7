"""Which decoded events the worker runs, beyond being well-formed: a trigger only from the topics
the catalog binds it to, and schedule ticks only when the scheduler provably wrote them.

Write access to one event topic must not trigger the workflows of another, and a forged
``scheduled.*`` tick must not fire a cron workflow on demand. Ticks carry an HMAC-SHA256 of the
topic, key and value under the workers' shared ``EVENTRULES_SCHEDULER_SECRET`` in the
``eventrules-tick-signature`` header; the scheduler writes it (:mod:`.scheduler`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

from eventrules.errors import ConfigurationError
from eventrules.kafka.records import Headers, Record
from eventrules.models.events import Event
from eventrules.settings import TopicNames
from eventrules.workflows.catalog import TriggerCatalog

__all__ = ["TICK_SIGNATURE_HEADER", "EventAdmission", "TickAuthenticator"]

TICK_SIGNATURE_HEADER: Final = "eventrules-tick-signature"
_MIN_SECRET_BYTES: Final = 32
_TICKS_TOPIC: Final = "events.scheduled"


class TickAuthenticator:
    """Signs and checks schedule ticks with the secret every worker of the app shares."""

    def __init__(self, secret: str) -> None:
        key = secret.encode()
        if len(key) < _MIN_SECRET_BYTES:
            # the message never includes the value: it is a secret
            raise ConfigurationError(
                f"EVENTRULES_SCHEDULER_SECRET must be at least {_MIN_SECRET_BYTES} bytes"
                " (e.g. `openssl rand -hex 32`)"
            )
        self._key = key

    def _mac(self, topic: str, key: bytes | None, value: bytes | None) -> str:
        message = b"\x00".join((topic.encode(), key or b"", value or b""))
        return "v1=" + hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def headers(
        self, topic: str, key: bytes | None, value: bytes | None
    ) -> list[tuple[str, bytes]]:
        return [(TICK_SIGNATURE_HEADER, self._mac(topic, key, value).encode())]

    def verify(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers) -> bool:
        presented = [v for name, v in headers if name == TICK_SIGNATURE_HEADER and v is not None]
        expected = self._mac(topic, key, value).encode()
        return len(presented) == 1 and hmac.compare_digest(presented[0], expected)


@dataclass(frozen=True)
class EventAdmission:
    """``(reason, detail)`` for an event the worker must not run, else None."""

    catalog: TriggerCatalog
    topics: TopicNames
    ticks: TickAuthenticator | None = None

    def __call__(self, record: Record, event: Event) -> tuple[str, str] | None:
        logical = record.topic.removeprefix(self.topics.prefix)
        if not self.catalog.arrives_on(event.type, logical):
            return "topic_mismatch", f"{event.type} events may not arrive on {record.topic}"
        if (
            self.ticks is not None
            and logical == _TICKS_TOPIC
            and not self.ticks.verify(record.topic, record.key, record.value, record.headers)
        ):
            return "forged_tick", "the tick does not carry the scheduler's signature"
        return None
