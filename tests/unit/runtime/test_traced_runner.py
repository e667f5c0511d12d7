"""The span tree of one event through the real runner and webhook executor, exported to the
SDK's in-memory exporter; and the traceparent in what the run writes and sends."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, cast

import httpx
import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from eventrules.actions.webhook import WebhookExecutor
from eventrules.kafka.records import Record
from eventrules.metrics import Metrics
from eventrules.models.events import Event
from eventrules.models.executions import ExecutionRecord
from eventrules.models.workflows import parse_workflow
from eventrules.runtime.traced_runner import TracedWorkflowRunner
from eventrules.settings import TopicNames
from eventrules.workflows.engine import Engine
from eventrules.workflows.plan import PlannedWorkflow, RenderedAction

PRODUCER_TRACE = "0af7651916cd43dd8448eb211c80319c"
PRODUCER_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{PRODUCER_TRACE}-{PRODUCER_SPAN}-01"


class Collect:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, Any]] = []

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Any = None
    ) -> None:
        self.sent.append((topic, key, value, headers))


async def resolve(host: str, port: int) -> Sequence[str]:
    return ["93.184.216.34"]


WORKFLOW = {
    "kind": "workflow",
    "id": "confirm",
    "name": "confirm",
    "trigger": "order.created",
    "conditions": "total > 10",
    "created_by": "t",
    "actions": [
        {"type": "send_email", "to": "a@example.com", "subject": "s", "body": "b"},
        {
            "type": "call_webhook",
            "url": "http://hooks.example.com/orders?token=secret",
            # the workflow's own trace header is replaced by the attempt's
            "headers": {"TraceParent": "00-11111111111111111111111111111111-2222222222222222-01"},
            "body": {"order": "{{orderId}}"},
        },
    ],
}


def _event(event_id: str = "e1") -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": "shop",
            "type": "order.created",
            "data": {"total": 50, "orderId": "o1"},
        }
    )


def _run(
    value: bytes, headers: list[tuple[str, bytes | None]], replies: list[int]
) -> tuple[list[ReadableSpan], Collect, list[httpx.Request]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    requests: list[httpx.Request] = []
    statuses = iter(replies)

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(next(statuses))

    async def main() -> Collect:
        engine = Engine()
        engine.upsert(parse_workflow(WORKFLOW))
        sender = Collect()
        tracer = provider.get_tracer("test")

        async def no_sleep(seconds: float) -> None:
            return None

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            runner = TracedWorkflowRunner(
                engine,
                tracer=tracer,
                topics=TopicNames("p."),
                sender=sender,
                metrics=Metrics.create(),
                webhooks=WebhookExecutor(
                    client, secrets={}, resolver=resolve, sleep=no_sleep, tracer=tracer
                ),
            )
            await runner.handle(Record("p.events.orders", 2, 42, b"k", value, headers, None))
        return sender

    sender = asyncio.run(main())
    return list(exporter.get_finished_spans()), sender, requests


def _traceparent(span: ReadableSpan) -> str:
    context = span.get_span_context()
    assert context is not None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-01"


def _header(headers: Any, name: str) -> str:
    values = [value.decode() for key, value in headers if key == name]
    assert len(values) == 1, headers
    return str(values[0])


def test_one_event_makes_one_tree_under_the_producers_span() -> None:
    spans, sender, requests = _run(_event(), [("traceparent", TRACEPARENT.encode())], [503, 200])
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    assert sorted(by_name) == [
        "POST",
        "action call_webhook",
        "action send_email",
        "match",
        "process p.events.orders",
        "workflow confirm",
    ]
    (process,) = by_name["process p.events.orders"]
    (match,) = by_name["match"]
    (workflow,) = by_name["workflow confirm"]
    (email,) = by_name["action send_email"]
    (webhook,) = by_name["action call_webhook"]
    first, second = by_name["POST"]

    def parent(span: ReadableSpan) -> int | None:
        return span.parent.span_id if span.parent is not None else None

    def sid(span: ReadableSpan) -> int:
        assert span.context is not None
        return span.context.span_id

    # one trace, continued from the producer's context (as parent, and as a link)
    assert {f"{s.context.trace_id:032x}" for s in spans if s.context} == {PRODUCER_TRACE}
    assert parent(process) == int(PRODUCER_SPAN, 16)
    assert [f"{link.context.span_id:016x}" for link in process.links] == [PRODUCER_SPAN]
    assert process.kind == SpanKind.CONSUMER
    assert process.attributes is not None
    assert process.attributes["cloudevents.event_id"] == "e1"
    assert process.attributes["messaging.kafka.offset"] == 42
    assert parent(match) == sid(process)
    assert match.attributes == {"eventrules.workflows_matched": 1}
    assert parent(workflow) == sid(process)
    assert parent(email) == parent(webhook) == sid(workflow)
    assert parent(first) == parent(second) == sid(webhook)

    # each webhook attempt is a client span, and its request carries that span's traceparent
    assert [r.headers.get_list("traceparent") for r in requests] == [
        [_traceparent(first)],
        [_traceparent(second)],
    ]
    assert first.kind == SpanKind.CLIENT
    assert first.attributes is not None
    assert second.attributes is not None
    assert first.attributes["http.response.status_code"] == 503
    assert first.status.status_code == StatusCode.ERROR
    assert second.attributes["http.request.resend_count"] == 1
    assert second.status.status_code == StatusCode.UNSET
    assert "token" not in str(first.attributes), "no query string in span attributes"

    # what the run wrote carries the span it was written in
    (message, record) = [item for item in sender.sent if item[0] != "p.actions.call_webhook"]
    assert message[0] == "p.actions.email"
    assert _header(message[3], "traceparent") == _traceparent(email)
    assert record[0] == "p.executions"
    assert _header(record[3], "traceparent") == _traceparent(workflow)
    execution = ExecutionRecord.model_validate(orjson.loads(record[2] or b""))
    assert execution.traceparent == _traceparent(workflow)
    assert workflow.attributes is not None
    assert workflow.attributes["eventrules.execution_id"] == execution.execution_id


@pytest.mark.parametrize(
    "headers",
    [[], [("traceparent", b"not-a-traceparent")], [("traceparent", "00-é".encode())]],
    ids=["none", "invalid", "not-ascii"],
)
def test_without_a_usable_producer_context_the_event_starts_a_trace(
    headers: list[tuple[str, bytes | None]],
) -> None:
    spans, sender, _ = _run(_event(), headers, [200])
    (process,) = [span for span in spans if span.name.startswith("process ")]
    assert process.parent is None
    assert process.links == ()
    assert len(sender.sent) == 2


def test_binary_mode_trace_extension_is_the_producers_context() -> None:
    headers: list[tuple[str, bytes | None]] = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"e9"),
        ("ce_source", b"shop"),
        ("ce_type", b"order.created"),
        ("ce_traceparent", TRACEPARENT.encode()),
    ]
    spans, _, _ = _run(orjson.dumps({"total": 50, "orderId": "o9"}), headers, [200])
    (process,) = [span for span in spans if span.name.startswith("process ")]
    assert process.parent is not None
    assert f"{process.parent.trace_id:032x}" == PRODUCER_TRACE


def test_a_poison_event_is_an_error_span() -> None:
    spans, sender, _ = _run(b"not json", [], [])
    (process,) = spans
    assert process.status.status_code == StatusCode.ERROR
    assert process.attributes is not None
    assert process.attributes["eventrules.dead_letter.reason"] == "not_json"
    assert [topic for topic, *_ in sender.sent] == ["p.dlq"]


def _traced(
    engine: Engine, sender: Collect
) -> tuple[TracedWorkflowRunner, InMemorySpanExporter, TracerProvider]:
    """A traced runner over ``engine`` and ``sender``, its spans kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    runner = TracedWorkflowRunner(
        engine,
        tracer=provider.get_tracer("t"),
        topics=TopicNames("p."),
        sender=sender,
        metrics=Metrics.create(),
    )
    return runner, exporter, provider


