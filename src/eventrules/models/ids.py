"""Deterministic ids of workflow runs and their actions (re-exported by :mod:`.executions`).

A run repeated after a crash (at-least-once delivery) gets the same ids, which downstream
consumers use to drop duplicates. Apart from the pydantic models so mypyc compiles it
(eventrules.native): every event that matches computes one.
"""

from __future__ import annotations

import hashlib
import uuid

__all__ = ["action_id", "execution_id"]

# Fixed namespace: the same (event, workflow, version) gives the same id on every worker, forever.
_NAMESPACE = uuid.UUID("6f1c3b9e-5d1a-4f0e-9a57-3e2f4c8b7d10")
_NAMESPACE_BYTES = _NAMESPACE.bytes


def execution_id(event_source: str, event_id: str, workflow_id: str, version: int) -> str:
    """The id of running ``workflow_id`` at ``version`` for one event (CloudEvents id + source).

    ``uuid.uuid5`` spelled out (SHA-1 of namespace + name, version and variant bits set):
    building a UUID object and formatting it cost more per event than the hash.
    """
    name = f"{event_source}\x1f{event_id}\x1f{workflow_id}\x1f{version}".encode()
    digest = hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).hexdigest()
    variant = "89ab"[int(digest[16], 16) & 0x3]
    return f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-{variant}{digest[17:20]}-{digest[20:32]}"


def action_id(execution: str, index: int) -> str:
    """The id of the ``index``-th action of an execution."""
    return f"{execution}.{index}"
