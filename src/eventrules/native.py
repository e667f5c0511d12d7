"""The compiled hot path: which modules mypyc builds, and the guard that keeps them honest.

``scripts/compile.py`` compiles :data:`COMPILED` with mypyc into extension modules beside their
sources (Python's importer prefers an extension module to a ``.py`` of the same name) and writes
:data:`MANIFEST`: the SHA-256 of each source it compiled. The same code runs either way; compiled,
the event path takes about half the CPU (README, "Performance").

An extension built from an older source would silently run old code, so at import
(``eventrules/__init__``) :func:`install_guard` checks the manifest against the sources. All or
none: compiled modules call each other's native code directly, so one stale module sends every
one of them back to its source, with a warning saying how to rebuild. ``EVENTRULES_PURE_PYTHON=1``
does the same on purpose (to compare, or to debug with pdb).

This module is never compiled itself: it decides what the others load as.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

__all__ = ["COMPILED", "MANIFEST", "NativeStatus", "install_guard", "status"]

# The event path, module by module: decode, admission, match, render, run, record, send.
# A module here must compile under mypyc (no pydantic models: they stay interpreted).
COMPILED: tuple[str, ...] = (
    "eventrules.conditions.facts",
    "eventrules.conditions.index",
    "eventrules.conditions.paths",
    "eventrules.kafka.records",
    "eventrules.kafka.sender",
    "eventrules.limits",
    "eventrules.metrics",
    "eventrules.models.cloudevents",
    "eventrules.models.events",
    "eventrules.models.ids",
    "eventrules.runtime.admission",
    "eventrules.runtime.batch_path",
    "eventrules.runtime.deadletters",
    "eventrules.runtime.runner",
    "eventrules.workflows.catalog",
    "eventrules.workflows.compiled",
    "eventrules.workflows.engine",
    "eventrules.workflows.plan",
    "eventrules.workflows.templating",
)

# the shared library holding every compiled module's code (the modules above are shims to it)
GROUP = "eventrules._native"
GROUP_LIBRARY = f"{GROUP}__mypyc"

PACKAGE_DIR = Path(__file__).resolve().parent
MANIFEST = PACKAGE_DIR / "_native.json"
PURE_ENV = "EVENTRULES_PURE_PYTHON"


@dataclass(frozen=True, slots=True)
class NativeStatus:
    """``compiled``: the modules of :data:`COMPILED` run as built; otherwise ``reason`` says why
    they load from source."""

    compiled: bool
    reason: str

    def describe(self) -> str:
        return self.reason if self.compiled else f"pure Python: {self.reason}"


def source_of(module: str) -> Path:
    return PACKAGE_DIR.parent.joinpath(*module.split(".")).with_suffix(".py")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extension_modules() -> dict[str, Path]:
    """Every extension module in the package, by module name (built ones, and strays)."""
    suffixes = sorted(importlib.machinery.EXTENSION_SUFFIXES, key=len, reverse=True)
    found = {}
    for path in PACKAGE_DIR.rglob("*.so"):
        relative = path.relative_to(PACKAGE_DIR.parent).as_posix()
        suffix = next((s for s in suffixes if relative.endswith(s)), None)
        if suffix is not None:
            found[relative[: -len(suffix)].replace("/", ".")] = path
    return found


def assess(environ: dict[str, str] | None = None) -> NativeStatus:
    """Whether the compiled modules may run: built, complete, and from today's sources."""
    env = os.environ if environ is None else environ
    if env.get(PURE_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return NativeStatus(False, f"{PURE_ENV} is set")
    try:
        built = json.loads(MANIFEST.read_text())
    except FileNotFoundError:
        return NativeStatus(False, "not compiled (run scripts/compile.py)")
    except (OSError, ValueError) as exc:
        return NativeStatus(False, f"unreadable {MANIFEST.name}: {exc}")
    if not isinstance(built, dict) or sorted(built) != sorted(COMPILED):
        return NativeStatus(False, "compiled for another module list: run scripts/compile.py")
    extensions = extension_modules()
    if GROUP_LIBRARY not in extensions:
        return NativeStatus(False, f"{GROUP_LIBRARY} is missing: run scripts/compile.py")
    strays = sorted(set(extensions) - set(COMPILED) - {GROUP_LIBRARY})
    if strays:
        return NativeStatus(
            False, f"{strays[0]} is compiled but not listed: run scripts/compile.py"
        )
    for module, sha in built.items():
        if module not in extensions:
            return NativeStatus(False, f"{module} has no extension module: run scripts/compile.py")
        if digest(source_of(module)) != sha:
            return NativeStatus(
                False, f"{module} changed since it was compiled: run scripts/compile.py"
            )
    return NativeStatus(True, f"{len(COMPILED)} modules compiled with mypyc")


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Loads the modules of :data:`COMPILED` (and any stray extension's module) from their
    ``.py`` even where an extension exists."""

    def __init__(self, strays: set[str]) -> None:
        self.strays = strays

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in COMPILED and fullname not in self.strays:
            return None
        source = source_of(fullname)
        if not source.exists():
            return None
        return importlib.util.spec_from_file_location(fullname, source)


@functools.cache
def install_guard() -> NativeStatus:
    """Decide once per process, before any compiled module is imported (the package's import
    calls it first)."""
    decided = assess()
    extensions = extension_modules()
    if not decided.compiled and extensions:
        sys.meta_path.insert(0, _SourceFirst(set(extensions)))
        if not decided.reason.startswith(PURE_ENV):
            warnings.warn(
                f"eventrules runs its pure-Python modules: {decided.reason}",
                RuntimeWarning,
                stacklevel=2,
            )
    return decided


def status() -> NativeStatus:
    """What this process runs, as decided at import (for the worker's log and /readyz)."""
    return install_guard()
