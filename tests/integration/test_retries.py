"""Non-blocking retries against a real broker and a real HTTP receiver that hangs: the other
events keep flowing while it hangs, each webhook waits on the retry tier instead of in the
stream, and is delivered (same Idempotency-Key) once the receiver answers again."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from eventrules.runtime.retries import RETRY_TIERS
from integration.harness import Deployment, WorkerProcess, ids_of, order_workflow, wait_until

pytestmark = pytest.mark.integration


class HangingReceiver:
    """Holds every request until :meth:`release`; then answers 200 at once."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.answered: list[dict[str, str]] = []
        self.held = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if not owner.released.is_set():
                    owner.held += 1
                    owner.released.wait(60)
                    return  # the client gave up long ago: no answer
                owner.answered.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[HangingReceiver]:
    hanging = HangingReceiver()
    try:
        yield hanging
    finally:
        hanging.close()


RETRY_TIER_NAMES = [tier.name for tier in RETRY_TIERS]


def _retries(worker: WorkerProcess, tier: str, outcome: str) -> float:
    return worker.metric("eventrules_action_retries_total", tier=tier, outcome=outcome)


def test_a_hanging_receiver_holds_up_no_event_and_gets_its_calls_once_it_answers(
    deployment: Deployment, receiver: HangingReceiver
) -> None:
    hook = order_workflow("notify")
    hook["actions"] = [
        {
            "type": "call_webhook",
            "url": receiver.url,
            "body": {"order": "{{orderId}}"},
            "timeout_seconds": 2,
            "max_attempts": 4,
        }
    ]
    deployment.publish_definition(hook)
    deployment.publish_definition(order_workflow("tasks"))
    worker = deployment.start_worker(
        EVENTRULES_WEBHOOK_ALLOW_LIST='["127.0.0.1/32"]',
        EVENTRULES_WEBHOOK_INLINE_BUDGET_SECONDS="1",
    )
    worker.wait_ready()
    ids = [f"o-{n}" for n in range(60)]
    deployment.produce_orders(ids)

    # Every event runs both workflows while the receiver hangs: at most a second of inline
    # attempts per batch, then the webhooks wait on the retry tier.
    executions = deployment.executions(
        until=lambda found: (
            set(ids) <= set(ids_of(found, "notify")) and set(ids) <= set(ids_of(found, "tasks"))
        ),
        timeout=60,
    )
    assert set(ids) <= set(ids_of(executions, "tasks"))
    notify = [e for e in executions if e["workflow_id"] == "notify"]
    assert {e["status"] for e in notify} == {"retrying"}
    assert {e["actions"][0]["status"] for e in notify} == {"retrying"}
    assert receiver.answered == []
    assert worker.get("/healthz").status_code == 200

    receiver.release()
    results = deployment.read_json(
        "action-results",
        until=lambda found: (
            len({r["action_id"] for r in found if r["status"] == "success"}) >= len(ids)
        ),
        timeout=150,  # an action whose retry.5s attempt began before the release waits on retry.1m
    )
    delivered = {r["action_id"] for r in results if r["status"] == "success"}
    assert delivered == {e["actions"][0]["action_id"] for e in notify}
    keys = {headers["idempotency-key"] for headers in receiver.answered}
    assert keys == delivered, "every retry keeps the action id as its Idempotency-Key"
    # Each action succeeds once, on whichever tier it had reached: an attempt that began while
    # the receiver still hung (a slow machine takes longer than retry.5s's delay to write all
    # the executions) is counted "retrying" and moves on. None is given up.
    wait_until(
        lambda: sum(_retries(worker, tier, "success") for tier in RETRY_TIER_NAMES) == len(ids),
        what="one success counted per action",
    )
    assert sum(_retries(worker, tier, "failed") for tier in RETRY_TIER_NAMES) == 0
    log = worker.log_path.read_text()
    assert log.count("events.orders', 0)") == 1, "one assignment: no poll gap cost the group"
    assert worker.get("/healthz").status_code == 200