def test_a_timer_run_keeps_its_ids_when_traced() -> None:
    """The state stream runs a delayed action under the original run's id and records it as an
    execution of its own: the traced runner passes both through."""
    runner, exporter, provider = _traced(Engine(), Collect())
    planned = PlannedWorkflow("w", "w", 1, 5, (RenderedAction(1, "create_task", {"title": "t"}),))
    event = Event.model_validate(
        {"id": "e", "type": "order.created", "time": "2026-11-02T10:00:00Z", "data": {}}
    )
    record = asyncio.run(
        runner.execute(planned, event, "timer", run_id="run-1", record_id="run-1.1")
    )
    assert record["execution_id"] == "run-1.1"
    assert record["actions"][0]["action_id"] == "run-1.1"
    (workflow_span,) = [s for s in exporter.get_finished_spans() if s.name == "workflow w"]
    assert (workflow_span.attributes or {})["eventrules.triggered_by"] == "timer"
    provider.shutdown()


def test_traced_runs_are_awaited_even_where_the_plain_runner_would_not_wait() -> None:
    """Given a sender that can send without awaiting (the stream's), the plain runner runs a
    plan of topic actions at once; the traced one still goes through its spans and sender."""

    class CollectNow(Collect):
        def send_now(self, topic: str, key: Any, value: Any, headers: Any = None) -> None:
            self.sent.append((topic, key, value, headers))

    engine = Engine()
    engine.upsert(parse_workflow({**WORKFLOW, "actions": WORKFLOW["actions"][:1]}))
    sender = CollectNow()
    runner, exporter, provider = _traced(engine, sender)
    rest = runner.handle_now(Record("p.events.orders", 0, 7, b"k", _event(), [], None))
    assert sender.sent == [], "nothing is sent before the awaitable runs"
    asyncio.run(cast(Coroutine[Any, Any, Any], rest))
    names = sorted(span.name for span in exporter.get_finished_spans())
    assert names == ["action send_email", "match", "process p.events.orders", "workflow confirm"]
    assert [topic for topic, *_ in sender.sent] == ["p.actions.email", "p.executions"]
    for _topic, _key, _value, headers in sender.sent:
        assert _header(headers, "traceparent").startswith("00-")
    provider.shutdown()
