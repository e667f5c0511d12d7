"""The lifecycle every long-running part of a worker shares, so the worker is a list of
services rather than hand-written task bookkeeping (faust's ``mode.Service`` in small)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Service"]


class Service(Protocol):
    """Runs until :meth:`stop` is called (or fails); ``stop`` only asks, ``run`` cleans up."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...
