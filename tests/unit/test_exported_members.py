"""Everything public is exported from the package root, and nothing private is."""

from __future__ import annotations

import subprocess
import sys

import pytest

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


def test_root_names_load_on_first_use() -> None:
    # every lazily exported name is listed, and only those (plus the version)
    assert set(eventrules._EXPORTS) | {"__version__"} == set(eventrules.__all__)


def test_a_corner_of_the_package_does_not_import_all_of_it() -> None:
    # the worker's stats keeper child imports its module alone: the engine must not come along
    code = (
        "import sys, eventrules.runtime.stats_process; "
        "print(sorted(m for m in sys.modules if m.startswith('eventrules.workflows')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_root_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = eventrules.no_such_name  # type: ignore[attr-defined]
