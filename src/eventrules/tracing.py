"""OpenTelemetry tracing: off by default, the official SDK when on.

``EVENTRULES_OTEL_ENABLED=true`` turns it on (``OTEL_SDK_DISABLED=true`` keeps it off). The SDK
reads the standard variables itself: ``OTEL_SERVICE_NAME`` (default ``eventrules``),
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``/``_ARG``, ``OTEL_EXPORTER_OTLP_ENDPOINT``
(or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), ``_HEADERS``, ``_TIMEOUT``, ``OTEL_BSP_*``.
``OTEL_TRACES_EXPORTER`` picks the exporters (comma separated): ``otlp`` (the default: OTLP over
HTTP/protobuf), ``console`` (JSON spans on stdout) or ``none``.

Trace context travels as W3C ``traceparent``/``tracestate``: read from an event record's Kafka
headers (``traceparent``, or the CloudEvents binary-mode ``ce_traceparent``), written into the
headers of what the worker produces and sends (action messages, execution records, webhook
requests). This module holds the setup and the propagation helpers; the spans of a run are made
by ``runtime/traced_runner.py`` and ``actions/webhook.py``.

Nothing here is imported on the hot path when tracing is off: the worker then uses the plain
runner, and the webhook executor has no tracer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from eventrules.errors import ConfigurationError

__all__ = [
    "CLIENT",
    "TRACER_NAME",
    "TRACE_HEADERS",
    "context_from_headers",
    "http_client_attributes",
    "kafka_trace_headers",
    "record_outcome",
    "start_tracing",
    "trace_headers",
    "traceparent",
    "without_trace_headers",
]

TRACER_NAME = "eventrules"
TRACE_HEADERS = ("traceparent", "tracestate")
CLIENT = SpanKind.CLIENT
_PROPAGATOR = TraceContextTextMapPropagator()
# Kafka header names that carry the producer's context, the first one found wins.
_CONTEXT_HEADERS = {"traceparent": "traceparent", "ce_traceparent": "traceparent"}
_STATE_HEADERS = {"tracestate": "tracestate", "ce_tracestate": "tracestate"}


def _exporters(names: str) -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    for name in (part.strip().lower() for part in names.split(",")):
        if name == "otlp":
            # protobuf and requests load only for the exporter in use
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter,
            )

            exporters.append(OTLPSpanExporter())
        elif name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name not in ("none", ""):
            raise ConfigurationError(
                f"OTEL_TRACES_EXPORTER {name!r} is not supported: use otlp, console or none"
            )
    return exporters


def start_tracing(
    enabled: bool, *, exporters: Sequence[SpanExporter] | None = None, batch: bool = True
) -> TracerProvider | None:
    """The SDK's tracer provider exporting to ``exporters`` (default: ``OTEL_TRACES_EXPORTER``),
    or None when tracing is off. The caller shuts it down (which flushes the last spans).

    Not installed as the global provider: the worker hands its tracer to what it wires, so a
    test can run several providers in one process."""
    if not enabled or os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if exporters is None:
        exporters = _exporters(os.environ.get("OTEL_TRACES_EXPORTER", "otlp"))
    service = os.environ.get("OTEL_SERVICE_NAME") or "eventrules"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    for exporter in exporters:
        # batching exports from a background thread; the event loop never waits on the network
        provider.add_span_processor(
            BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        )
    return provider


def context_from_headers(headers: Sequence[tuple[str, bytes | None]] | None) -> Context | None:
    """The producer's trace context carried by a record's headers, or None."""
    carrier: dict[str, str] = {}
    for name, raw in headers or ():
        if raw is None:
            continue
        key = name.lower()
        target = _CONTEXT_HEADERS.get(key) or _STATE_HEADERS.get(key)
        if target is not None and target not in carrier:
            try:
                carrier[target] = raw.decode("ascii")
            except UnicodeDecodeError:
                continue  # not a W3C value: no parent, not a poison event
    if "traceparent" not in carrier:
        return None
    context = _PROPAGATOR.extract(carrier)
    if not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return context


def trace_headers(carrier: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """``traceparent`` (and ``tracestate``) of the current span, added to ``carrier``."""
    if carrier is None:
        carrier = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def kafka_trace_headers() -> list[tuple[str, bytes]]:
    """The current span's context as Kafka record headers."""
    return [(name, value.encode()) for name, value in trace_headers().items()]


def traceparent(carrier: Mapping[str, str] | None = None) -> str | None:
    """The current span's ``traceparent``, or None outside a recorded span."""
    return (carrier if carrier is not None else trace_headers()).get("traceparent")


def without_trace_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` less any trace context (whatever its case), before ours is added."""
    return {name: value for name, value in headers.items() if name.lower() not in TRACE_HEADERS}


def http_client_attributes(
    method: str, url: httpx.URL, *, resend_count: int, action_id: str
) -> dict[str, Any]:
    """The attributes of a webhook attempt's span (HTTP client semantic conventions); no query
    string, which may hold tokens rendered from event data."""
    return {
        "http.request.method": method,
        "server.address": url.host,
        "server.port": url.port or (443 if url.scheme == "https" else 80),
        "url.scheme": url.scheme,
        "url.path": url.path,
        "http.request.resend_count": resend_count,
        "eventrules.action_id": action_id,
    }


def record_outcome(span: Span, outcome: str, status_code: int | None, detail: str) -> None:
    """A webhook attempt's result on its span: the status code, and an error unless success."""
    if status_code is not None:
        span.set_attribute("http.response.status_code", status_code)
    if outcome != "success":
        span.set_attribute("error.type", outcome)
        span.set_status(Status(StatusCode.ERROR, detail or outcome))
