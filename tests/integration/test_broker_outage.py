"""A broker that goes away and comes back: the worker keeps running and loses nothing.

Runs its own broker (the session broker is shared with every other test), stops it while a
worker is consuming, produces through the outage, and starts it again on the same data.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventrules.kafka.localbroker import LocalBroker
from integration.harness import REPO_ROOT, Deployment, free_port, ids_of, order_workflow


@contextlib.contextmanager
def private_broker(tmp_path: Path) -> Iterator[tuple[LocalBroker, Deployment]]:
    """A broker of the test's own (to stop and start) with a deployment on it."""
    broker = LocalBroker(
        port=free_port(),
        controller_port=free_port(),
        data_dir=tmp_path / "kafka",
        pom=REPO_ROOT / "kafka" / "pom.xml",
    )
    broker.start()
    deployment = Deployment(broker.bootstrap_servers, tmp_path)
    try:
        yield broker, deployment
    finally:
        deployment.close()
        broker.stop()


def test_a_broker_outage_loses_no_execution_and_the_worker_keeps_running(tmp_path: Path) -> None:
    with private_broker(tmp_path) as (broker, deployment):
        deployment.publish_definition(order_workflow("outage-orders"))
        worker = deployment.start_worker()
        worker.wait_ready()
        before = [f"before-{n}" for n in range(30)]
        deployment.produce_orders(before, flush=False)
        deployment.executions(until=lambda f: set(before) <= set(ids_of(f)), timeout=60)

        broker.stop()
        # Upstream keeps publishing: its producer holds the events until the broker is back.
        during = [f"during-{n}" for n in range(30)]
        deployment.produce_orders(during, flush=False)
        time.sleep(5)
        assert worker.process is not None
        assert worker.process.poll() is None, worker.log_tail()
        # the answer is under test, not its speed (a loaded machine can take seconds)
        assert worker.get("/healthz", timeout=30).status_code == 200

        broker.start()
        after = [f"after-{n}" for n in range(30)]
        deployment.produce_orders(after, flush=False)
        assert deployment._producer.flush(60) == 0
        wanted = set(before + during + after)
        executions = deployment.executions(until=lambda f: wanted <= set(ids_of(f)), timeout=120)
        assert set(ids_of(executions)) == wanted
        assert worker.get("/healthz", timeout=30).status_code == 200
        assert worker.metric("eventrules_ready") == 1


@pytest.mark.parametrize("outage_seconds", [10, 60])
def test_exactly_once_resumes_by_itself_after_an_outage_and_runs_each_event_once(
    tmp_path: Path, outage_seconds: int
) -> None:
    with private_broker(tmp_path) as (broker, deployment):
        deployment.publish_definition(order_workflow("eos-orders"))
        worker = deployment.start_worker(EVENTRULES_PROCESSING_GUARANTEE="exactly_once")
        worker.wait_ready()
        before = [f"before-{n}" for n in range(500)]
        deployment.produce_orders(before, flush=False)
        deployment.executions(until=lambda f: len(set(ids_of(f))) >= 50, timeout=60)

        broker.stop()  # mid-stream: transactions are open or committing
        during = [f"during-{n}" for n in range(30)]
        deployment.produce_orders(during, flush=False)
        time.sleep(outage_seconds)
        assert worker.process is not None
        assert worker.process.poll() is None, worker.log_tail()

        broker.start()
        after = [f"after-{n}" for n in range(30)]
        deployment.produce_orders(after, flush=False)
        assert deployment._producer.flush(60) == 0
        wanted = set(before + during + after)
        executions = deployment.executions(until=lambda f: wanted <= set(ids_of(f)), timeout=120)
        counts = Counter(ids_of(executions))
        assert set(counts) == wanted
        assert [event for event, n in counts.items() if n > 1] == [], "each event exactly once"
        assert worker.process.poll() is None, worker.log_tail()
        assert worker.get("/healthz", timeout=30).status_code == 200
