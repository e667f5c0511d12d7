"""One event traced end to end through a real worker: the producer's traceparent on the
record, the worker's spans exported over OTLP/HTTP to a receiver on 127.0.0.1, the webhook
request received by a local server with its attempt span's traceparent, the action message and
the execution record on their topics with theirs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from integration.harness import Deployment, cloudevent, wait_until

pytestmark = pytest.mark.integration

PRODUCER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PRODUCER_SPAN = "00f067aa0ba902b7"


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver (POST /v1/traces) and a webhook endpoint (POST /hook)."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.hooks: list[dict[str, str]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def span_named(self, name: str) -> dict[str, Any]:
        with self.lock:
            found = [span for span in self.spans if span["name"] == name]
        assert len(found) == 1, (name, [s["name"] for s in self.spans])
        return found[0]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            if self.path == "/v1/traces":
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        self.server.spans.extend(
                            {
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent": span.parent_span_id.hex(),
                                "service": next(
                                    a.value.string_value
                                    for a in resource.resource.attributes
                                    if a.key == "service.name"
                                ),
                            }
                            for span in scope.spans
                        )
            else:
                self.server.hooks.append(dict(self.headers.items()))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _traceparent(span: dict[str, Any]) -> str:
    return f"00-{span['trace_id']}-{span['span_id']}-01"


def test_one_event_is_one_trace_from_the_producer_to_the_webhook(
    deployment: Deployment, receiver: Receiver
) -> None:
    deployment.publish_definition(
        {
            "kind": "workflow",
            "id": "traced",
            "name": "traced",
            "trigger": "order.created",
            "created_by": "tests",
            "actions": [
                {"type": "send_email", "to": "a@example.com", "subject": "s", "body": "b"},
                {"type": "call_webhook", "url": f"{receiver.url}/hook", "body": {"x": 1}},
            ],
        }
    )
    worker = deployment.start_worker(
        EVENTRULES_OTEL_ENABLED="true",
        EVENTRULES_WEBHOOK_ALLOW_LIST='["127.0.0.1/32"]',
        OTEL_SERVICE_NAME="eventrules-test",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{receiver.url}/v1/traces",
        OTEL_BSP_SCHEDULE_DELAY="100",
        NO_PROXY="127.0.0.1,localhost",
    )
    worker.wait_ready()
    event = cloudevent("order.created", {"orderId": "t-1"}, event_id="t-1")
    deployment.produce(
        "events.orders",
        orjson.dumps(event),
        key=b"t-1",
        headers=[("traceparent", f"00-{PRODUCER_TRACE}-{PRODUCER_SPAN}-01".encode())],
    )
    names = {
        f"process {deployment.topic('events.orders')}",
        "match",
        "workflow traced",
        "action send_email",
        "action call_webhook",
        "POST",
    }
    wait_until(
        lambda: names <= {span["name"] for span in receiver.spans},
        timeout=60,
        what="the trace exported",
    )

    process = receiver.span_named(f"process {deployment.topic('events.orders')}")
    match = receiver.span_named("match")
    workflow = receiver.span_named("workflow traced")
    email = receiver.span_named("action send_email")
    webhook = receiver.span_named("action call_webhook")
    attempt = receiver.span_named("POST")
    assert {span["trace_id"] for span in receiver.spans} == {PRODUCER_TRACE}
    assert {span["service"] for span in receiver.spans} == {"eventrules-test"}
    assert process["parent"] == PRODUCER_SPAN
    assert match["parent"] == workflow["parent"] == process["span_id"]
    assert email["parent"] == webhook["parent"] == workflow["span_id"]
    assert attempt["parent"] == webhook["span_id"]

    # the webhook's receiver got the attempt span's context
    (hook,) = receiver.hooks
    assert {k.lower(): v for k, v in hook.items()}["traceparent"] == _traceparent(attempt)
    # the action message and the execution record carry theirs
    (message,) = deployment.read("actions.email", until=lambda found: len(found) == 1)
    assert dict(message.headers() or [])["traceparent"].decode() == _traceparent(email)
    (record,) = deployment.read("executions", until=lambda found: len(found) == 1)
    assert dict(record.headers() or [])["traceparent"].decode() == _traceparent(workflow)
    assert orjson.loads(record.value() or b"")["traceparent"] == _traceparent(workflow)
