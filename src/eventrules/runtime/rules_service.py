"""Rule decisions as a service: one request format shared by HTTP and Kafka request/reply.

Request: ``{"rule_type": "pricing", "facts": {...}, "policy"?: "stack", "price_field"?: "total",
"evaluation_time"?: RFC 3339, "correlation_id"?: str, "reply_to"?: topic}``.

Any request gets an answer, never an exception: an unusable one (not JSON, nested deeper than
``max_json_depth``, an unknown rule type, a price out of range, an evaluation time at the edge
of the calendar) is a 400/422 over HTTP and an error reply over Kafka. A ``reply_to`` that is
not allowed (see ``reply_topic_allowed``) is answered on the results topic, with the error.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from eventrules.errors import RequestNotJSONError, RuleEvaluationError, RuleRequestError
from eventrules.kafka.records import Record
from eventrules.limits import active_limits, nesting_exceeds
from eventrules.metrics import Metrics
from eventrules.rules import RulesEngine
from eventrules.runtime.deadletters import DeadLetterWriter, Sender
from eventrules.settings import TopicNames

__all__ = ["RuleRequestHandler", "decode_request", "evaluate_request", "reply_topic_allowed"]

log = logging.getLogger(__name__)

_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def reply_topic_allowed(topic: str, patterns: Sequence[str]) -> bool:
    """Whether ``reply_to`` names a topic the replies may go to (a legal name matching one of
    the glob ``patterns``): never the config topic, actions, events or the dead letters."""
    return bool(_TOPIC_NAME.match(topic)) and any(
        fnmatch.fnmatchcase(topic, pattern) for pattern in patterns
    )


def decode_request(raw: bytes) -> Any:
    """The request JSON; RequestNotJSONError, or RuleRequestError when nested too deeply."""
    try:
        request = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestNotJSONError(f"request body is not JSON: {exc}") from None
    depth = active_limits().max_json_depth
    if nesting_exceeds(request, depth, raw=raw):
        raise RuleRequestError(f"the request nests deeper than {depth} levels (max_json_depth)")
    return request


def _evaluation_time(raw: Any) -> datetime | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise RuleRequestError("evaluation_time must be an RFC 3339 string")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise RuleRequestError(f"evaluation_time {raw!r} is not RFC 3339") from None
    if moment.tzinfo is None:
        raise RuleRequestError("evaluation_time must carry a timezone offset")
    return moment


def evaluate_request(
    engine: RulesEngine, request: Any, *, metrics: Metrics | None = None
) -> dict[str, Any]:
    """The decision for one request as JSON-ready data; raises RuleRequestError for bad input."""
    if not isinstance(request, dict):
        raise RuleRequestError("the request must be a JSON object")
    rule_type = request.get("rule_type")
    if not isinstance(rule_type, str):
        raise RuleRequestError("rule_type is required (pricing, validation, routing, ...)")
    facts = request.get("facts")
    if not isinstance(facts, dict):
        raise RuleRequestError("facts is required and must be a JSON object")
    policy = request.get("policy")
    price_field = request.get("price_field", "total")
    if policy is not None and not isinstance(policy, str):
        raise RuleRequestError("policy must be a string")
    if not isinstance(price_field, str):
        raise RuleRequestError("price_field must be a string")
    try:
        decision = engine.evaluate(
            rule_type,
            facts,
            at=_evaluation_time(request.get("evaluation_time")),
            policy=policy,
            price_field=price_field,
        )
    except RuleEvaluationError as exc:
        field = "evaluation_time" if exc.field == "at" else exc.field
        where = f" ({field})" if field else ""
        raise RuleRequestError(f"{exc}{where}") from None
    if metrics is not None:
        stamp = decision.evaluated_at.timestamp()
        for matched in decision.matched:
            outcome = "applied" if matched.applied else "matched"
            metrics.rule_evaluations.labels(matched.rule_id, outcome).inc()
            metrics.rule_last_evaluated.labels(matched.rule_id).set(stamp)
    return decision.to_dict()


class RuleRequestHandler:
    """Answers requests from the rule-requests topic on the results topic (or ``reply_to``, when
    it matches one of ``reply_topics``), keyed by the correlation id. A request without a usable
    correlation id is dead-lettered; one whose ``reply_to`` is not allowed is answered with an
    error on the results topic."""

    def __init__(
        self,
        engine: RulesEngine,
        *,
        topics: TopicNames,
        sender: Sender,
        metrics: Metrics,
        dead_letter: DeadLetterWriter,
        reply_topics: Sequence[str] = (),
    ) -> None:
        self.engine = engine
        self.topics = topics
        self.sender = sender
        self.metrics = metrics
        self.dead_letter = dead_letter
        self.reply_topics = tuple(reply_topics) or (
            topics("rules.results"),
            topics("rules.replies.*"),
        )

    async def __call__(self, record: Record) -> None:
        request: Any = None
        problem: str | None = None
        try:
            request = decode_request(record.value or b"")
        except RuleRequestError as exc:
            problem = str(exc)
        correlation: Any = request.get("correlation_id") if isinstance(request, dict) else None
        if not isinstance(correlation, str) or not correlation:
            correlation = (record.key or b"").decode(errors="replace")
        if not correlation:
            await self.dead_letter(record, "no_correlation_id", problem or "correlation_id missing")
            return
        reply: dict[str, Any] = {"correlation_id": correlation, "decision": None, "error": problem}
        if problem is None:
            reply["decision"], reply["error"] = self._decide(request, correlation)
        target = request.get("reply_to") if isinstance(request, dict) else None
        topic = self.topics("rules.results")
        if target is not None and target != "":
            if isinstance(target, str) and reply_topic_allowed(target, self.reply_topics):
                topic = target
            else:
                self.metrics.rule_replies_refused.inc()
                reply = {
                    "correlation_id": correlation,
                    "decision": None,
                    "error": f"reply_to {str(target)[:300]!r} is not an allowed reply topic"
                    f" (allowed: {', '.join(self.reply_topics)})",
                }
        await self.sender.send(topic, correlation.encode(), orjson.dumps(reply))

    def _decide(self, request: Any, correlation: str) -> tuple[Any, str | None]:
        """``(decision, error)``: every request gets one or the other."""
        try:
            return evaluate_request(self.engine, request, metrics=self.metrics), None
        except RuleRequestError as exc:
            return None, str(exc)
        except Exception as exc:  # the engine is total; a last line so the stream goes on
            log.exception("rule request %s failed", correlation)
            return None, f"internal error: {type(exc).__name__}"
