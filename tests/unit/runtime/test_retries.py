"""Non-blocking retries: the runner's one inline attempt and budget, the retry handler's tier
walk, against httpx.MockTransport (no Kafka: outputs are collected)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
import orjson

from eventrules.actions.webhook import WebhookExecutor
from eventrules.kafka.records import Record
from eventrules.metrics import Metrics
from eventrules.models.workflows import parse_workflow
from eventrules.runtime.deadletters import DeadLetterWriter
from eventrules.runtime.retries import DUE_HEADER, RetryHandler, RetryQueue, retry_due_at
from eventrules.runtime.runner import WorkflowRunner
from eventrules.settings import TopicNames
from eventrules.workflows.engine import Engine

from .helpers import Collect

TOPICS = TopicNames("p.")


async def _resolve(host: str, port: int) -> Sequence[str]:
    return ["93.184.216.34"]


def _executor(statuses: list[int]) -> WebhookExecutor:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(statuses.pop(0) if statuses else 200)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return WebhookExecutor(client, secrets={}, resolver=_resolve)


def _runner(statuses: list[int], budget: float = 5.0) -> tuple[WorkflowRunner, Collect]:
    engine = Engine()
    engine.upsert(
        parse_workflow(
            {
                "kind": "workflow",
                "id": "hook",
                "name": "hook",
                "trigger": "order.created",
                "created_by": "t",
                "actions": [
                    {
                        "type": "call_webhook",
                        "url": "https://hooks.example.com/x",
                        "max_attempts": 3,
                    }
                ],
            }
        )
    )
    sender = Collect()
    runner = WorkflowRunner(
        engine,
        topics=TOPICS,
        sender=sender,
        metrics=Metrics.create(),
        webhooks=_executor(statuses),
        retries=RetryQueue(TOPICS, sender, clock=lambda: 1000.0),
        inline_budget_seconds=budget,
    )
    return runner, sender


def _event(event_id: str) -> Record:
    value = orjson.dumps(
        {"specversion": "1.0", "id": event_id, "source": "s", "type": "order.created", "data": {}}
    )
    return Record("p.events.orders", 0, 1, b"k", value, [])


def test_a_retryable_failure_is_one_inline_attempt_then_the_first_tier() -> None:
    runner, sender = _runner([503])
    [execution] = asyncio.run(runner.handle(_event("e1")))
    action = execution["actions"][0]
    assert (execution["status"], action["status"], action["attempts"]) == (
        "retrying",
        "retrying",
        1,
    )
    [envelope] = sender.to("p.retry.5s")
    assert envelope["action_id"] == action["action_id"]
    assert (envelope["attempts"], envelope["max_attempts"], envelope["due_at"]) == (1, 3, 1005.0)
    [(_, key, _, headers)] = [s for s in sender.sent if s[0] == "p.retry.5s"]
    assert key == action["action_id"].encode()
    assert headers == [(DUE_HEADER, b"1005.0")]


def test_a_batch_past_its_inline_budget_defers_without_an_attempt() -> None:
    runner, sender = _runner([], budget=0.0)
    runner.begin_batch()
    [execution] = asyncio.run(runner.handle(_event("e2")))
    assert execution["actions"][0]["attempts"] == 0
    assert execution["actions"][0]["status"] == "retrying"
    assert sender.to("p.retry.5s")[0]["attempts"] == 0


def test_a_permanent_failure_is_not_retried() -> None:
    runner, sender = _runner([400])
    [execution] = asyncio.run(runner.handle(_event("e3")))
    assert execution["actions"][0]["status"] == "failed"
    assert sender.to("p.retry.5s") == []


def _retry(envelope: dict[str, Any], statuses: list[int]) -> Collect:
    sender = Collect()
    handler = RetryHandler(
        _executor(statuses),
        queue=RetryQueue(TOPICS, sender, clock=lambda: 2000.0),
        topics=TOPICS,
        sender=sender,
        dead_letters=DeadLetterWriter("p.dlq", sender, Metrics.create()),
        metrics=Metrics.create(),
    )
    record = Record("p.retry.5s", 0, 3, b"a", orjson.dumps(envelope), [(DUE_HEADER, b"1.5")])
    assert retry_due_at(record) == 1.5
    asyncio.run(handler(record))
    return sender


_ENVELOPE = {
    "action_id": "x.0",
    "execution_id": "x",
    "workflow_id": "hook",
    "action_type": "call_webhook",
    "request": {"url": "https://hooks.example.com/x"},
    "attempts": 1,
    "max_attempts": 3,
    "tier": "retry.5s",
}


def test_a_retry_that_succeeds_records_the_outcome() -> None:
    sender = _retry(_ENVELOPE, [200])
    [result] = sender.to("p.action-results")
    assert (result["status"], result["attempts"], result["next_tier"]) == ("success", 2, None)


def test_a_retry_that_fails_again_moves_to_the_next_tier() -> None:
    sender = _retry(_ENVELOPE, [503])
    [envelope] = sender.to("p.retry.1m")
    assert (envelope["attempts"], envelope["due_at"]) == (2, 2060.0)
    assert sender.to("p.action-results")[0]["status"] == "retrying"


def test_a_retry_that_runs_out_of_attempts_is_dead_lettered() -> None:
    sender = _retry(_ENVELOPE | {"attempts": 2}, [503])
    [(_topic, _key, value, headers)] = [s for s in sender.sent if s[0] == "p.dlq"]
    assert dict(headers)["dlq.reason"] == b"retries_exhausted"
    assert orjson.loads(value or b"")["action_id"] == "x.0"
    assert sender.to("p.action-results")[0]["status"] == "failed"
