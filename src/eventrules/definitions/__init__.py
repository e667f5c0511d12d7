"""Definition formats, pure: files on disk (YAML/JSON documents) and config topic records."""

from eventrules.definitions.files import (
    Definition,
    load_rules,
    load_workflows,
    parse_definition,
    read_definition_documents,
)
from eventrules.definitions.records import (
    KINDS,
    ConfigChange,
    definition_key,
    parse_definition_key,
)

__all__ = [
    "KINDS",
    "ConfigChange",
    "Definition",
    "definition_key",
    "load_rules",
    "load_workflows",
    "parse_definition",
    "parse_definition_key",
    "read_definition_documents",
]
