"""Compile the event path with mypyc, in place (src/eventrules/**/<module>.*.so).

    .venv/bin/python scripts/compile.py           # build, unless the manifest is current
    .venv/bin/python scripts/compile.py --force   # build anyway
    .venv/bin/python scripts/compile.py --clean   # remove what it built (pure Python again)

Why mypyc: the worker is CPU-bound in Python on a path spread over a dozen modules, with no
single hotspot left to trim (README, "Performance"). mypyc compiles the same type-annotated
modules (mypy --strict already holds them) to C, with no second source to keep in step, and is
what black and mypy itself ship. Which modules: eventrules.native.COMPILED. The manifest it
writes (src/eventrules/_native.json) lets the package refuse stale builds (eventrules/native.py).
scripts/bootstrap.sh runs it; it needs a C compiler and the Python headers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))

from eventrules import native  # noqa: E402  (the module list lives with the guard)

def built() -> list[Path]:
    """Every extension module in the package: the compiled ones, their shared library, and any
    of modules no longer listed."""
    return list(native.extension_modules().values())


def clean() -> None:
    for path in built():
        path.unlink()
    native.MANIFEST.unlink(missing_ok=True)


def current() -> bool:
    return native.assess({}).compiled


def compile_in_place() -> None:
    # build-time only: the package does not need mypyc or setuptools to run
    from mypyc.build import mypycify  # noqa: PLC0415
    from setuptools import setup  # noqa: PLC0415

    paths = [str(native.source_of(module).relative_to(SRC)) for module in native.COMPILED]
    digests = {module: native.digest(native.source_of(module)) for module in native.COMPILED}
    clean()
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="eventrules-mypyc-") as build_dir:
        os.chdir(SRC)  # module names come from the paths, relative to src/
        try:
            extensions = mypycify(
                [
                    *paths,
                    *("--config-file", str(ROOT / "pyproject.toml")),
                    *("--cache-dir", str(ROOT / ".mypy_cache")),
                ],
                opt_level="3",
                group_name=native.GROUP,
                target_dir=build_dir,
            )
            setup(
                name="eventrules-native",
                ext_modules=extensions,
                script_args=["-q", "build_ext", "--inplace", "--build-temp", build_dir],
            )
        finally:
            os.chdir(cwd)
            shutil.rmtree(SRC / "build", ignore_errors=True)
    native.MANIFEST.write_text(json.dumps(digests, indent=2, sort_keys=True) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="build even if current")
    parser.add_argument("--clean", action="store_true", help="remove the compiled modules")
    args = parser.parse_args()
    if args.clean:
        clean()
        print("compiled modules removed: eventrules runs as pure Python")
        return 0
    if current() and not args.force:
        print(f"compiled modules are current ({len(native.COMPILED)} modules)")
        return 0
    print(f"compiling {len(native.COMPILED)} modules with mypyc (a minute or two)")
    compile_in_place()
    if not current():
        print(f"the build did not take: {native.assess({}).reason}", file=sys.stderr)
        return 1
    print(f"compiled: {', '.join(native.COMPILED)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
