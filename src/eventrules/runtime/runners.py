"""Which workflow runner a process uses: the plain one, or the traced one when tracing is on.

OpenTelemetry is imported only when tracing is on, so the CLI and an untraced worker neither
load it nor pay for spans on the event path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventrules.runtime.runner import WorkflowRunner
from eventrules.settings import Settings
from eventrules.workflows.engine import Engine

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

__all__ = ["new_runner", "start_tracing_for"]


def start_tracing_for(settings: Settings) -> tuple[TracerProvider | None, Tracer | None]:
    """The tracer provider (to shut down at the end) and its tracer, or ``(None, None)``."""
    if not settings.otel_enabled:
        return None, None
    from eventrules.tracing import TRACER_NAME, start_tracing  # noqa: PLC0415 - see above

    provider = start_tracing(True)
    return provider, None if provider is None else provider.get_tracer(TRACER_NAME)


def new_runner(engine: Engine, tracer: Tracer | None, **options: Any) -> WorkflowRunner:
    """A :class:`WorkflowRunner` over ``options``, traced when given a tracer."""
    if tracer is None:
        return WorkflowRunner(engine, **options)
    from eventrules.runtime.traced_runner import TracedWorkflowRunner  # noqa: PLC0415

    return TracedWorkflowRunner(engine, tracer=tracer, **options)
