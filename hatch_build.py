"""The wheel's build hook: a wheel that carries the compiled event path is tagged for this
platform, and a stale build is refused.

``scripts/compile.py`` builds the extension modules in place; ``[tool.hatch.build.targets.wheel]
artifacts`` packs them (they are git-ignored). Without them the wheel is pure Python, as before.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

NATIVE = Path(__file__).resolve().parent / "src" / "eventrules" / "native.py"


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        # the guard's own module, loaded alone: the build environment has none of the package's
        # dependencies
        spec = importlib.util.spec_from_file_location("_eventrules_native", NATIVE)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"cannot load {NATIVE}")
        native = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = native  # its dataclass looks itself up there
        spec.loader.exec_module(native)
        if not native.extension_modules():
            return  # a pure-Python wheel
        decided = native.assess({})
        if not decided.compiled:
            raise RuntimeError(f"the compiled event path is stale: {decided.reason}")
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
