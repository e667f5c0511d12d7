"""Rules: grouped by type with their validity windows and evaluation counts, the evaluate form
(facts in, decision and price breakdown out), the `rules check` findings, one rule's page."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from eventrules.console.context import CONSOLE, Console
from eventrules.console.forms import choice, definition_id, json_object, optional_text
from eventrules.console.pages import render
from eventrules.console.views.definitions import live_item
from eventrules.console.views.workflows import history_rows
from eventrules.errors import DefinitionError, EventRulesError, InputError, RuleEvaluationError
from eventrules.ops.config import Live, definition_history
from eventrules.ops.rules import scrape_rule_stats
from eventrules.rules import POLICIES, RULE_TYPES, Rule, RulesEngine, check_rules, parse_rule

__all__ = ["add_routes"]

_POLICY_NAMES = sorted({policy for names in POLICIES.values() for policy in names})


def window_state(rule: Rule, now: datetime) -> str:
    if not rule.enabled:
        return "disabled"
    if rule.valid_from is not None and now < rule.valid_from:
        return "scheduled"
    if rule.valid_until is not None and now >= rule.valid_until:
        return "expired"
    return "active"


def _rules(live: Live) -> tuple[list[Rule], list[str]]:
    rules, broken = [], []
    for (kind, ident), item in sorted(live.items()):
        if kind != "rule":
            continue
        try:
            rules.append(parse_rule(item.value))
        except DefinitionError as exc:
            broken.append(f"{ident}: {exc}")
    return rules, broken


async def _counts(console: Console) -> tuple[dict[str, dict[str, Any]], str | None]:
    urls = console.settings.console_worker_urls
    if not urls:
        return {}, "no worker addresses configured (EVENTRULES_CONSOLE_WORKER_URLS)"

    def scrape() -> tuple[dict[str, dict[str, Any]], str | None]:
        try:
            return scrape_rule_stats(urls, timeout=3.0), None
        except EventRulesError as exc:
            return {}, str(exc)

    return await console.cached("rule-counts", 10.0, scrape)


async def _page_context(request: web.Request) -> dict[str, Any]:
    console = request.app[CONSOLE]
    live = await console.live()
    rules, broken = _rules(live)
    now = datetime.now(UTC)
    counts, counts_error = await _counts(console)
    groups: dict[str, list[dict[str, Any]]] = {}
    for rule in sorted(rules, key=lambda r: (-r.priority, r.id)):
        groups.setdefault(rule.rule_type, []).append(
            {
                "rule": rule,
                "item": live[("rule", rule.id)],
                "window": window_state(rule, now),
                "counts": counts.get(rule.id),
            }
        )
    report = check_rules(rules, at=now)
    return {
        "groups": [
            (rule_type, groups[rule_type]) for rule_type in RULE_TYPES if rule_type in groups
        ],
        "broken": broken,
        "counts_error": counts_error,
        "report": report,
        "rule_types": RULE_TYPES,
        "policies": _POLICY_NAMES,
        "form": {"rule_type": "pricing", "facts": '{"total": 620}', "at": "", "policy": ""},
        "decision": None,
        "eval_error": None,
        "next_path": request.path,
    }


async def rules_page(request: web.Request) -> web.Response:
    return render(request, "rules.html", **await _page_context(request))


async def evaluate(request: web.Request) -> web.Response:
    """Evaluate the live rules of one type against facts (in the console, no side effects)."""
    console = request.app[CONSOLE]
    context = await _page_context(request)
    form = await request.post()
    facts_text = optional_text(form, "facts", max_length=300_000) or ""
    at_text = optional_text(form, "at", max_length=40) or ""
    rule_type = choice(form, "rule_type", RULE_TYPES) or "pricing"
    policy = choice(form, "policy", _POLICY_NAMES)
    context["form"] = {
        "rule_type": rule_type,
        "facts": facts_text,
        "at": at_text,
        "policy": policy or "",
    }
    try:
        facts = json_object(facts_text, "facts")
        at = datetime.now(UTC)
        if at_text:
            try:
                at = datetime.fromisoformat(at_text)
            except ValueError:
                raise InputError("at", "expected a date and time") from None
            if at.utcoffset() is None:
                at = at.replace(tzinfo=console.settings.zoneinfo())
        rules, _ = _rules(await console.live())
        engine = RulesEngine(rules, timezone=console.settings.zoneinfo())
        context["decision"] = engine.evaluate(rule_type, facts, at=at, policy=policy)
    except (InputError, RuleEvaluationError) as exc:
        context["eval_error"] = str(exc)
        return render(request, "rules.html", status=400, **context)
    return render(request, "rules.html", **context)


async def rule_detail(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    ident = definition_id(request.match_info["definition_id"], "rule")
    item = await live_item(request, "rule", ident)
    versions = await asyncio.to_thread(definition_history, console.settings, "rule", ident)
    counts, counts_error = await _counts(console)
    try:
        rule: Rule | None = parse_rule(item.value)
    except DefinitionError:
        rule = None
    return render(
        request,
        "rule.html",
        item=item,
        rule=rule,
        window=window_state(rule, datetime.now(UTC)) if rule else "invalid",
        history=history_rows(versions),
        counts=counts.get(ident),
        counts_error=counts_error,
        next_path=request.path,
    )


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/rules", rules_page)
    router.add_post("/rules/evaluate", evaluate)
    router.add_get("/rules/{definition_id}", rule_detail)
