"""A worker: the config follower, the event stream, the rule request stream, the stats keeper and
the web server, in one asyncio loop.

Workers with the same ``app_id`` form one consumer group and share the event partitions; every
worker holds the whole config table.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from aiohttp import web
from confluent_kafka import TopicPartition

from eventrules.actions.webhook import WebhookExecutor
from eventrules.kafka.topics import load_topic_specs
from eventrules.metrics import Metrics
from eventrules.models.actions import ActionRegistry
from eventrules.rules import RulesEngine
from eventrules.runtime.config_follower import ConfigFollower
from eventrules.runtime.config_table import ConfigTable
from eventrules.runtime.rules_service import RuleRequestHandler
from eventrules.runtime.runner import WorkflowRunner
from eventrules.runtime.scheduler import Scheduler, schedules_for
from eventrules.runtime.stats_process import StatsProcess
from eventrules.runtime.stream import StreamLoop
from eventrules.runtime.web import make_web_app
from eventrules.settings import Settings, TopicNames
from eventrules.workflows.catalog import TriggerCatalog
from eventrules.workflows.engine import Engine

__all__ = ["Worker"]

log = logging.getLogger(__name__)


def _webhooks(settings: Settings, metrics: Metrics, client: httpx.AsyncClient) -> WebhookExecutor:
    def on_attempt(outcome: str, seconds: float) -> None:
        metrics.webhook_latency.labels(outcome).observe(seconds)

    return WebhookExecutor(
        client,
        secrets={
            name: value.get_secret_value() for name, value in settings.webhook_secrets.items()
        },
        allow_list=settings.webhook_allow_list,
        on_attempt=on_attempt,
    )


@dataclass
class Worker:
    settings: Settings
    metrics: Metrics
    engine: Engine
    rules: RulesEngine
    table: ConfigTable
    follower: ConfigFollower
    runner: WorkflowRunner
    stream: StreamLoop
    rule_requests: StreamLoop
    stats: StatsProcess
    scheduler: Scheduler
    webhook_client: httpx.AsyncClient
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings | None = None, *, metrics: Metrics | None = None) -> Worker:
        settings = settings or Settings()
        metrics = metrics or Metrics.create()
        specs = load_topic_specs(settings.resolved_topics_dir(), prefix=settings.topic_prefix)
        topics = TopicNames(settings.topic_prefix)
        client = settings.kafka_client_config()

        engine = Engine(
            TriggerCatalog.load(*settings.extra_trigger_files), timezone=settings.zoneinfo()
        )
        rules = RulesEngine(timezone=settings.zoneinfo())
        table = ConfigTable(
            engine,
            metrics=metrics,
            registry=ActionRegistry.from_entry_points(),
            extra_kinds={"rule": rules.apply_config},
        )
        follower = ConfigFollower(table, topic=topics.config, client_config=client)
        ready = follower.ready
        exactly_once = settings.processing_guarantee == "exactly_once"
        session_ms = int(settings.session_timeout_seconds * 1000)
        # trust_env=False: an environment proxy must not carry webhook traffic past the SSRF guard.
        webhook_client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        webhooks = _webhooks(settings, metrics, webhook_client)

        # The runner's sender is the stream's producer, so outputs join the stream's batches
        # (flushed before the commit, or inside the transaction).
        stream = StreamLoop(
            client,
            settings.app_id,
            [spec.topic for spec in specs if spec.name.startswith("events.")],
            # the runner is built after the stream whose producer it sends through
            handle=lambda record: runner.handle(record),  # noqa: PLW0108
            on_batch_end=metrics.apply_counts,
            commit_interval_ms=int(settings.commit_interval_seconds * 1000),
            ready=ready,
            exactly_once=exactly_once,
            auto_offset_reset=settings.auto_offset_reset,
            session_timeout_ms=session_ms,
        )
        runner = WorkflowRunner(
            engine,
            topics=topics,
            sender=stream.sender,
            metrics=metrics,
            webhooks=webhooks,
            max_event_bytes=settings.max_event_bytes,
        )
        rule_requests = StreamLoop(
            client,
            f"{settings.app_id}-rules",
            [topics("rules.requests")],
            handle=lambda record: handler(record),  # noqa: PLW0108 - handler is built below
            ready=ready,
            exactly_once=exactly_once,
            auto_offset_reset=settings.auto_offset_reset,
            session_timeout_ms=session_ms,
        )
        handler = RuleRequestHandler(
            rules,
            topics=topics,
            sender=rule_requests.sender,
            metrics=metrics,
            dead_letter=WorkflowRunner(
                engine, topics=topics, sender=rule_requests.sender, metrics=metrics
            ).dead_letter,
        )
        stats = StatsProcess(
            client,
            f"{settings.app_id}-stats",
            topics.executions,
            topics("workflow-stats"),
            session_timeout_ms=session_ms,
        )
        # Exactly one worker of the app leads the scheduler (see runtime/scheduler.py).
        scheduler = Scheduler(
            client,
            group_id=f"{settings.app_id}-scheduler",
            state_topic=topics("scheduler-state"),
            ticks_topic=topics("events.scheduled"),
            schedules=lambda: schedules_for(engine.workflows()),
            ready=ready,
            timezone=settings.zoneinfo(),
            session_timeout_ms=session_ms,
        )
        return cls(
            settings,
            metrics,
            engine,
            rules,
            table,
            follower,
            runner,
            stream,
            rule_requests,
            stats,
            scheduler,
            webhook_client,
        )

    def alive(self) -> bool:
        """False once any long-running task has died: the liveness probe restarts us."""
        return all(not task.done() for task in self.tasks)

    def refresh_gauges(self) -> None:
        self.metrics.ready.set(1 if self.follower.ready.is_set() else 0)
        self.table.refresh_gauges()
        rules = self.rules.rules()
        enabled = sum(1 for rule in rules if rule.enabled)
        self.metrics.definitions_loaded.labels("rule", "true").set(enabled)
        self.metrics.definitions_loaded.labels("rule", "false").set(len(rules) - enabled)

    async def _freeze_config(self) -> None:
        # The loaded definitions live as long as the worker: moved out of the collector's
        # reach, full collections stop rescanning them (they paused the stream for ~60 ms).
        await self.follower.ready.wait()
        gc.freeze()

    async def _report_lag(self) -> None:
        while True:
            await asyncio.sleep(self.settings.lag_interval_seconds)
            self.refresh_gauges()
            for (topic, partition), last in list(self.stream.last_offsets.items()):
                if (topic, partition) not in self.stream.assigned:
                    # Moved to another worker: stop reporting a lag that is no longer ours.
                    with contextlib.suppress(KeyError):
                        self.metrics.consumer_lag.remove(topic, str(partition))
                    del self.stream.last_offsets[(topic, partition)]
                    continue
                # The high watermark cached from the last fetch response: asking the broker
                # (cached=False) blocked the stream's consumer for seconds at a time.
                # (None or a negative offset before the first fetch of the partition.)
                watermarks: tuple[int, int] | None = self.stream.consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), cached=True
                )
                if watermarks is None or watermarks[1] < 0:
                    continue
                high = watermarks[1]
                self.metrics.consumer_lag.labels(topic, str(partition)).set(max(0, high - last - 1))

    async def run(self) -> None:
        """Run until SIGTERM/SIGINT, then stop consuming, flush and leave the groups."""
        web_runner = web.AppRunner(make_web_app(self), access_log=None)
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
            asyncio.create_task(self.follower.run(), name="config-follower"),
            asyncio.create_task(self.stream.run(), name="event-stream"),
            asyncio.create_task(self.rule_requests.run(), name="rule-requests"),
            asyncio.create_task(self.stats.run(), name="workflow-stats"),
            asyncio.create_task(self.scheduler.run(), name="scheduler"),
            asyncio.create_task(self._report_lag(), name="lag-reporter"),
        ]
        log.info(
            "worker %s started; web on %s:%s",
            self.settings.app_id,
            self.settings.web_host,
            self.settings.web_port,
        )
        # Not a long-running task: it ends once the table is loaded (see alive()).
        freezer = asyncio.create_task(self._freeze_config(), name="gc-freeze")
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopped, *self.tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = [task for task in done if task is not stopped and task.exception() is not None]
        for task in failed:
            log.error("task %s died", task.get_name(), exc_info=task.exception())
        for part in (self.stream, self.rule_requests, self.stats, self.scheduler, self.follower):
            part.stop()
        # The lag reporter only sleeps and reports: it is cancelled, not awaited.
        await asyncio.wait([t for t in self.tasks if t.get_name() != "lag-reporter"], timeout=30)
        for task in self.tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self.tasks, return_exceptions=True)
        stopped.cancel()
        freezer.cancel()
        await self.webhook_client.aclose()
        await web_runner.cleanup()
        if failed:
            raise SystemExit(1)
