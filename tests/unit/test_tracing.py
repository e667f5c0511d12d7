"""Tracing setup: off unless enabled, exporters named by OTEL_TRACES_EXPORTER."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from eventrules.errors import ConfigurationError
from eventrules.metrics import Metrics
from eventrules.runtime.runner import WorkflowRunner
from eventrules.runtime.runners import new_runner, start_tracing_for
from eventrules.runtime.traced_runner import TracedWorkflowRunner
from eventrules.settings import Settings, TopicNames
from eventrules.tracing import context_from_headers, start_tracing, without_trace_headers
from eventrules.workflows.engine import Engine


def _exporters(provider: object) -> list[type]:
    processors = provider._active_span_processor._span_processors  # type: ignore[attr-defined]
    return [type(p.span_exporter) for p in processors]


def test_off_unless_enabled_and_not_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    assert start_tracing(False) is None
    assert start_tracing_for(Settings()) == (None, None)
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert start_tracing(True) is None


def test_exporters_come_from_the_standard_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "orders-rules")
    provider = start_tracing(True)
    assert provider is not None
    assert _exporters(provider) == [OTLPSpanExporter]
    assert provider.resource.attributes["service.name"] == "orders-rules"
    provider.shutdown()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console, none")
    provider = start_tracing(True)
    assert provider is not None
    assert _exporters(provider) == [ConsoleSpanExporter]
    provider.shutdown()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(ConfigurationError, match="'zipkin' is not supported"):
        start_tracing(True)


def test_the_worker_runs_the_plain_runner_unless_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    options = {"topics": TopicNames("p."), "sender": object(), "metrics": Metrics.create()}
    assert type(new_runner(Engine(), None, **options)) is WorkflowRunner
    monkeypatch.setenv("EVENTRULES_OTEL_ENABLED", "true")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    provider, tracer = start_tracing_for(Settings())
    assert provider is not None
    assert isinstance(new_runner(Engine(), tracer, **options), TracedWorkflowRunner)
    provider.shutdown()


def test_context_headers_are_read_case_insensitively_and_replaced_whatever_their_case() -> None:
    value = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert context_from_headers([("TraceParent", value)]) is not None
    assert context_from_headers([("traceparent", None)]) is None
    kept = without_trace_headers({"TraceParent": "x", "TRACESTATE": "y", "X-Id": "1"})
    assert kept == {"X-Id": "1"}
