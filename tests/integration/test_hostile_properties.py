"""Hostile input, generated: hypothesis draws events (structured and binary CloudEvents mode),
rule requests and config definitions, hostile ones interleaved with valid ones, and a live
worker must take them all: it stays up, /healthz stays 200, every hostile record is in the
dead-letter topic with a reason (or rejected, for config; or answered with an error, for a
rule request that names its correlation id), and every valid record is processed.

The CI form runs a few examples of a few dozen records each; raise HOSTILE_EXAMPLES for more.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration.harness import Deployment, ids_of, order_workflow, wait_until

pytestmark = pytest.mark.integration

MAX_EVENT_BYTES = 65_536
EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "3"))


@dataclass(frozen=True)
class Item:
    """One record to produce and what must become of it."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    # executed | dead | answered (a rule request answered) | rejected (config)
    expect: str = "dead"
    event_id: str = ""


@dataclass
class Expectations:
    executed: set[str] = field(default_factory=set)
    dead: set[bytes] = field(default_factory=set)  # keys of hostile records
    dead_values: set[bytes] = field(default_factory=set)  # hostile records without a key
    answered: set[str] = field(default_factory=set)
    rejected: int = 0


def _token() -> str:
    return uuid.uuid4().hex[:12]


def _envelope(event_id: str, data: Any = None) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "hostile/tests",
        "type": "order.created",
        "time": "2026-01-10T08:00:00Z",
        "data": {"orderId": event_id} if data is None else data,
    }


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def valid_events(draw: st.DrawFn) -> Item:
    event_id = f"ok-{_token()}"
    extra = draw(st.dictionaries(st.text(min_size=1, max_size=10), json_values, max_size=4))
    data = {**extra, "orderId": event_id}
    if draw(st.booleans()):
        return Item(
            "events.orders",
            event_id.encode(),
            orjson.dumps(_envelope(event_id, data)),
            expect="executed",
            event_id=event_id,
        )
    headers = (
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_source", b"hostile/tests"),
        ("ce_type", b"order.created"),
        ("content-type", b"application/json"),
    )
    return Item(
        "events.orders",
        event_id.encode(),
        orjson.dumps(data),
        headers,
        expect="executed",
        event_id=event_id,
    )


def _broken_envelope(draw: st.DrawFn, event_id: str) -> bytes:
    envelope = _envelope(event_id)
    defect = draw(
        st.sampled_from(
            [
                "drop",
                "specversion",
                "type",
                "data",
                "time",
                "subject",
                "base64",
                "not_object",
            ]
        )
    )
    if defect == "drop":
        del envelope[draw(st.sampled_from(["id", "source", "type", "specversion"]))]
    elif defect == "specversion":
        envelope["specversion"] = draw(json_values.filter(lambda v: v != "1.0"))
    elif defect == "type":
        envelope["type"] = draw(json_values.filter(lambda v: not isinstance(v, str) or not v))
    elif defect == "data":
        envelope["data"] = draw(
            json_values.filter(lambda v: v is not None and not isinstance(v, dict))
        )
    elif defect == "time":
        envelope["time"] = draw(st.text(max_size=20).filter(lambda t: not t[:4].isdigit()))
    elif defect == "subject":
        envelope["subject"] = draw(st.integers() | st.lists(st.integers(), max_size=2))
    elif defect == "base64":
        del envelope["data"]
        envelope["data_base64"] = "aGVsbG8="
    else:
        return orjson.dumps(draw(st.lists(json_values, max_size=3) | st.integers() | st.text()))
    return orjson.dumps(envelope)


@st.composite
def hostile_events(draw: st.DrawFn) -> Item:
    event_id = f"bad-{_token()}"
    key = event_id.encode()
    shape = draw(st.sampled_from(["garbage", "broken", "deep", "oversized", "binary"]))
    if shape == "garbage":
        value = draw(st.binary(max_size=300).filter(lambda b: b"specversion" not in b))
        return Item("events.orders", key, value)
    if shape == "broken":
        return Item("events.orders", key, _broken_envelope(draw, event_id))
    if shape == "deep":
        depth = draw(st.integers(min_value=300, max_value=1500))
        data = b'{"orderId": "' + key + b'", "n": ' + b'{"x":' * depth + b"1" + b"}" * depth + b"}"
        value = orjson.dumps(_envelope(event_id, {"orderId": "DATA"})).replace(
            b'{"orderId":"DATA"}', data
        )
        return Item("events.orders", key, value)
    if shape == "oversized":
        padding = "x" * draw(st.integers(min_value=MAX_EVENT_BYTES, max_value=3 * MAX_EVENT_BYTES))
        return Item("events.orders", key, orjson.dumps(_envelope(event_id, {"pad": padding})))
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", key),
        ("ce_source", b"s"),
        ("ce_type", b"order.created"),
    ]
    defect = draw(st.sampled_from(["no_type", "not_utf8", "not_json", "data_list"]))
    value = orjson.dumps({"orderId": event_id})
    if defect == "no_type":
        headers = headers[:3]
    elif defect == "not_utf8":
        headers.append(("ce_subject", b"\xff\xfe"))
    elif defect == "not_json":
        value = b"{not json"
    else:
        value = orjson.dumps([1, 2, 3])
    return Item("events.orders", key, value, tuple(headers))


