"""A worker: the config follower, the event stream, the state stream and its timers, the rule
request stream, the retry stream, the stats keeper, the scheduler, the lag reporter and the web
server, in one asyncio loop.

Workers with the same ``app_id`` form one consumer group and share the event partitions; every
worker holds the whole config table. This module is where the parts are wired together: each
is built after what it needs, and each is a :class:`~eventrules.runtime.service.Service`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from aiohttp import web

from eventrules.actions.webhook import WebhookExecutor
from eventrules.auth import TokenSet
from eventrules.definitions.gate import ConfigGate
from eventrules.definitions.signatures import ConfigVerifier
from eventrules.definitions.versions import VersionMarks
from eventrules.kafka.sender import KafkaSender
from eventrules.kafka.topics import load_topic_specs
from eventrules.limits import set_limits
from eventrules.metrics import Metrics
from eventrules.models.actions import ActionRegistry
from eventrules.models.workflows import parse_workflow
from eventrules.native import status as native_status
from eventrules.rules import RulesEngine, parse_rule
from eventrules.runtime.admission import EventAdmission, TickAuthenticator
from eventrules.runtime.config_follower import ConfigFollower
from eventrules.runtime.config_table import ConfigTable, DefinitionKind
from eventrules.runtime.deadletters import DeadLetterWriter
from eventrules.runtime.lag import LagReporter
from eventrules.runtime.retries import RETRY_TIERS, RetryHandler, RetryQueue, retry_due_at
from eventrules.runtime.rules_service import RuleRequestHandler
from eventrules.runtime.runners import new_runner, start_tracing_for
from eventrules.runtime.scheduler import Scheduler, schedules_for
from eventrules.runtime.service import Service
from eventrules.runtime.state.processor import StateProcessor
from eventrules.runtime.state.router import StateRouter
from eventrules.runtime.stats_process import StatsProcess
from eventrules.runtime.stream import StreamLoop, stream_sender
from eventrules.runtime.web import check_exposure, make_web_app
from eventrules.settings import Settings
from eventrules.workflows.catalog import TriggerCatalog
from eventrules.workflows.engine import Engine

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["Worker"]

log = logging.getLogger(__name__)
# the youngest generation's collection threshold once the definitions are loaded (_freeze_config)
GC_YOUNG_THRESHOLD = 20_000

# Services stopped and awaited in this order at shutdown (the lag reporter only reports).
_SHUTDOWN_ORDER = (
    "event-stream",
    "state-stream",
    "state-timers",
    "rule-requests",
    "retries",
    "workflow-stats",
    "scheduler",
    "config-follower",
    "lag-reporter",
)


def _refresh_gauges(
    metrics: Metrics, engine: Engine, rules: RulesEngine, ready: asyncio.Event
) -> None:
    metrics.ready.set(1 if ready.is_set() else 0)
    for kind, definitions in (("workflow", engine.workflows()), ("rule", rules.rules())):
        enabled = sum(1 for definition in definitions if definition.enabled)
        metrics.definitions_loaded.labels(kind, "true").set(enabled)
        metrics.definitions_loaded.labels(kind, "false").set(len(definitions) - enabled)


@dataclass
class Worker:
    settings: Settings
    metrics: Metrics
    engine: Engine
    rules: RulesEngine
    table: ConfigTable
    follower: ConfigFollower
    stream: StreamLoop
    state: StateProcessor
    stats: StatsProcess
    services: dict[str, Service]
    webhook_client: httpx.AsyncClient
    # the streams /healthz watches for progress, by the name of their metric label
    streams: dict[str, StreamLoop] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    tracer_provider: TracerProvider | None = None

    @classmethod
    def build(cls, settings: Settings | None = None, *, metrics: Metrics | None = None) -> Worker:
        settings = settings or Settings()
        check_exposure(
            settings.web_host,
            TokenSet(settings.http_tokens),
            allow_unauthenticated=settings.web_allow_unauthenticated,
        )
        set_limits(settings.limits())
        metrics = metrics or Metrics.create()
        specs = load_topic_specs(settings.resolved_topics_dir(), prefix=settings.topic_prefix)
        topics = settings.topics
        client = settings.kafka_client_config()
        exactly_once = settings.processing_guarantee == "exactly_once"
        session_ms = int(settings.session_timeout_seconds * 1000)

        engine = Engine(
            TriggerCatalog.load(*settings.extra_trigger_files), timezone=settings.zoneinfo()
        )
        rules = RulesEngine(timezone=settings.zoneinfo())
        registry = ActionRegistry.from_entry_points()
        table = ConfigTable(
            {
                "workflow": DefinitionKind(
                    functools.partial(parse_workflow, registry=registry), engine
                ),
                "rule": DefinitionKind(parse_rule, rules),
            },
            gate=ConfigGate(
                topics.config,
                ConfigVerifier(settings.config_trusted_keys),
                VersionMarks(max_step=settings.config_max_version_step),
            ),
            metrics=metrics,
        )
        ready = asyncio.Event()
        refresh_gauges = functools.partial(_refresh_gauges, metrics, engine, rules, ready)
        ticks = None
        if settings.scheduler_secret is not None:
            ticks = TickAuthenticator(settings.scheduler_secret.get_secret_value())
        else:
            # INFO, not WARNING: the default, like unsigned config (README, "Known limits")
            log.info(
                "EVENTRULES_SCHEDULER_SECRET is not set: schedule ticks are not authenticated"
                " and anyone who can write %s can fire scheduled workflows",
                topics("events.scheduled"),
            )
        # Exactly one worker of the app leads the scheduler (see runtime/scheduler.py); it also
        # guards the config topic (see runtime/config_follower.py).
        scheduler = Scheduler(
            client,
            group_id=f"{settings.app_id}-scheduler",
            state_topic=topics("scheduler-state"),
            ticks_topic=topics("events.scheduled"),
            schedules=lambda: schedules_for(engine.workflows()),
            ready=ready,
            timezone=settings.zoneinfo(),
            session_timeout_ms=session_ms,
            ticks=ticks,
        )
        follower = ConfigFollower(
            table,
            topic=topics.config,
            client_config=client,
            ready=ready,
            on_ready=refresh_gauges,
            leads=lambda: scheduler.leader,
            on_restore=lambda kind: metrics.config_restores.labels(kind).inc(),
        )

        tracer_provider, tracer = start_tracing_for(settings)
        webhook_client = WebhookExecutor.new_client(settings.webhook_ca_location)
        webhooks = WebhookExecutor.from_settings(
            settings,
            webhook_client,
            on_attempt=lambda outcome, seconds: metrics.webhook_latency.labels(outcome).observe(
                seconds
            ),
            tracer=tracer,
        )

        # Each stream's outputs go through its own producer, built first so that what its
        # handler sends joins the stream's batches (flushed before the commit, or inside the
        # transaction).
        def dead_letters(sender: KafkaSender) -> DeadLetterWriter:
            return DeadLetterWriter(
                topics.dlq, sender, metrics, max_bytes=settings.dead_letter_max_bytes
            )

        def incidents(stream: str) -> Callable[[str], None]:
            return lambda kind: metrics.child(metrics.stream_incidents, stream, kind).inc()

        stream_options: dict[str, Any] = {
            "ready": ready,
            "exactly_once": exactly_once,
            "auto_offset_reset": settings.auto_offset_reset,
            "session_timeout_ms": session_ms,
            "crash_window": settings.crash_guard_window,
            "crash_limit": settings.crash_guard_limit,
            "output_attempts": settings.output_attempts,
        }
        events_out = stream_sender(client, settings.app_id, exactly_once)
        repartition = topics("state-repartition")
        runner = new_runner(
            engine,
            tracer,
            topics=topics,
            sender=events_out,
            metrics=metrics,
            webhooks=webhooks,
            dead_letters=dead_letters(events_out),
            max_event_bytes=settings.max_event_bytes,
            retries=RetryQueue(topics, events_out),
            inline_budget_seconds=settings.webhook_inline_budget_seconds,
            admit=EventAdmission(engine.catalog, topics, ticks),
            state=StateRouter(repartition, events_out),
            copy_event=settings.execution_event == "full",
        )
        stream = StreamLoop(
            client,
            settings.app_id,
            [spec.topic for spec in specs if spec.name.startswith("events.")],
            handle=runner.handle,
            handle_now=runner.handle_now,
            output=events_out,
            on_batch_start=runner.begin_batch,
            on_batch_end=metrics.apply_counts_due,
            commit_interval_ms=int(settings.commit_interval_seconds * 1000),
            dead_letters=dead_letters(events_out),
            on_event=incidents("events"),
            **stream_options,
        )
        # The state stream: throttle, dedupe, absence and delayed actions (runtime/state).
        state_group = f"{settings.app_id}-state"
        state_out = stream_sender(client, state_group, exactly_once)
        state_dead_letters = dead_letters(state_out)
        # runs a timer or a gate starts: delayed webhooks that fail wait on the retry tiers too
        state_runner = new_runner(
            engine,
            tracer,
            topics=topics,
            sender=state_out,
            metrics=metrics,
            webhooks=webhooks,
            dead_letters=state_dead_letters,
            retries=RetryQueue(topics, state_out),
            inline_budget_seconds=settings.webhook_inline_budget_seconds,
            state=StateRouter(repartition, state_out),
        )
        state = StateProcessor(
            client_config=client,
            repartition_topic=repartition,
            changelog_topic=topics("state-changelog"),
            state_dir=settings.state_dir / settings.app_id if settings.state_dir else None,
            runner=state_runner,
            router=StateRouter(repartition, state_out),
            sender=state_out,
            dead_letters=state_dead_letters,
            metrics=metrics,
            grace_seconds=settings.state_timer_grace_seconds,
        )
        state_stream = StreamLoop(
            client,
            state_group,
            [repartition],
            handle=state.handle,
            output=state_out,
            listener=state,
            on_batch_start=state_runner.begin_batch,
            on_batch_end=metrics.apply_counts_due,
            dead_letters=state_dead_letters,
            on_event=incidents("state"),
            **stream_options,
        )
        rules_group = f"{settings.app_id}-rules"
        rules_out = stream_sender(client, rules_group, exactly_once)
        rule_requests = StreamLoop(
            client,
            rules_group,
            [topics("rules.requests")],
            handle=RuleRequestHandler(
                rules,
                topics=topics,
                sender=rules_out,
                metrics=metrics,
                dead_letter=dead_letters(rules_out),
                reply_topics=settings.reply_topic_patterns(),
            ),
            output=rules_out,
            dead_letters=dead_letters(rules_out),
            on_event=incidents("rules"),
            **stream_options,
        )
        retries_group = f"{settings.app_id}-retries"
        retries_out = stream_sender(client, retries_group, exactly_once)
        retry_stream = StreamLoop(
            client,
            retries_group,
            [topics(tier.name) for tier in RETRY_TIERS],
            handle=RetryHandler(
                webhooks,
                queue=RetryQueue(topics, retries_out),
                topics=topics,
                sender=retries_out,
                dead_letters=dead_letters(retries_out),
                metrics=metrics,
                attempt_timeout_max=settings.retry_attempt_timeout_seconds,
            ),
            output=retries_out,
            dead_letters=dead_letters(retries_out),
            on_event=incidents("retries"),
            due_at=retry_due_at,
            concurrency=settings.retry_concurrency,
            batch_size=4 * settings.retry_concurrency,
            **stream_options,
        )
        stats = StatsProcess(
            client,
            f"{settings.app_id}-stats",
            topics.executions,
            topics("workflow-stats"),
            session_timeout_ms=session_ms,
            on_event=incidents("stats-keeper"),
        )
        services: dict[str, Service] = {
            "config-follower": follower,
            "event-stream": stream,
            "state-stream": state_stream,
            "state-timers": state,
            "rule-requests": rule_requests,
            "retries": retry_stream,
            "workflow-stats": stats,
            "scheduler": scheduler,
            "lag-reporter": LagReporter(
                stream, metrics, interval=settings.lag_interval_seconds, refresh=refresh_gauges
            ),
        }
        return cls(
            settings,
            metrics,
            engine,
            rules,
            table,
            follower,
            stream,
            state,
            stats,
            services,
            webhook_client,
            streams={
                "events": stream,
                "state": state_stream,
                "rules": rule_requests,
                "retries": retry_stream,
            },
            tracer_provider=tracer_provider,
        )

    # What the web views ask (runtime.web.WorkerView).

    def alive(self) -> bool:
        """False once any service has died, or a stream has had input waiting without making
        progress for ``stall_seconds``: the liveness probe restarts us."""
        stalled = self.stalled()
        return not stalled and all(not task.done() for task in self.tasks)

    def stalled(self) -> list[str]:
        """The streams stuck with input waiting (and their gauge set to match)."""
        found = []
        for name, stream in self.streams.items():
            stuck = stream.stalled(self.settings.stall_seconds)
            self.metrics.stream_stalled.labels(name).set(1 if stuck else 0)
            if stuck:
                found.append(name)
        return found

    def ready(self) -> bool:
        return self.follower.ready.is_set() and self.state.ready

    def readiness(self) -> dict[str, Any]:
        return {
            "workflows": len(self.engine),
            "rules": len(self.rules),
            "config_records": self.table.applied,
            "assigned": sorted(f"{topic}:{partition}" for topic, partition in self.stream.assigned),
            "state_partitions": sorted(self.state.stores),
            "state_restoring": sorted(self.state.restoring),
            # the event path's build (eventrules.native): compiled, or why it runs from source
            "native": native_status().describe(),
        }

    def workflow_stats(self) -> dict[str, dict[str, Any]]:
        return self.stats.stats

    def refresh_gauges(self) -> None:
        _refresh_gauges(self.metrics, self.engine, self.rules, self.follower.ready)

    async def _freeze_config(self) -> None:
        # The loaded definitions live as long as the worker: moved out of the collector's
        # reach, full collections stop rescanning them (they paused the stream for ~60 ms).
        await self.follower.ready.wait()
        gc.freeze()
        # A batch keeps what it built until it ends (records, their outputs: some 20 tracked
        # objects per event). At CPython's 700 the youngest generation was collected every
        # ~30 events, rescanning the batch so far each time (6% of the stream's thread); at
        # GC_YOUNG_THRESHOLD a 500-record batch rarely triggers one, and what it built is freed
        # by reference counting when it ends. Cycles wait a little longer, nothing more.
        _, middle, old = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)

    async def run(self) -> None:
        """Run until SIGTERM/SIGINT, then stop consuming, flush and leave the groups."""
        tokens = TokenSet(self.settings.http_tokens)
        web_runner = web.AppRunner(make_web_app(self, tokens), access_log=None)
        await web_runner.setup()
        await web.TCPSite(web_runner, self.settings.web_host, self.settings.web_port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # Each Kafka loop blocks a thread in poll/flush/commit; the default pool (cores + 4)
        # is smaller than the number of loops and starved them.
        loop.set_default_executor(ThreadPoolExecutor(max_workers=32, thread_name_prefix="kafka"))
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        self.tasks = [
            asyncio.create_task(service.run(), name=name) for name, service in self.services.items()
        ]
        log.info(
            "worker %s started; web on %s:%s; event path: %s",
            self.settings.app_id,
            self.settings.web_host,
            self.settings.web_port,
            native_status().describe(),
        )
        # Not a long-running task: it ends once the table is loaded (see alive()).
        freezer = asyncio.create_task(self._freeze_config(), name="gc-freeze")
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopped, *self.tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = [task for task in done if task is not stopped and task.exception() is not None]
        for task in failed:
            log.error("task %s died", task.get_name(), exc_info=task.exception())
        for name in _SHUTDOWN_ORDER:
            self.services[name].stop()
        await asyncio.wait(self.tasks, timeout=30)
        for task in self.tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self.tasks, return_exceptions=True)
        stopped.cancel()
        freezer.cancel()
        await self.webhook_client.aclose()
        await web_runner.cleanup()
        if self.tracer_provider is not None:
            # exports the spans still batched
            await asyncio.to_thread(self.tracer_provider.shutdown)
        if failed:
            raise SystemExit(1)
