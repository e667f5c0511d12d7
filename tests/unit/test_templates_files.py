"""The workflow templates (the seed's five, and the ones that show workflows with memory)
validate and fire on their sample events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventrules import Engine, Event, TriggerCatalog, load_workflows

TEMPLATES = Path(__file__).resolve().parents[2] / "config" / "templates"
NAMES = [
    "order-confirmation",
    "low-stock-alert",
    "welcome-email",
    "vip-customer-tag",
    "abandoned-cart",
    "low-stock-alert-throttled",
    "review-request",
]


def sample_event(name: str) -> Event:
    return Event.model_validate(json.loads((TEMPLATES / "events" / f"{name}.json").read_text()))


def test_every_template_has_a_sample_event() -> None:
    assert sorted(p.stem for p in (TEMPLATES / "workflows").glob("*.yaml")) == sorted(NAMES)
    assert sorted(p.stem for p in (TEMPLATES / "events").glob("*.json")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_template_validates_compiles_and_fires(catalog: TriggerCatalog, name: str) -> None:
    engine = Engine(catalog)
    (definition,) = load_workflows(TEMPLATES / "workflows" / f"{name}.yaml")
    assert definition.id == name
    engine.upsert(definition)
    plan = engine.plan(sample_event(name))
    assert plan.workflow_ids() == [name]
    for action in plan.workflows[0].actions:
        assert action.ok, action.error
        assert action.missing == ()


def test_conditional_templates_skip_events_that_do_not_qualify(catalog: TriggerCatalog) -> None:
    engine = Engine(catalog)
    for name in NAMES:
        for definition in load_workflows(TEMPLATES / "workflows" / f"{name}.yaml"):
            engine.upsert(definition)
    small_order = sample_event("order-confirmation")
    assert engine.plan(small_order).workflow_ids() == ["order-confirmation"]
    big_order = sample_event("vip-customer-tag")
    assert engine.plan(big_order).workflow_ids() == ["order-confirmation", "vip-customer-tag"]
    stocked = sample_event("low-stock-alert").model_copy(update={"data": {"stock": 50}})
    assert engine.plan(stocked).workflow_ids() == []


def test_low_stock_email_uses_the_seed_placeholder(catalog: TriggerCatalog) -> None:
    engine = Engine(catalog)
    for definition in load_workflows(TEMPLATES / "workflows" / "low-stock-alert.yaml"):
        engine.upsert(definition)
    (planned,) = engine.plan(sample_event("low-stock-alert")).workflows
    assert planned.actions[0].params["body"] == (
        "Product Vitamin D3 1000 IU is low on stock (5 left)"
    )


def test_the_memory_templates_show_absence_throttle_dedupe_and_delay(
    catalog: TriggerCatalog,
) -> None:
    engine = Engine(catalog)
    for name in ("abandoned-cart", "low-stock-alert-throttled", "review-request"):
        for definition in load_workflows(TEMPLATES / "workflows" / f"{name}.yaml"):
            engine.upsert(definition)
    (cart,) = engine.plan(sample_event("abandoned-cart")).workflows
    assert cart.absence is not None
    assert (cart.absence.expect, cart.absence.match, cart.absence.within) == (
        "order.created",
        "cart-9",
        86400.0,
    )
    order = sample_event("order-confirmation").model_copy(update={"data": {"cartId": "cart-9"}})
    assert [a.workflow_id for a in engine.plan(order).answers] == ["abandoned-cart"]
    (stock,) = engine.plan(sample_event("low-stock-alert-throttled")).workflows
    assert [(g.kind, g.key, g.limit, g.window) for g in stock.gates] == [
        ("throttle", "product-77", 1, 21600.0)
    ]
    (review,) = engine.plan(sample_event("review-request")).workflows
    assert [(g.kind, g.key) for g in review.gates] == [("dedupe", "order-1001")]
    assert review.actions[0].delay == 86400.0
