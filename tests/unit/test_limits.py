"""The limits: one set of defaults shared by the settings and the core, and the depth walk."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from eventrules.errors import (
    ConfigurationError,
    DefinitionError,
    DefinitionLimitError,
    EventLimitError,
    LimitExceededError,
    PoisonEventError,
    TemplateError,
    TemplateLimitError,
)
from eventrules.limits import (
    ORJSON_MAX_DEPTH,
    Limits,
    active_limits,
    limits_applied,
    nesting_exceeds,
    set_limits,
)
from eventrules.settings import Settings


def test_every_limit_is_a_setting_with_the_same_default() -> None:
    defaults = Settings.model_construct()
    fields = [field.name for field in dataclasses.fields(Limits)]
    assert fields, "Limits has fields"
    for name in fields:
        assert name in Settings.model_fields, name
        assert getattr(defaults, name) == getattr(Limits(), name), name
    assert Settings().limits() == Limits()


def test_settings_refuse_a_json_depth_orjson_could_not_write_back() -> None:
    maximum = Settings.model_fields["max_json_depth"].metadata
    assert any(getattr(item, "le", 0) and item.le + 4 < ORJSON_MAX_DEPTH for item in maximum)
    with pytest.raises(ConfigurationError, match="MAX_JSON_DEPTH"):
        Settings(max_json_depth=300)


def test_settings_limits_reach_the_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTRULES_TEMPLATE_MAX_DEPTH", "8")
    limits = Settings().limits()
    assert limits.template_max_depth == 8
    with limits_applied(limits):
        assert active_limits().template_max_depth == 8
    assert active_limits() == Limits()


def test_set_limits_returns_the_previous_ones() -> None:
    smaller = dataclasses.replace(Limits(), condition_max_depth=3)
    previous = set_limits(smaller)
    try:
        assert active_limits() is smaller
    finally:
        assert set_limits(previous) is smaller
    assert active_limits() is previous


def nested(depth: int) -> object:
    value: object = 1
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


@pytest.mark.parametrize("depth", [0, 1, 2, 63, 64, 65, 300, 5000])
def test_nesting_is_measured_without_recursion(depth: int) -> None:
    value = nested(depth)
    assert nesting_exceeds(value, 64) is (depth > 64)
    assert nesting_exceeds(value, depth) is False
    if depth:
        assert nesting_exceeds(value, depth - 1) is True


def test_the_raw_bytes_spare_the_walk_only_when_they_prove_it_shallow() -> None:
    deep = nested(70)
    raw = orjson.dumps(deep)
    assert nesting_exceeds(deep, 64, raw=raw) is True
    wide = {"items": [{"a": [1, 2]} for _ in range(100)]}  # many brackets, depth 4
    assert nesting_exceeds(wide, 4, raw=orjson.dumps(wide)) is False
    assert nesting_exceeds(wide, 3, raw=orjson.dumps(wide)) is True


def test_limit_errors_belong_to_both_families() -> None:
    definition = DefinitionLimitError("x", limit="condition_max_depth", maximum=3)
    template = TemplateLimitError("y", limit="template_max_output_chars", maximum=5)
    event = EventLimitError("too_deep", "z", limit="max_json_depth", maximum=64)
    assert isinstance(definition, DefinitionError)
    assert isinstance(template, TemplateError)
    assert isinstance(event, PoisonEventError)
    assert event.reason == "too_deep"
    for error, limit in [
        (definition, "condition_max_depth"),
        (template, "template_max_output_chars"),
        (event, "max_json_depth"),
    ]:
        assert isinstance(error, LimitExceededError)
        assert error.limit == limit
