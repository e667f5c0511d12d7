"""Workflows with memory end to end: real broker, real worker processes.

Throttle and dedupe windows are measured on event time, so the events carry chosen times and
the outcomes do not depend on how fast the machine is; delays and absence watches act on the
wall clock and are kept to seconds here.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from eventrules.kafka.clients import read_to_end
from integration.harness import Deployment, WorkerProcess, cloudevent, wait_until

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _event(type_: str, data: dict[str, Any], at: datetime, event_id: str | None = None) -> bytes:
    event = cloudevent(type_, data, event_id=event_id)
    event["time"] = at.isoformat()
    return orjson.dumps(event)


def _workflow(
    workflow_id: str, trigger: str | None, actions: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    definition = {
        "kind": "workflow",
        "id": workflow_id,
        "version": 1,
        "name": workflow_id,
        "created_by": "tests",
        "actions": actions,
        **extra,
    }
    if trigger is not None:
        definition["trigger"] = trigger
    return definition


def _state_partitions(worker: WorkerProcess) -> list[int]:
    body: dict[str, Any] = worker.get("/readyz").json()
    return list(body.get("state_partitions") or [])


def _wait_split(first: WorkerProcess, second: WorkerProcess) -> None:
    """Both workers ready, the state partitions and the event partitions shared between them
    (two groups that rebalance each in its own time: the state stream's split says nothing of
    the event stream's)."""

    def split() -> bool:
        try:
            one, two = _state_partitions(first), _state_partitions(second)
            mine, theirs = (set(w.get("/readyz").json()["assigned"]) for w in (first, second))
        except Exception:
            return False
        events_split = bool(mine) and bool(theirs) and not mine & theirs
        return events_split and bool(one) and bool(two) and len(one) + len(two) == 6

    wait_until(split, timeout=90, what="state partitions shared by two workers")
    first.wait_ready()
    second.wait_ready()


def test_throttle_and_dedupe_hold_across_two_workers_and_a_rebalance(
    deployment: Deployment,
) -> None:
    deployment.publish_definition(
        _workflow(
            "low-stock-throttled",
            "product.low_stock",
            [
                {
                    "type": "send_email",
                    "to": "admin@example.com",
                    "subject": "low {{ productId }}",
                    "body": "{{ productId }}",
                }
            ],
            throttle={"key": "{{ productId }}", "limit": 1, "per": "1h"},
        )
    )
    deployment.publish_definition(
        _workflow(
            "order-once",
            "order.created",
            [{"type": "create_task", "title": "order {{ orderId }}"}],
            dedupe={"key": "{{ orderId }}", "within": "24h"},
        )
    )
    first = deployment.start_worker()
    first.wait_ready()
    products = [f"p{n}" for n in range(12)]
    orders = [f"o{n}" for n in range(12)]

    def stock(minutes: int) -> None:
        for product in products:
            deployment.produce(
                "events.products",
                _event(
                    "product.low_stock",
                    {"productId": product, "stock": 1},
                    T0 + timedelta(minutes=minutes),
                ),
                key=product.encode(),
            )

    def order(hours: float, retry: int) -> None:
        # a producer retry: the same business event under a new CloudEvents id
        for order_id in orders:
            deployment.produce(
                "events.orders",
                _event(
                    "order.created",
                    {"orderId": order_id},
                    T0 + timedelta(hours=hours),
                    event_id=f"{order_id}-try{retry}",
                ),
                key=order_id.encode(),
            )

    stock(0)
    stock(10)
    order(0, 1)
    order(0.1, 2)
    deployment.read_json("actions.email", until=lambda r: len(r) >= len(products))
    deployment.read_json("actions.tasks", until=lambda r: len(r) >= len(orders))

    second = deployment.start_worker()
    _wait_split(first, second)
    stock(20)  # inside the window: throttled by whichever worker now holds the key
    stock(61)  # the window is over: one more email each
    order(5, 3)  # a duplicate within 24 hours
    order(25, 4)  # a day later: a new run

    emails = deployment.read_json("actions.email", until=lambda r: len(r) >= 2 * len(products))
    tasks = deployment.read_json("actions.tasks", until=lambda r: len(r) >= 2 * len(orders))
    # Each key's events are processed in order, so the last email of each product came after
    # its throttled event was decided: nothing more can follow.
    per_product = Counter(e["params"]["subject"].removeprefix("low ") for e in emails)
    assert per_product == dict.fromkeys(products, 2)
    assert sorted({e["event_id"] for e in tasks}) == sorted(
        [f"{o}-try1" for o in orders] + [f"{o}-try4" for o in orders]
    )
    assert len(tasks) == 2 * len(orders)
    # the second worker decided for keys whose state it restored from the changelog
    assert second.metric("eventrules_state_restored_records_total") > 0
    decisions = sum(
        worker.metric(
            "eventrules_state_decisions_total", workflow="low-stock-throttled", decision="throttled"
        )
        for worker in (first, second)
    )
    assert decisions == 2 * len(products)


def test_a_delayed_action_fires_once_on_the_next_owner_after_a_sigkill_never_early(
    deployment: Deployment,
) -> None:
    delay = 25
    deployment.publish_definition(
        _workflow(
            "review-request",
            "order.delivered",
            [
                {"type": "create_task", "title": "delivered {{ orderId }}"},
                {
                    "type": "send_email",
                    "to": "{{ email }}",
                    "subject": "review {{ orderId }}",
                    "body": "How was it?",
                    "delay": f"{delay}s",
                },
            ],
        )
    )
    env = {"EVENTRULES_SESSION_TIMEOUT_SECONDS": "6"}
    first = deployment.start_worker(**env)
    second = deployment.start_worker(**env)
    _wait_split(first, second)
    orders = [f"d{n}" for n in range(12)]
    delivered_at = datetime.now(UTC)
    for order_id in orders:
        deployment.produce(
            "events.orders",
            _event(
                "order.delivered",
                {"orderId": order_id, "email": f"{order_id}@example.com"},
                delivered_at,
            ),
            key=order_id.encode(),
        )
    runs = deployment.executions(until=lambda r: len(r) >= len(orders))
    assert {run["actions"][1]["status"] for run in runs} == {"delayed"}
    assert _everything("actions.email", deployment) == [], "the delay was not pending at the kill"
    first.kill()

    due = delivered_at + timedelta(seconds=delay)
    emails = _records("actions.email", deployment, count=len(orders), timeout=120)
    assert sorted(orjson.loads(value)["params"]["subject"] for value, _ in emails) == sorted(
        f"review {o}" for o in orders
    )
    for _, timestamp_ms in emails:
        assert datetime.fromtimestamp(timestamp_ms / 1000, UTC) >= due, "fired early"
    # exactly once: no second copy after the takeover either (the timers were replaced by
    # markers that they fired)
    timer_runs = deployment.executions(
        until=lambda r: sum(1 for e in r if e["triggered_by"] == "timer") >= len(orders)
    )
    fired = Counter(e["execution_id"] for e in timer_runs if e["triggered_by"] == "timer")
    assert set(fired.values()) == {1}
    assert len(fired) == len(orders)
    assert second.metric("eventrules_state_restored_records_total") > 0
    action_ids = [orjson.loads(v)["action_id"] for v in _everything("actions.email", deployment)]
    assert sorted(action_ids) == sorted(set(action_ids))
    assert len(action_ids) == len(orders)


def _everything(logical: str, deployment: Deployment) -> list[bytes]:
    """Every record value of a topic up to its current end."""
    config = {"bootstrap.servers": deployment.bootstrap}
    return [m.value() for m in read_to_end(config, deployment.topic(logical))]


def _records(
    logical: str, deployment: Deployment, *, count: int, timeout: float
) -> list[tuple[bytes, int]]:
    """Values and record timestamps of a topic, once it holds at least ``count``."""
    records = deployment.read(logical, until=lambda r: len(r) >= count, timeout=timeout)
    return [(r.value(), r.timestamp()[1]) for r in records]


def _repartition_partition(deployment: Deployment, key_part: str) -> int:
    """The state partition a watch went to (read back from the repartition topic)."""
    found: list[int] = []

    def seen(records: list[Any]) -> bool:
        found[:] = [
            r.partition() for r in records if r.key() and r.key().decode().endswith(key_part)
        ]
        return bool(found)

    deployment.read("state-repartition", until=seen, timeout=60)
    return found[0]


def test_absence_fires_without_the_payment_and_not_with_it_even_from_another_worker(
    deployment: Deployment,
) -> None:
    within = 20
    deployment.publish_definition(
        _workflow(
            "unpaid-order",
            None,
            [
                {
                    "type": "send_notification",
                    "user_id": "ops",
                    "title": "unpaid {{ orderId }}",
                    "message": "total {{ total }}",
                }
            ],
            absence={
                "after": "order.created",
                "expect": "payment.received",
                "match_on": "orderId",
                "within": f"{within}s",
            },
        )
    )
    first = deployment.start_worker()
    second = deployment.start_worker()
    _wait_split(first, second)
    started = datetime.now(UTC)

    def order(order_id: str) -> None:
        deployment.produce(
            "events.orders",
            _event("order.created", {"orderId": order_id, "total": 42}, started),
            key=order_id.encode(),
        )

    def pay(order_id: str, after: float, partition: int | None = None) -> None:
        value = _event(
            "payment.received", {"orderId": order_id}, started + timedelta(seconds=after)
        )
        deployment.produce("events.payments", value, key=order_id.encode(), partition=partition)

    order("paid-early")
    order("paid-late")
    pay("paid-early", 2)
    # The late payment is read by the worker that does NOT hold the watch's state partition,
    # so the answer crosses workers through the repartition topic.
    state_partition = _repartition_partition(deployment, "paid-late")
    other = second if state_partition in _state_partitions(first) else first
    payments = [
        int(item.rsplit(":", 1)[1])
        for item in other.get("/readyz").json()["assigned"]
        if item.startswith(deployment.topic("events.payments") + ":")
    ]
    assert payments, "the other worker reads no payments partition"
    wait_until(
        lambda: datetime.now(UTC) >= started + timedelta(seconds=within - 5),
        timeout=within + 10,
        what="just before the deadline",
    )
    pay("paid-late", within - 5, partition=payments[0])
    # The sentinel: created 5 s later, unpaid; once it fired every earlier deadline had passed.
    time.sleep(5)
    sentinel_at = datetime.now(UTC)
    deployment.produce(
        "events.orders",
        _event("order.created", {"orderId": "unpaid", "total": 7}, sentinel_at),
        key=b"unpaid",
    )
    notes = deployment.read_json(
        "actions.notifications",
        until=lambda r: any(n["params"]["title"] == "unpaid unpaid" for n in r),
        timeout=within + 60,
    )
    assert [n["params"] for n in notes] == [
        {"user_id": "ops", "title": "unpaid unpaid", "message": "total 7", "link": None}
    ]
    runs = deployment.executions(until=lambda r: len(r) >= 1)
    assert [(r["workflow_id"], r["triggered_by"], r["trigger_event_type"]) for r in runs] == [
        ("unpaid-order", "timer", "order.created")
    ]
    assert runs[0]["event"]["data"] == {"orderId": "unpaid", "total": 7}


def test_in_exactly_once_mode_state_outputs_and_timers_commit_together(
    deployment: Deployment,
) -> None:
    deployment.publish_definition(
        _workflow(
            "throttled-eos",
            "product.low_stock",
            [
                {
                    "type": "send_email",
                    "to": "ops@example.com",
                    "subject": "{{ productId }}",
                    "body": "low",
                },
                {"type": "create_task", "title": "recount {{ productId }}", "delay": "3s"},
            ],
            throttle={"key": "{{ productId }}", "limit": 1, "per": "1h"},
        )
    )
    worker = deployment.start_worker(EVENTRULES_PROCESSING_GUARANTEE="exactly_once")
    worker.wait_ready()
    now = datetime.now(UTC)
    for minutes in (0, 5, 61):
        deployment.produce(
            "events.products",
            _event("product.low_stock", {"productId": "p1"}, now + timedelta(minutes=minutes)),
            key=b"p1",
        )
    # read_committed (the harness's reader): only committed transactions are seen
    emails = deployment.read_json("actions.email", until=lambda r: len(r) >= 2)
    tasks = deployment.read_json("actions.tasks", until=lambda r: len(r) >= 1, timeout=60)
    assert [task["params"]["title"] for task in tasks] == ["recount p1"]
    assert len(emails) == 2

    def kinds(records: list[Any]) -> set[str]:
        return {orjson.loads(r.value())["value"]["kind"] for r in records if r.value() is not None}

    def throttles(records: list[Any]) -> int:
        return sum(1 for r in records if r.key().startswith(b"throttle"))

    # the two runs' throttle writes, the delay timer and the marker that it fired, committed
    changelog = deployment.read(
        "state-changelog",
        until=lambda r: {"throttle", "delay", "fired"} <= kinds(r) and throttles(r) >= 2,
    )
    assert throttles(changelog) == 2
    assert (
        worker.metric(
            "eventrules_state_decisions_total", workflow="throttled-eos", decision="throttled"
        )
        == 1
    )
