"""The compiled event path runs only while it matches its sources (eventrules/native.py)."""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eventrules import native

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package tree with a source and an 'extension' per compiled module, and its manifest."""
    package = tmp_path / "eventrules"
    digests = {}
    for module in native.COMPILED:
        source = tmp_path.joinpath(*module.split(".")).with_suffix(".py")
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(f"# {module}\n")
        source.with_suffix(SUFFIX).write_bytes(b"\x7fELF")
        digests[module] = native.digest(source)
    (package / f"_native__mypyc{SUFFIX}").write_bytes(b"\x7fELF")
    manifest = package / "_native.json"
    manifest.write_text(json.dumps(digests))
    monkeypatch.setattr(native, "PACKAGE_DIR", package)
    monkeypatch.setattr(native, "MANIFEST", manifest)
    return tmp_path


def test_a_build_that_matches_its_sources_runs_compiled(tree: Path) -> None:
    decided = native.assess({})
    assert decided.compiled, decided.reason
    assert decided.describe() == f"{len(native.COMPILED)} modules compiled with mypyc"


def test_a_source_edited_after_the_build_sends_every_module_back_to_source(tree: Path) -> None:
    edited = native.source_of("eventrules.workflows.engine")
    edited.write_text(edited.read_text() + "x = 1\n")
    decided = native.assess({})
    assert not decided.compiled
    assert decided.reason == (
        "eventrules.workflows.engine changed since it was compiled: run scripts/compile.py"
    )
    assert decided.describe().startswith("pure Python: ")


def test_a_missing_extension_a_stray_one_or_no_manifest_is_not_a_build(tree: Path) -> None:
    runner = native.source_of("eventrules.runtime.runner").with_suffix(SUFFIX)
    runner.unlink()
    assert "eventrules.runtime.runner has no extension module" in native.assess({}).reason
    runner.write_bytes(b"\x7fELF")
    library = tree / "eventrules" / f"_native__mypyc{SUFFIX}"
    library.unlink()
    assert native.assess({}).reason.startswith("eventrules._native__mypyc is missing")
    library.write_bytes(b"\x7fELF")
    stray = tree / "eventrules" / "cli" / f"main{SUFFIX}"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"\x7fELF")
    assert native.assess({}).reason.startswith("eventrules.cli.main is compiled but not listed")
    stray.unlink()
    assert native.assess({}).compiled
    native.MANIFEST.write_text("{not json")
    assert native.assess({}).reason.startswith("unreadable _native.json")
    native.MANIFEST.write_text(json.dumps({"eventrules.metrics": "0" * 64}))
    assert native.assess({}).reason.startswith("compiled for another module list")
    native.MANIFEST.unlink()
    assert native.assess({}).reason == "not compiled (run scripts/compile.py)"


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_the_pure_python_switch_wins_over_a_good_build(tree: Path, value: str) -> None:
    decided = native.assess({"EVENTRULES_PURE_PYTHON": value})
    assert not decided.compiled
    assert decided.reason == "EVENTRULES_PURE_PYTHON is set"
    assert native.assess({"EVENTRULES_PURE_PYTHON": "0"}).compiled


def test_the_source_first_finder_loads_listed_modules_and_strays_from_their_py(tree: Path) -> None:
    finder = native._SourceFirst({"eventrules.cli.main"})
    spec = finder.find_spec("eventrules.runtime.runner", None)
    assert spec is not None
    assert spec.origin == str(native.source_of("eventrules.runtime.runner"))
    assert finder.find_spec("eventrules.settings", None) is None  # not ours to redirect
    assert finder.find_spec("eventrules.cli.main", None) is None  # a stray without a source


def _loaded(env: dict[str, str]) -> dict[str, str]:
    code = (
        "import json, eventrules.runtime.runner as r, eventrules.workflows.engine as e; "
        "from eventrules import native; "
        "print(json.dumps({'runner': r.__file__, 'engine': e.__file__, "
        "'compiled': native.status().compiled}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    loaded: dict[str, str] = json.loads(done.stdout)
    return loaded


def test_what_runs_is_what_the_status_says() -> None:
    env = {k: v for k, v in os.environ.items() if k != "EVENTRULES_PURE_PYTHON"}
    loaded = _loaded(env)
    suffix = SUFFIX if loaded["compiled"] else ".py"
    assert loaded["runner"].endswith(suffix)
    assert loaded["engine"].endswith(suffix)
    # switched off, every module comes from its source, whatever was built
    pure = _loaded({**env, "EVENTRULES_PURE_PYTHON": "1"})
    assert not pure["compiled"]
    assert pure["runner"].endswith("runner.py")
    assert pure["engine"].endswith("engine.py")