@st.composite
def rule_requests(draw: st.DrawFn) -> Item:
    correlation = f"r-{_token()}"
    if draw(st.booleans()):
        # no key and no correlation id: nothing to answer to, so it is dead-lettered
        value = draw(st.binary(max_size=100).filter(lambda b: b"correlation_id" not in b))
        return Item("rules.requests", None, value + correlation.encode())
    request = draw(st.dictionaries(st.text(max_size=10), json_values, max_size=4))
    request["correlation_id"] = correlation
    request["rule_type"] = draw(st.sampled_from(["pricing", "nope"]) | json_values)
    return Item("rules.requests", correlation.encode(), orjson.dumps(request), expect="answered")


@st.composite
def hostile_definitions(draw: st.DrawFn) -> Item:
    workflow_id = f"bad-{_token()}"
    definition = order_workflow(workflow_id)
    defect = draw(
        st.sampled_from(
            [
                "trigger",
                "priority",
                "conditions",
                "actions",
                "template",
                "id",
                "not_json",
                "deep",
                "kind",
            ]
        )
    )
    key = f"workflow:{workflow_id}".encode()
    if defect == "trigger":
        definition["trigger"] = draw(st.text(max_size=20).filter(lambda t: "." not in t))
    elif defect == "priority":
        definition["priority"] = draw(st.text(max_size=5) | st.integers(min_value=11))
    elif defect == "conditions":
        definition["conditions"] = draw(st.sampled_from(["((((", "total >", "and or", "x ~~ 3"]))
    elif defect == "actions":
        definition["actions"] = draw(st.sampled_from([[], [{"type": "nope"}], "x"]))
    elif defect == "template":
        definition["actions"] = [{"type": "create_task", "title": "{{ unclosed"}]
    elif defect == "id":
        key = f"workflow:other-{workflow_id}".encode()
    elif defect == "kind":
        key = f"gadget:{workflow_id}".encode()
    elif defect == "not_json":
        return Item("config", key, b"{" + workflow_id.encode(), expect="rejected")
    else:
        leaf = b'{"field": "orderId", "operator": "exists"}'
        tree = b'{"all": [' * 400 + leaf + b"]}" * 400
        value = orjson.dumps(definition | {"conditions": "TREE"}).replace(b'"TREE"', tree)
        return Item("config", key, value, expect="rejected")
    return Item("config", key, orjson.dumps(definition), expect="rejected")


records = st.lists(
    st.one_of(
        valid_events(),
        valid_events(),
        hostile_events(),
        hostile_events(),
        rule_requests(),
        hostile_definitions(),
    ),
    min_size=10,
    max_size=40,
)


def _rejects(worker: Any) -> float:
    return sum(
        float(line.rpartition(" ")[2])
        for line in worker.metrics().splitlines()
        if line.startswith("eventrules_config_rejects_total{")
    )


def test_a_live_worker_takes_generated_hostile_input_without_stopping(
    deployment: Deployment,
) -> None:
    deployment.publish_definition(order_workflow("take-all"))
    worker = deployment.start_worker(EVENTRULES_MAX_EVENT_BYTES=str(MAX_EVENT_BYTES))
    worker.wait_ready()
    expected = Expectations()
    rejects_before = _rejects(worker)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(records)
    def take(items: list[Item]) -> None:
        for item in items:
            deployment.produce(item.topic, item.value, key=item.key, headers=list(item.headers))
            if item.expect == "executed":
                expected.executed.add(item.event_id)
            elif item.expect == "answered":
                expected.answered.add((item.key or b"").decode())
            elif item.expect == "rejected":
                expected.rejected += 1
            elif item.key is not None:
                expected.dead.add(item.key)
            else:
                expected.dead_values.add(item.value or b"")
        _check(deployment, worker, expected, rejects_before)

    take()


def _check(
    deployment: Deployment, worker: Any, expected: Expectations, rejects_before: float
) -> None:
    deployment.executions(until=lambda found: expected.executed <= set(ids_of(found)), timeout=90)

    def all_dead(found: list[Any]) -> bool:
        keys = {record.key() for record in found}
        values = {record.value() for record in found}
        return expected.dead <= keys and expected.dead_values <= values

    letters = deployment.read("dlq", until=all_dead, timeout=90)
    for record in letters:
        headers = dict(record.headers() or [])
        assert headers.get("dlq.reason"), "every dead letter says why"
        assert headers["dlq.source.topic"].decode().startswith(deployment.prefix)
    if expected.answered:
        deployment.read_json(
            "rules.results",
            until=lambda found: expected.answered <= {r["correlation_id"] for r in found},
            timeout=90,
        )
    wait_until(
        lambda: _rejects(worker) - rejects_before >= expected.rejected,
        timeout=60,
        what=f"{expected.rejected} definitions rejected with a metric",
    )
    assert worker.process is not None
    assert worker.process.poll() is None, worker.log_tail()
    assert worker.get("/healthz").status_code == 200
