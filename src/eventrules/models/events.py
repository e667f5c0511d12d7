"""The event the engine evaluates: a CloudEvents-shaped envelope the runtime builds for it.

A plain class mypyc compiles (eventrules.native), not a pydantic model: every step of the
event path reads its attributes, and a model's attribute read went through pydantic's
``__getattr__`` hook (a twentieth of a run's instructions, with building one). It keeps the
model's API that callers use (``model_validate``, ``model_dump``, ``model_copy``,
``model_fields``) and its checks: values the plain checks below accept are kept as given;
anything else goes through :class:`EventFields`, which coerces what pydantic would or raises
its ``ValidationError``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from eventrules.models.event_fields import EventFields

__all__ = ["Event"]

_FIELDS = ("id", "type", "source", "time", "subject", "data")


class Event:
    """``type`` is the trigger name (``order.created``); ``time`` must carry a timezone.

    Treat it as a value: nothing changes an event once built (``model_copy`` makes another).
    """

    id: str
    type: str
    source: str
    time: datetime
    subject: str | None
    data: dict[str, Any]

    model_fields: ClassVar[dict[str, Any]] = EventFields.model_fields

    # Any, not the fields' types: compiled code would refuse a wrong type with a TypeError at
    # the call, before the model could say what is wrong (and coerce what it coerces)
    def __init__(
        self,
        *,
        id: Any,
        type: Any,
        time: Any,
        source: Any = "eventrules",
        subject: Any = None,
        data: Any = None,
    ) -> None:
        if data is None:
            data = {}
        if not (
            isinstance(id, str)
            and id
            and isinstance(type, str)
            and type
            and isinstance(source, str)
            and isinstance(time, datetime)
            and time.utcoffset() is not None
            and (subject is None or isinstance(subject, str))
            and isinstance(data, dict)
        ):
            # not plainly valid: pydantic coerces it (a time string) or says what is wrong
            fields = EventFields(
                id=id, type=type, time=time, source=source, subject=subject, data=data
            )
            id, type, time, source = fields.id, fields.type, fields.time, fields.source
            subject, data = fields.subject, fields.data
        self.id = id
        self.type = type
        self.source = source
        self.time = time
        self.subject = subject
        self.data = data

    @classmethod
    def model_validate(cls, raw: Any) -> Event:
        """An event from a mapping (or an event), checked and coerced as pydantic does."""
        if isinstance(raw, Event):
            return raw
        return cls(**dict(EventFields.model_validate(raw)))

    def model_dump(self, *, mode: str = "python") -> dict[str, Any]:
        """The fields as a dict; ``mode="json"`` writes them as pydantic does for JSON."""
        return EventFields.model_construct(**self._values()).model_dump(mode=mode)

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Event:
        """Another event with ``update``'s fields replaced (checked as any event is)."""
        return Event(**{**self._values(), **(update or {})})

    def _values(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "time": self.time,
            "subject": self.subject,
            "data": self.data,
        }

    @property
    def model_fields_set(self) -> set[str]:
        """Every field: an event always has them all (defaults included)."""
        return set(_FIELDS)

    def envelope(self) -> dict[str, Any]:
        """The envelope without the data, as templates and the ``event`` fact see it."""
        return {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "subject": self.subject,
            "time": self.time.isoformat(),
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # equal by value, and data is a dict

    def __repr__(self) -> str:
        return (
            f"Event(id={self.id!r}, type={self.type!r}, source={self.source!r},"
            f" time={self.time!r}, subject={self.subject!r}, data={self.data!r})"
        )
