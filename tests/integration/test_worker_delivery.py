"""Delivery on the real broker: webhooks to a real local HTTP server, two workers in one group,
a crash mid-stream, and the exactly-once mode."""

from __future__ import annotations

import base64
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from integration.harness import Deployment, cloudevent, ids_of, order_workflow, wait_until

pytestmark = pytest.mark.integration

SECRET = "whsec_" + base64.b64encode(b"eventrules-test-signing-key-0001").decode()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HookServer:
    """A real HTTP server on loopback that fails the first ``failures`` requests with 500."""

    host: str = "127.0.0.1"
    failures: int = 0
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                owner.received.append(
                    Received(
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        self.rfile.read(length),
                    )
                )
                status = 500 if len(owner.received) <= owner.failures else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def hook_servers() -> Iterator[tuple[HookServer, HookServer]]:
    allowed = HookServer("127.0.0.1", failures=1)
    # Loopback but not allow-listed: the SSRF guard must refuse it before any request.
    forbidden = HookServer("127.0.0.2")
    try:
        yield allowed, forbidden
    finally:
        allowed.close()
        forbidden.close()


def _webhook_workflow(workflow_id: str, url: str) -> dict[str, Any]:
    return {
        "kind": "workflow",
        "id": workflow_id,
        "version": 1,
        "name": workflow_id,
        "trigger": "payment.failed",
        "created_by": "tests",
        "actions": [
            {
                "type": "call_webhook",
                "url": url,
                "secret": "crm",
                "body": {"payment": "{{paymentId}}", "amount": "{{amount}}"},
                "timeout_seconds": 5,
                "max_attempts": 3,
            }
        ],
    }


def test_webhook_is_signed_retried_on_a_delay_topic_after_500_and_refused_for_private_addresses(
    deployment: Deployment, hook_servers: tuple[HookServer, HookServer]
) -> None:
    allowed, forbidden = hook_servers
    deployment.publish_definition(_webhook_workflow("notify-crm", allowed.url))
    deployment.publish_definition(_webhook_workflow("notify-internal", forbidden.url))
    worker = deployment.start_worker(
        EVENTRULES_WEBHOOK_SECRETS=orjson.dumps({"crm": SECRET}).decode(),
        EVENTRULES_WEBHOOK_ALLOW_LIST='["127.0.0.1/32"]',
    )
    worker.wait_ready()
    event = cloudevent("payment.failed", {"paymentId": "p-1", "amount": 42}, event_id="pay-1")
    deployment.produce("events.payments", orjson.dumps(event))

    executions = deployment.executions(until=lambda f: len(ids_of(f)) >= 2)
    by_workflow = {e["workflow_id"]: e for e in executions}

    crm = by_workflow["notify-crm"]
    # The 500 is retried on the first retry tier, not inline: the execution record says so,
    # and the retry's outcome is an action result record.
    assert crm["status"] == "retrying"
    assert crm["actions"][0]["status"] == "retrying"
    assert crm["actions"][0]["attempts"] == 1
    action_id = crm["actions"][0]["action_id"]
    results = deployment.read_json(
        "action-results", until=lambda found: any(r["status"] == "success" for r in found)
    )
    assert [(r["action_id"], r["status"], r["attempts"]) for r in results] == [
        (action_id, "success", 2)
    ]
    assert len(allowed.received) == 2
    first, second = allowed.received
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert second.headers["webhook-id"] == action_id
    assert second.headers["idempotency-key"] == second.headers["webhook-id"]
    payload = Webhook(SECRET).verify(second.body, second.headers)
    assert payload == {"payment": "p-1", "amount": "42"}
    assert worker.metric("eventrules_action_retries_total", tier="retry.5s", outcome="success") == 1

    internal = by_workflow["notify-internal"]
    assert internal["status"] == "failed"
    assert internal["actions"][0]["attempts"] == 0
    assert "127.0.0.2" in internal["actions"][0]["error"]
    assert forbidden.received == [], "a refused destination must never see a request"
    assert worker.metric("eventrules_webhook_retries_total") == 1


def test_two_workers_share_the_events_and_each_holds_the_whole_config(
    deployment: Deployment,
) -> None:
    deployment.publish_definition(order_workflow())
    deployment.publish_definition({**order_workflow(), "id": "second", "enabled": False})
    first = deployment.start_worker()
    second = deployment.start_worker()
    assert first.wait_ready()["workflows"] == 2
    assert second.wait_ready()["workflows"] == 2

    event_partitions = {
        f"{deployment.topic(name)}:{p}"
        for name in (
            "events.orders",
            "events.users",
            "events.products",
            "events.payments",
            "events.prescriptions",
            "events.reviews",
            "events.scheduled",
        )
        for p in range(3)
    }

    def split() -> bool:
        mine = {a for a in first.wait_ready()["assigned"] if a in event_partitions}
        theirs = {a for a in second.wait_ready()["assigned"] if a in event_partitions}
        return (
            bool(mine) and bool(theirs) and not mine & theirs and mine | theirs == event_partitions
        )

    wait_until(split, timeout=60, what="the group to split the event partitions")

    ids = [f"o-{n}" for n in range(60)]
    deployment.produce_orders(ids)
    executions = deployment.executions(until=lambda f: set(ids) <= set(ids_of(f)))
    counts = Counter(ids_of(executions))
    assert set(counts) == set(ids)
    assert max(counts.values()) == 1, "a stable group processes every event once"
    orders = deployment.topic("events.orders")
    consumed = [
        w.metric("eventrules_events_consumed_total", topic=orders, type="order.created")
        for w in (first, second)
    ]
    assert sum(consumed) == 60
    assert all(count > 0 for count in consumed), consumed


def test_a_worker_killed_mid_stream_loses_no_execution_after_restart(
    deployment: Deployment,
) -> None:
    deployment.publish_definition(order_workflow())
    ids = [f"k-{n}" for n in range(400)]
    deployment.produce_orders(ids)

    victim = deployment.start_worker()
    deployment.executions(until=lambda f: len(f) >= 20, timeout=90)
    victim.kill()

    survivor = deployment.start_worker()
    survivor.wait_ready()
    executions = deployment.executions(until=lambda f: set(ids) <= set(ids_of(f)), timeout=120)
    assert set(ids_of(executions)) == set(ids)
    # Redelivered events produce the same execution id: consumers can drop the duplicates.
    by_event: dict[str, set[str]] = {}
    for record in executions:
        by_event.setdefault(record["trigger_event_id"], set()).add(record["execution_id"])
    assert all(len(run_ids) == 1 for run_ids in by_event.values())


def test_exactly_once_mode_shows_read_committed_consumers_each_output_once(
    deployment: Deployment,
) -> None:
    deployment.publish_definition(order_workflow())
    ids = [f"x-{n}" for n in range(300)]
    deployment.produce_orders(ids)

    victim = deployment.start_worker(EVENTRULES_PROCESSING_GUARANTEE="exactly_once")
    deployment.executions(until=lambda f: len(f) >= 20, timeout=90)
    victim.kill()
    survivor = deployment.start_worker(EVENTRULES_PROCESSING_GUARANTEE="exactly_once")
    survivor.wait_ready()

    executions = deployment.executions(until=lambda f: set(ids) <= set(ids_of(f)), timeout=120)
    counts = Counter(ids_of(executions))
    assert set(counts) == set(ids)
    assert max(counts.values()) == 1, "read_committed sees each execution record once"
    tasks = deployment.read_json("actions.tasks", until=lambda f: len(f) >= len(ids))
    assert len(tasks) == len(ids)
    assert len({t["action_id"] for t in tasks}) == len(ids)
