"""The trigger catalog shipped under config/ and its operator extensions."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventrules import TriggerCatalog, UnknownTriggerError
from eventrules.errors import ConfigurationError


def test_builtin_catalog_has_the_seed_26_triggers_and_the_cart_extension(
    catalog: TriggerCatalog,
) -> None:
    assert len(catalog) == 28
    seed = [trigger for trigger in catalog if trigger.group != "cart"]
    assert len(seed) == 26
    groups = {trigger.group for trigger in seed}
    assert groups == {"order", "user", "product", "prescription", "review", "payment", "scheduled"}
    assert {t.name for t in catalog if t.group == "cart"} == {"cart.updated", "cart.emptied"}
    assert "product.low_stock" in catalog
    assert "scheduled.monthly" in catalog


def test_extra_file_and_directory_extend_the_catalog(tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "triggers:\n"
        "  - {name: subscription.renewed, description: Renewal charged}\n"
        "  - {name: order.created, description: Overridden}\n"
    )
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "a.yaml").write_text("triggers:\n  - name: loyalty.points_earned\n")
    catalog = TriggerCatalog.load(extra, folder)
    assert len(catalog) == 30
    assert catalog.require("subscription.renewed").group == "subscription"
    assert catalog.require("order.created").description == "Overridden"
    assert "loyalty.points_earned" in catalog


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("triggers: 3\n", "top-level 'triggers:' list"),
        ("triggers:\n  - {name: Not-Valid}\n", "needs a name"),
        ("triggers: [\n", "cannot read"),
    ],
)
def test_bad_catalog_file_is_a_configuration_error(
    tmp_path: Path, content: str, fragment: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    with pytest.raises(ConfigurationError, match=fragment):
        TriggerCatalog.load(bad)


def test_unknown_trigger_suggests_close_names(catalog: TriggerCatalog) -> None:
    with pytest.raises(UnknownTriggerError) as caught:
        catalog.require("payment.recieved", definition_id="w1")
    assert caught.value.definition_id == "w1"
    assert "did you mean payment.received" in caught.value.problems[0][1]
