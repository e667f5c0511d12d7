"""The event the engine evaluates: a CloudEvents-shaped envelope the runtime builds for it."""

from __future__ import annotations

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

    def envelope(self) -> dict[str, Any]:
        """The envelope without the data, as templates and the ``event`` fact see it."""
        return {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "subject": self.subject,
            "time": self.time.isoformat(),
        }
