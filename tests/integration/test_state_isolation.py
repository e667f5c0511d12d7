"""The state stream under the worker's isolation and retries, against a real broker and a real
HTTP receiver: hostile records on ``state-repartition`` and a timer whose run cannot be read
back are dead-lettered while the stream goes on, and a delayed webhook that fails when its
timer fires waits on the retry tier and is delivered from there."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

from integration.harness import Deployment, cloudevent

pytestmark = pytest.mark.integration


class FlakyReceiver:
    """Answers 503 to the first request, 200 to every later one."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                owner.requests.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(503 if len(owner.requests) == 1 else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[FlakyReceiver]:
    flaky = FlakyReceiver()
    try:
        yield flaky
    finally:
        flaky.close()


def _headers(record: Any) -> dict[str, str]:
    return {k: (v or b"").decode() for k, v in record.headers() or []}


def test_hostile_state_records_are_dead_lettered_and_a_failed_delayed_webhook_retries(
    deployment: Deployment, receiver: FlakyReceiver
) -> None:
    deployment.publish_definition(
        {
            "kind": "workflow",
            "id": "review-hook",
            "version": 1,
            "name": "review-hook",
            "created_by": "tests",
            "trigger": "order.delivered",
            "actions": [
                {
                    "type": "call_webhook",
                    "url": receiver.url,
                    "body": {"order": "{{ orderId }}"},
                    "timeout_seconds": 2,
                    "max_attempts": 3,
                    "delay": "2s",
                }
            ],
        }
    )
    worker = deployment.start_worker(EVENTRULES_WEBHOOK_ALLOW_LIST='["127.0.0.1/32"]')
    worker.wait_ready()

    # what no event stream would write: the state stream must survive it
    broken_timer = {
        "op": "delay",
        "action_id": "broken.0",
        "execution_id": "broken",
        "due": time.time(),
        "planned": {"workflow_id": "gone"},  # a run that cannot be read back
        "event": {"id": "x", "type": "order.delivered", "source": "s"},
    }
    for key, value in (
        (b"a", b"not json"),
        (b"b", b'{"op": "explode"}'),
        (b"broken.0", orjson.dumps(broken_timer)),
    ):
        deployment.produce("state-repartition", value, key=key)
    event = cloudevent("order.delivered", {"orderId": "o-7"}, event_id="delivered-7")
    event["time"] = datetime.now(UTC).isoformat()
    deployment.produce("events.orders", orjson.dumps(event), key=b"o-7")

    letters = deployment.read("dlq", until=lambda found: len(found) >= 3, timeout=60)
    by_key = {record.key(): _headers(record) for record in letters}
    assert {headers["dlq.reason"] for headers in by_key.values()} == {"bad_state_request"}
    assert by_key[b"delay\x1fbroken.0"]["dlq.source.topic"] == deployment.topic("state-repartition")
    timer_letter = next(r for r in letters if r.key() == b"delay\x1fbroken.0")
    assert orjson.loads(timer_letter.value()) == broken_timer, "the letter holds the request"

    # the event's run delays the webhook; its timer's run fails once and goes to the retry tier
    runs = deployment.executions(
        until=lambda found: any(r["triggered_by"] == "timer" for r in found), timeout=60
    )
    (first,) = [r for r in runs if r["triggered_by"] == "event"]
    (timer,) = [r for r in runs if r["triggered_by"] == "timer"]
    action_id = first["actions"][0]["action_id"]
    assert first["actions"][0]["status"] == "delayed"
    assert (timer["execution_id"], timer["status"]) == (action_id, "retrying")
    results = deployment.read_json(
        "action-results",
        until=lambda found: any(r["status"] == "success" for r in found),
        timeout=60,
    )
    assert [(r["action_id"], r["execution_id"]) for r in results] == [
        (action_id, first["execution_id"])
    ]
    assert [h["idempotency-key"] for h in receiver.requests] == [action_id, action_id]
    assert worker.metric("eventrules_events_dead_lettered_total", reason="bad_state_request") == 3
    assert worker.get("/healthz").status_code == 200
