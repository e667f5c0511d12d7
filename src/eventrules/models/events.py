"""The event the engine evaluates: a CloudEvents-shaped envelope the runtime builds for it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = ["Event"]


class Event(BaseModel):
    """``type`` is the trigger name (``order.created``); ``time`` must carry a timezone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    type: str = Field(min_length=1)
    source: str = "eventrules"
    time: AwareDatetime
    subject: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def checked(
        cls,
        *,
        id: str,
        type: str,
        source: str,
        time: datetime,
        subject: str | None,
        data: dict[str, Any],
    ) -> Event:
        """An event from values already checked as the fields require (the CloudEvents decoder
        checks each one, and a test holds it to the model): not validated a second time, as
        ``model_construct`` does, without its per-call overhead on the event path."""
        event = cls.__new__(cls)
        values = {
            "id": id,
            "type": type,
            "source": source,
            "time": time,
            "subject": subject,
            "data": data,
        }
        object.__setattr__(event, "__dict__", values)
        object.__setattr__(event, "__pydantic_fields_set__", set(values))
        object.__setattr__(event, "__pydantic_extra__", None)
        object.__setattr__(event, "__pydantic_private__", None)
        return event

    def envelope(self) -> dict[str, Any]:
        """The envelope without the data, as templates and the ``event`` fact see it."""
        return {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "subject": self.subject,
            "time": self.time.isoformat(),
        }
