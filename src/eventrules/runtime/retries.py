"""Non-blocking retries: an action whose attempt failed waits on a delay topic, not in the stream.

The design of Kafka Streams' and Spring Kafka's non-blocking retries: one topic per backoff
tier (``retry.5s``, ``retry.1m``, ``retry.10m``, declared in ``topics/``). A failed attempt is
written, as a retry envelope keyed by the action id, to the tier of its next attempt, with the
moment it is due in the header ``eventrules-retry-due``. The worker's retry stream consumes the
tiers and pauses a partition until its head record is due (every record of a tier waits the
same delay, so each partition is in due order), so no poll waits on a backoff; attempts of one
batch run concurrently, each bounded by a timeout, so no poll gap nears ``max.poll.interval.ms``.
Being topics, retries survive restarts, and an exhausted retry is dead-lettered (reason
``retries_exhausted``); each retry's outcome is an action result record on ``action-results``.

Every attempt keeps the action id as ``webhook-id`` and ``Idempotency-Key``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from eventrules.actions.webhook import WebhookExecutor, WebhookRequest, WebhookResult
from eventrules.kafka.records import Record
from eventrules.metrics import Metrics
from eventrules.runtime.deadletters import DeadLetterWriter, Sender
from eventrules.settings import TopicNames

__all__ = [
    "DUE_HEADER",
    "RETRY_TIERS",
    "RetryHandler",
    "RetryQueue",
    "RetryTier",
    "retry_due_at",
    "webhook_request",
]

log = logging.getLogger(__name__)

DUE_HEADER = "eventrules-retry-due"


@dataclass(frozen=True)
class RetryTier:
    name: str  # the logical topic name
    delay_seconds: float


RETRY_TIERS = (
    RetryTier("retry.5s", 5.0),
    RetryTier("retry.1m", 60.0),
    RetryTier("retry.10m", 600.0),
)


def retry_due_at(record: Record) -> float | None:
    """When a retry record is due (epoch seconds), from its header; None: now."""
    for name, value in record.headers:
        if name == DUE_HEADER and value is not None:
            return float(value)
    return None


def webhook_request(params: dict[str, Any], message_id: str, **changes: Any) -> WebhookRequest:
    """The webhook call a rendered ``call_webhook`` action (or a retry envelope) asks for."""
    fields: dict[str, Any] = {
        "url": params["url"],
        "method": params.get("method", "POST"),
        "headers": params.get("headers") or {},
        "body": params.get("body"),
        "timeout_seconds": float(params.get("timeout_seconds", 10.0)),
        "max_attempts": int(params.get("max_attempts", 3)),
        "secret_name": params.get("secret"),
        "message_id": message_id,
    }
    fields.update(changes)
    return WebhookRequest(**fields)


class RetryQueue:
    """Writes retry envelopes to the tier of their next attempt, through a stream's sender (so
    they join its batch: committed only once delivered, or in its transaction)."""

    def __init__(
        self,
        topics: TopicNames,
        sender: Sender,
        *,
        tiers: tuple[RetryTier, ...] = RETRY_TIERS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.topics = topics
        self.sender = sender
        self.tiers = tiers
        self.clock = clock

    def tier(self, attempts: int) -> RetryTier:
        """The tier after ``attempts`` attempts: the first retry waits on the first tier, the
        second on the second, and every later one on the last."""
        return self.tiers[min(max(attempts, 1), len(self.tiers)) - 1]

    async def defer(self, envelope: dict[str, Any]) -> RetryTier:
        tier = self.tier(int(envelope["attempts"]))
        due = self.clock() + tier.delay_seconds
        body = {**envelope, "tier": tier.name, "due_at": due}
        await self.sender.send(
            self.topics(tier.name),
            str(envelope["action_id"]).encode(),
            orjson.dumps(body),
            [(DUE_HEADER, repr(due).encode())],
        )
        return tier


class RetryHandler:
    """The retry stream's handler: one attempt for a due envelope, then success, the next
    tier, or the dead-letter topic. Failures of the envelope itself (not JSON, fields missing)
    raise, and the stream dead-letters the record."""

    def __init__(
        self,
        webhooks: WebhookExecutor | None,
        *,
        queue: RetryQueue,
        topics: TopicNames,
        sender: Sender,
        dead_letters: DeadLetterWriter,
        metrics: Metrics,
        attempt_timeout_max: float = 30.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.webhooks = webhooks
        self.queue = queue
        self.topics = topics
        self.sender = sender
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.attempt_timeout_max = attempt_timeout_max
        self.now = now

    async def __call__(self, record: Record) -> None:
        envelope = orjson.loads(record.value or b"")
        if not isinstance(envelope, dict):
            raise TypeError("a retry envelope must be a JSON object")
        action_id = str(envelope["action_id"])
        tier = str(envelope.get("tier") or "?")
        result = await self._attempt(envelope, action_id)
        attempts = int(envelope["attempts"]) + max(1, result.attempts)
        outcome = "success" if result.ok else "failed"
        next_tier: str | None = None
        if not result.ok and result.retryable and attempts < int(envelope["max_attempts"]):
            following = await self.queue.defer(
                {**envelope, "attempts": attempts, "last_error": result.error}
            )
            outcome, next_tier = "retrying", following.name
        elif not result.ok:
            reason = "retries_exhausted" if result.retryable else "action_failed"
            await self.dead_letters(record, reason, f"after {attempts} attempts: {result.error}")
        self.metrics.child(self.metrics.action_retries, _tier_label(tier), outcome).inc()
        await self._record_result(
            envelope, result, status=outcome, attempts=attempts, next_tier=next_tier
        )

    async def _attempt(self, envelope: dict[str, Any], action_id: str) -> WebhookResult:
        if self.webhooks is None:
            return WebhookResult(False, None, 0, 0.0, "webhooks are not configured", None)
        request = webhook_request(envelope["request"], action_id)
        return await self.webhooks.call(
            webhook_request(
                envelope["request"],
                action_id,
                max_attempts=1,
                timeout_seconds=min(request.timeout_seconds, self.attempt_timeout_max),
            )
        )

    async def _record_result(
        self,
        envelope: dict[str, Any],
        result: WebhookResult,
        *,
        status: str,
        attempts: int,
        next_tier: str | None,
    ) -> None:
        action_id = str(envelope["action_id"])
        body = {
            "action_id": action_id,
            "execution_id": envelope.get("execution_id"),
            "workflow_id": envelope.get("workflow_id"),
            "action_type": envelope.get("action_type"),
            "status": status,
            "attempts": attempts,
            "error": result.error,
            "status_code": result.status_code,
            "next_tier": next_tier,
            "at": self.now().isoformat(),
        }
        await self.sender.send(
            self.topics("action-results"), action_id.encode(), orjson.dumps(body)
        )


def _tier_label(tier: str) -> str:
    names = {t.name for t in RETRY_TIERS}
    return tier if tier in names else "other"
