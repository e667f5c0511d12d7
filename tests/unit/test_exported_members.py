"""Everything public is exported from the package root, and nothing private is."""

from __future__ import annotations

import eventrules
import eventrules.conditions
import eventrules.models


def test_all_exports_exist_and_are_sorted() -> None:
    for module in (eventrules, eventrules.conditions, eventrules.models):
        # isort style, as ruff's RUF022 keeps it: CONSTANTS first, then everything else
        assert module.__all__ == sorted(module.__all__, key=lambda n: (not n.isupper(), n))
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_exported_list_is_complete() -> None:
    public = {
        name
        for name, value in vars(eventrules).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("eventrules")
    }
    assert public <= set(eventrules.__all__)
