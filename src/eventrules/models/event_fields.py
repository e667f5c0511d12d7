"""The fields of an :class:`~eventrules.models.events.Event` as a pydantic model: what checks
an event built from outside (keywords that fail the plain checks, ``model_validate``) and
writes one out (``model_dump``). Apart from ``events.py`` so that mypyc compiles that one
(eventrules.native): it cannot compile a pydantic model."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = ["EventFields"]


class EventFields(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    type: str = Field(min_length=1)
    source: str = "eventrules"
    time: AwareDatetime
    subject: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
