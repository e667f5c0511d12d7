"""Hostile form fields: bounded, checked, refused with the field named."""

from __future__ import annotations

import pytest

from eventrules.console.forms import (
    choice,
    json_object,
    json_or_text,
    optional_text,
    page_size,
    text_value,
    timestamp_ms,
    whole_number,
)
from eventrules.errors import InputError


def test_text_is_stripped_and_bounded() -> None:
    assert optional_text({"q": "  hi "}, "q") == "hi"
    assert optional_text({"q": "   "}, "q") is None
    with pytest.raises(InputError, match="q: at most 5"):
        optional_text({"q": "toolong"}, "q", max_length=5)
    with pytest.raises(InputError, match="NUL"):
        optional_text({"q": "a\x00b"}, "q")


def test_choices_numbers_and_pages() -> None:
    assert choice({"s": "failed"}, "s", ("failed", "success")) == "failed"
    with pytest.raises(InputError, match="offered"):
        choice({"s": "' OR 1=1 --"}, "s", ("failed",))
    with pytest.raises(InputError, match="1 to 10"):
        whole_number({"p": "11"}, "p", low=1, high=10)
    with pytest.raises(InputError, match="whole number"):
        whole_number({"p": "1e9"}, "p", low=1, high=10)
    assert page_size({}) == 50
    with pytest.raises(InputError, match="one of"):
        page_size({"limit": "7"})


def test_times_and_json() -> None:
    assert timestamp_ms({"t": "1970-01-01T00:00:01"}, "t") == 1000
    with pytest.raises(InputError, match="date and time"):
        timestamp_ms({"t": "tomorrow"}, "t")
    assert json_object('{"a": 1}', "facts") == {"a": 1}
    with pytest.raises(InputError, match="JSON object"):
        json_object("[1]", "facts")
    with pytest.raises(InputError, match="KiB"):
        json_object('{"a": "' + "x" * 300_000 + '"}', "facts")


@pytest.mark.parametrize("value", ["gold", "100", 100, [6, 0], True, None, "true", ""])
def test_a_value_reads_back_as_itself(value: object) -> None:
    assert json_or_text(text_value(value)) == value
