"""Every rule request gets an answer: a decision, or an error reply / a JSON 4xx, never a crash;
and where rule replies may go."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from eventrules.errors import RequestNotJSONError, RuleRequestError
from eventrules.kafka.records import Record
from eventrules.limits import Limits, limits_applied
from eventrules.metrics import Metrics
from eventrules.rules import RulesEngine, parse_rule
from eventrules.runtime.rules_service import (
    RuleRequestHandler,
    decode_request,
    evaluate_request,
    reply_topic_allowed,
)
from eventrules.runtime.web import MAX_BODY_BYTES, make_web_app
from eventrules.settings import Settings, TopicNames

PATTERNS = Settings(topic_prefix="p.").reply_topic_patterns()


def test_replies_go_to_the_results_topic_and_the_replies_family_only() -> None:
    assert PATTERNS == ["p.rules.results", "p.rules.replies.*"]
    assert reply_topic_allowed("p.rules.results", PATTERNS)
    assert reply_topic_allowed("p.rules.replies.checkout", PATTERNS)
    for refused in ("p.config", "p.actions.email", "p.events.orders", "p.dlq", "rules.results"):
        assert not reply_topic_allowed(refused, PATTERNS), refused


def test_illegal_topic_names_are_refused_whatever_the_patterns() -> None:
    assert not reply_topic_allowed("p.rules.replies.a b", PATTERNS)
    assert not reply_topic_allowed("p.rules.replies." + "x" * 300, PATTERNS)
    assert not reply_topic_allowed("anything/else", ["*"])
    assert reply_topic_allowed("team.replies", ["team.*"])


def engine() -> RulesEngine:
    return RulesEngine(
        [
            parse_rule(
                {
                    "id": "ten",
                    "name": "ten",
                    "rule_type": "pricing",
                    "created_by": "t",
                    "actions": [{"type": "percentage_discount", "percent": 10}],
                }
            )
        ]
    )


HOSTILE_REQUESTS = [
    (
        {"rule_type": "pricing", "facts": {"total": 1e308}},
        "out of range (at most 1,000,000,000,000,000) (total)",
    ),
    (
        {
            "rule_type": "pricing",
            "facts": {"total": 5},
            "evaluation_time": "9999-12-31T23:59:59-14:00",
        },
        "out of range (evaluation_time)",
    ),
    (
        {
            "rule_type": "pricing",
            "facts": {"total": 5},
            "evaluation_time": "0001-01-01T00:00:00+14:00",
        },
        "out of range (evaluation_time)",
    ),
    ({"rule_type": "pricing", "facts": {"total": 1e30}}, "out of range"),
    ({"rule_type": "pricing", "facts": {"total": "1e308"}}, "needs a number"),
]


@pytest.mark.parametrize(("request_body", "message"), HOSTILE_REQUESTS)
def test_hostile_requests_are_request_errors(request_body: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleRequestError) as caught:
        evaluate_request(engine(), request_body)
    assert message in str(caught.value)


def test_decode_request_bounds_the_nesting() -> None:
    with pytest.raises(RequestNotJSONError):
        decode_request(b"{nope")
    deep = b'{"rule_type": "pricing", "facts": ' + b'{"a":' * 100 + b"1" + b"}" * 100 + b"}"
    with pytest.raises(RuleRequestError, match="deeper than 64"):
        decode_request(deep)
    with limits_applied(dataclasses.replace(Limits(), max_json_depth=200)):
        assert decode_request(deep)["rule_type"] == "pricing"


class Sent:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, dict[str, Any]]] = []

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Any = None
    ) -> None:
        self.records.append((topic, key, orjson.loads(value or b"null")))


def handle(
    request: bytes, rules: RulesEngine | None = None
) -> tuple[str, bytes | None, dict[str, Any]]:
    sent = Sent()
    dead: list[str] = []

    async def dead_letter(record: Record, reason: str, detail: str) -> None:
        dead.append(reason)

    handler = RuleRequestHandler(
        rules if rules is not None else engine(),
        topics=TopicNames("p."),
        sender=sent,
        metrics=Metrics.create(),
        dead_letter=dead_letter,
    )
    asyncio.run(handler(Record("p.rules.requests", 0, 1, b"k1", request, [])))
    assert dead == []
    (answer,) = sent.records
    return answer


@pytest.mark.parametrize(("request_body", "message"), HOSTILE_REQUESTS)
def test_over_kafka_a_hostile_request_gets_an_error_reply(
    request_body: dict[str, Any], message: str
) -> None:
    topic, key, reply = handle(orjson.dumps({"correlation_id": "c1", **request_body}))
    assert (topic, key) == ("p.rules.results", b"c1")
    assert reply["decision"] is None
    assert message in reply["error"]


def test_a_reply_to_that_is_not_a_topic_name_is_answered_on_the_results_topic() -> None:
    request = {"correlation_id": "c1", "rule_type": "pricing", "facts": {"total": 5}}
    topic, _, reply = handle(orjson.dumps({**request, "reply_to": "bad topic!"}))
    assert topic == "p.rules.results"
    assert "'bad topic!' is not an allowed reply topic" in reply["error"]
    topic, _, reply = handle(orjson.dumps({**request, "reply_to": "p.rules.replies.shop"}))
    assert topic == "p.rules.replies.shop"
    assert reply["error"] is None
    assert reply["decision"]["outcome"]["price"]["final"] == "4.50"


def test_an_unforeseen_failure_is_an_error_reply_not_an_exception() -> None:
    class Broken(RulesEngine):
        def evaluate(self, *args: Any, **kwargs: Any) -> Any:
            raise MemoryError("a bug")

    request = {"correlation_id": "c1", "rule_type": "pricing", "facts": {"total": 5}}
    _, _, reply = handle(orjson.dumps(request), Broken())
    assert reply == {
        "correlation_id": "c1",
        "decision": None,
        "error": "internal error: MemoryError",
    }


def test_a_deep_request_over_kafka_gets_an_error_reply_keyed_by_the_record_key() -> None:
    deep = b'{"rule_type": "pricing", "facts": ' + b'{"a":' * 100 + b"1" + b"}" * 100 + b"}"
    topic, key, reply = handle(deep)
    assert (topic, key) == ("p.rules.results", b"k1")
    assert "deeper than 64" in reply["error"]


async def post(body: bytes) -> tuple[int, str, Any]:
    worker = SimpleNamespace(ready=lambda: True, rules=engine(), metrics=Metrics.create())
    server = TestServer(make_web_app(worker))  # type: ignore[arg-type]
    await server.start_server()
    try:
        async with ClientSession() as session:
            url = f"http://127.0.0.1:{server.port}/rules/evaluate"
            async with session.post(url, data=io.BytesIO(body)) as response:
                return response.status, response.content_type, await response.json()
    finally:
        await server.close()


@pytest.mark.parametrize(("request_body", "message"), HOSTILE_REQUESTS)
def test_over_http_a_hostile_request_is_a_422_with_a_json_body(
    request_body: dict[str, Any], message: str
) -> None:
    status, content_type, body = asyncio.run(post(orjson.dumps(request_body)))
    assert (status, content_type) == (422, "application/json")
    assert message in body["error"]


def test_over_http_every_error_is_a_json_body() -> None:
    status, content_type, body = asyncio.run(post(b"x" * (MAX_BODY_BYTES + 1)))
    assert (status, content_type) == (413, "application/json")
    assert "exceeded" in body["error"]
    status, _, body = asyncio.run(post(b"{nope"))
    assert status == 400
    assert "not JSON" in body["error"]
    status, _, body = asyncio.run(
        post(orjson.dumps({"rule_type": "pricing", "facts": {"total": 20}}))
    )
    assert status == 200
    assert body["outcome"]["price"]["final"] == "18.00"
