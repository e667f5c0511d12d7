"""Re-keying for state: what the event stream hands to the state stream, through the
``state-repartition`` topic, keyed by the state key.

The event topics are keyed by the entity (the CloudEvents subject); a throttle key, a dedupe
key or an absence ``match_on`` value is usually something else (a product id on an inventory
event, an order id on a payment event). Writing the request keyed by the state key puts every
request for one key on one partition of the state stream, so exactly one worker holds that
key's state, whichever topic and partition its events came from. The state stream's own
requests (a delayed action of a run it made) take the same way.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from eventrules.models.events import Event
from eventrules.runtime.deadletters import Sender
from eventrules.workflows.memory import AbsenceWatch
from eventrules.workflows.plan import PlannedWorkflow, RenderedAction

__all__ = ["SEPARATOR", "StateRouter", "event_from_json", "event_json"]

SEPARATOR: Final = "\x1f"


def event_json(event: Event) -> dict[str, Any]:
    return {**event.envelope(), "data": event.data}


def event_from_json(raw: dict[str, Any]) -> Event:
    return Event.model_validate(raw)


def _dumps(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)


class StateRouter:
    """Writes state requests to the repartition topic through a stream's sender (so they join
    its batch: committed only once delivered, or inside its transaction)."""

    def __init__(self, topic: str, sender: Sender) -> None:
        self.topic = topic
        self.sender = sender

    async def _send(self, key: str, request: dict[str, Any]) -> None:
        await self.sender.send(self.topic, key.encode(), _dumps(request))

    async def gate(self, planned: PlannedWorkflow, event: Event) -> None:
        """Ask the owner of the first gate's key whether ``planned`` may run."""
        first = planned.gates[0]
        key = SEPARATOR.join((first.kind, planned.workflow_id, first.key))
        await self._send(
            key, {"op": "gate", "planned": planned.to_dict(), "event": event_json(event)}
        )

    async def watch(self, planned: PlannedWorkflow, event: Event) -> None:
        """Start the absence watch of ``planned`` (it runs if no answer comes in time)."""
        if planned.absence is None:
            raise ValueError(f"{planned.workflow_id} has no absence to watch")
        key = SEPARATOR.join((planned.workflow_id, planned.absence.match))
        await self._send(
            key, {"op": "watch", "planned": planned.to_dict(), "event": event_json(event)}
        )

    async def answer(self, workflow_id: str, watch: AbsenceWatch, event: Event) -> None:
        """``event`` is the expected event of ``workflow_id``'s watch on ``watch.match``."""
        key = SEPARATOR.join((workflow_id, watch.match))
        await self._send(
            key,
            {
                "op": "answer",
                "workflow_id": workflow_id,
                "watch": watch.to_dict(),
                "at": event.time.timestamp(),
                "event_id": event.id,
            },
        )

    async def delay(
        self,
        planned: PlannedWorkflow,
        action: RenderedAction,
        event: Event,
        *,
        run_id: str,
        action_id: str,
        due: float,
    ) -> None:
        """Arm the durable timer that runs ``action`` (alone, undelayed) at ``due``."""
        alone = PlannedWorkflow(
            planned.workflow_id,
            planned.name,
            planned.version,
            planned.priority,
            (
                RenderedAction(
                    action.index, action.type, action.params, action.missing, action.error
                ),
            ),
        )
        await self._send(
            action_id,
            {
                "op": "delay",
                "action_id": action_id,
                "execution_id": run_id,
                "due": due,
                "planned": alone.to_dict(),
                "event": event_json(event),
            },
        )
