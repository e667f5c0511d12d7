"""The shipped workflow and rule templates (config/templates), found and validated."""

from __future__ import annotations

from pathlib import Path

from eventrules.definitions.files import Definition
from eventrules.errors import DefinitionError
from eventrules.ops.config import collect_definitions
from eventrules.settings import Settings

__all__ = ["shipped_templates", "templates_dir"]

_FOLDERS = ("workflows", "rules")


def templates_dir(given: Path | None = None) -> Path:
    """``given`` (--dir), else EVENTRULES_TEMPLATES_DIR, else the shipped templates."""
    return given or Settings().resolved_templates_dir()


def shipped_templates(root: Path) -> dict[str, tuple[Definition, Path]]:
    """Template name (the file stem) -> its definition and file; every one validated."""
    found: dict[str, tuple[Definition, Path]] = {}
    for folder in _FOLDERS:
        for file in sorted((root / folder).glob("*.y*ml")):
            try:
                (definition,) = collect_definitions([file])
            except (DefinitionError, ValueError) as exc:
                raise DefinitionError(f"template {file} is unusable: {exc}") from None
            found[file.stem] = (definition, file)
    return found
