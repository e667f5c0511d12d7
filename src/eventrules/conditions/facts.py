"""Facts a condition reads: the event data, plus facts derived from the event time.

Derived facts (computed on first use, in ``timezone`` if given, else the moment's own offset):

========== ==================================================================
eventTime  the moment itself (tz-aware datetime); within_last/older_than use it
dayOfWeek  0 = Sunday ... 6 = Saturday (JavaScript ``getDay()``, as the seed)
isWeekend  true on Saturday and Sunday
hour       0-23          minute   0-59
dayOfMonth 1-31          month    1-12         year   e.g. 2026
date       ``"YYYY-MM-DD"``       time     ``"HH:MM"`` (compare with between)
event      the envelope: id, type, source, subject, time (ISO string)
========== ==================================================================

The event's own data wins over a derived fact of the same name. A moment that cannot be shifted
into ``timezone`` (the first or last hours of the calendar) keeps its own offset.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from typing import Any, Final

__all__ = ["DERIVED_FACTS", "Facts"]


def _day_of_week(moment: datetime) -> int:
    return moment.isoweekday() % 7


_TIME_FACTS: Final[dict[str, Callable[[datetime], Any]]] = {
    "eventTime": lambda moment: moment,
    "dayOfWeek": _day_of_week,
    "isWeekend": lambda moment: moment.isoweekday() >= 6,
    "hour": lambda moment: moment.hour,
    "minute": lambda moment: moment.minute,
    "dayOfMonth": lambda moment: moment.day,
    "month": lambda moment: moment.month,
    "year": lambda moment: moment.year,
    "date": lambda moment: moment.date().isoformat(),
    "time": lambda moment: moment.strftime("%H:%M"),
}

DERIVED_FACTS: Final = (*_TIME_FACTS, "event")


class Facts(dict[str, Any]):
    """The event data (copied, so derived facts can be cached) with derived facts on demand."""

    __slots__ = ("_envelope", "_moment", "_timezone")

    def __init__(
        self,
        data: Mapping[str, Any],
        moment: datetime | None = None,
        envelope: Callable[[], Mapping[str, Any]] | None = None,
        timezone: tzinfo | None = None,
    ) -> None:
        super().__init__(data)
        self._moment = moment
        self._envelope = envelope
        # converted on first use: most events never read a time fact
        self._timezone = timezone

    def __missing__(self, key: str) -> Any:
        derive = _TIME_FACTS.get(key)
        if derive is not None and self._moment is not None:
            if self._timezone is not None:
                # year 1 or 9999 shifted out of range keeps its own offset
                with contextlib.suppress(OverflowError):
                    self._moment = self._moment.astimezone(self._timezone)
                self._timezone = None
            value = self[key] = derive(self._moment)
            return value
        if key == "event" and self._envelope is not None:
            envelope = self[key] = dict(self._envelope())
            return envelope
        raise KeyError(key)
