"""One declarative file per topic: name, partitions, replication factor, configs, value schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from eventrules.errors import DefinitionError

__all__ = ["TopicSpec", "load_topic_specs"]


class TopicSpec(BaseModel):
    """A topic as declared in ``topics/<name>.yaml``; ``name`` is the logical (unprefixed) name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,200}$")
    description: str = ""
    partitions: int = Field(ge=1, le=10_000)
    replication_factor: int = Field(default=1, ge=1, le=32)
    configs: dict[str, str] = Field(default_factory=dict)
    key: str = ""
    value_format: Literal["json", "cloudevents-json", "raw"] = "json"
    value_schema: str | None = None
    # Filled from the file's location and the deployment's prefix, not from the file.
    topic: str = ""
    schema_document: dict[str, Any] | None = None

    @field_validator("configs", mode="before")
    @classmethod
    def _configs_as_strings(cls, value: Any) -> Any:
        # Kafka configs are strings on the wire; YAML turns `retention.ms: 100` into an int.
        if isinstance(value, dict):
            return {
                str(key): str(item).lower() if isinstance(item, bool) else str(item)
                for key, item in value.items()
            }
        return value


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    return [(".".join(str(part) for part in item["loc"]), item["msg"]) for item in error.errors()]


def load_topic_specs(
    folder: Path, *, prefix: str = "", replication_factor: int | None = None
) -> list[TopicSpec]:
    """Load every ``*.yaml`` in ``folder`` (sorted by name) and resolve value schemas.

    ``prefix`` is prepended to each name to give the real topic; ``replication_factor``
    overrides the files' value (production clusters want 3, the local broker has one node).
    """
    specs: list[TopicSpec] = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise DefinitionError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise DefinitionError(f"{path}: a topic file must hold a mapping")
        try:
            spec = TopicSpec.model_validate(raw)
        except ValidationError as exc:
            raise DefinitionError(
                f"{path}: invalid topic declaration", problems=_problems(exc)
            ) from None
        if path.stem != spec.name:
            raise DefinitionError(f"{path}: file name must be the topic name {spec.name!r}.yaml")
        schema: dict[str, Any] | None = None
        if spec.value_schema:
            schema_path = folder / spec.value_schema
            try:
                schema = orjson.loads(schema_path.read_bytes())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise DefinitionError(f"{path}: value schema {schema_path}: {exc}") from None
        specs.append(
            spec.model_copy(
                update={
                    "topic": prefix + spec.name,
                    "schema_document": schema,
                    "replication_factor": replication_factor or spec.replication_factor,
                }
            )
        )
    if not specs:
        raise DefinitionError(f"no topic files (*.yaml) in {folder}")
    return specs
