"""The definition editor's state: form fields <-> a raw definition, the builder's operations, and
validation problems mapped back to the fields they concern.

The form names its fields by position: ``c`` is the root condition, ``c.0`` its first child
(``c.<path>.kind`` is ``all``, ``any``, ``not`` or ``compare``; a comparison has ``.field``,
``.operator`` and ``.value``); ``a.<i>.type`` is the i-th action and ``a.<i>.p.<name>`` its
parameters. Everything read is bounded (depth, counts, lengths) because the form is hostile.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson
import yaml
from pydantic import JsonValue

from eventrules.conditions import OPERATORS
from eventrules.console.forms import MAX_DOCUMENT_BYTES, json_or_text, optional_text, text_value
from eventrules.definitions.files import Definition, parse_definition, parse_yaml_text
from eventrules.errors import DefinitionError, InputError
from eventrules.models.actions import ActionBase, ActionRegistry, action_type_name
from eventrules.models.workflows import Workflow
from eventrules.rules import compile_rule
from eventrules.workflows.catalog import TriggerCatalog
from eventrules.workflows.compiled import compile_workflow

__all__ = [
    "MAX_ACTIONS",
    "MAX_CHILDREN",
    "MAX_DEPTH",
    "SOURCE_ONLY_FIELDS",
    "EditorState",
    "ParamSpec",
    "apply_operation",
    "conditions_from_form",
    "definition_from_source",
    "field_key",
    "form_can_show",
    "param_specs",
    "raw_from_form",
    "source_text",
    "validate_definition",
]

MAX_DEPTH: Final = 6
MAX_CHILDREN: Final = 40
MAX_ACTIONS: Final = 40
_GROUPS: Final = ("all", "any")
_NODE_KINDS: Final = ("all", "any", "not", "compare")
_LONG_TEXT: Final = frozenset({"body", "message", "description", "template"})
_TOP_FIELDS: Final = ("id", "name", "description", "trigger", "schedule")
# Workflow fields the form has no widgets for (memory, docs/memory.md): a workflow that has any
# is edited as source, so saving the form can never drop them.
SOURCE_ONLY_FIELDS: Final = ("throttle", "dedupe", "absence")

Widget = Literal["text", "textarea", "number", "list", "select", "json", "object", "checkbox"]


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of an action type, as the editor shows and reads it."""

    name: str
    widget: Widget
    required: bool
    description: str
    templated: bool
    options: tuple[str, ...] = ()
    default: str = ""


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in {typing.Union, types.UnionType} and type(None) in args:
        rest = [arg for arg in args if arg is not type(None)]
        return (rest[0] if len(rest) == 1 else annotation), True
    return annotation, False


def _widget(name: str, annotation: Any) -> tuple[Widget, tuple[str, ...]]:
    inner, _ = _unwrap_optional(annotation)
    origin = typing.get_origin(inner)
    if origin is Literal:
        return "select", tuple(str(arg) for arg in typing.get_args(inner))
    if inner is bool:
        return "checkbox", ()
    if inner in {int, float}:
        return "number", ()
    if origin is list and typing.get_args(inner) == (str,):
        return "list", ()
    if origin is dict:
        return "object", ()
    if inner is str:
        return ("textarea" if name in _LONG_TEXT else "text"), ()
    if inner is JsonValue or inner == JsonValue:
        return "json", ()
    return "json", ()


def param_specs(action_class: type[ActionBase]) -> list[ParamSpec]:
    """The parameters of an action type, documented from its model."""
    specs = []
    for name, info in action_class.model_fields.items():
        if name == "type":
            continue
        widget, options = _widget(name, info.annotation)
        default = ""
        if not info.is_required():
            value = info.get_default(call_default_factory=True)
            if isinstance(value, str | int | float) and value != "":
                default = text_value(value)
        specs.append(
            ParamSpec(
                name,
                widget,
                info.is_required(),
                info.description or "",
                name not in action_class.untemplated,
                options,
                default,
            )
        )
    return specs


def _child_paths(form: Mapping[str, Any], path: str) -> list[str]:
    paths = []
    for index in range(MAX_CHILDREN):
        child = f"{path}.{index}"
        if f"{child}.kind" not in form:
            break
        paths.append(child)
    return paths


def _read_node(form: Mapping[str, Any], path: str, depth: int) -> Any:
    kind = optional_text(form, f"{path}.kind", max_length=10)
    if kind not in _NODE_KINDS:
        raise InputError(f"{path}.kind", "not a condition kind")
    if depth > MAX_DEPTH:
        raise InputError(path, f"conditions nest at most {MAX_DEPTH} deep")
    if kind == "compare":
        operator = optional_text(form, f"{path}.operator", max_length=40) or ""
        node: dict[str, Any] = {"field": optional_text(form, f"{path}.field") or ""}
        node["operator"] = operator
        spec = OPERATORS.get(operator)
        if spec is None or spec.takes_value:
            raw = optional_text(form, f"{path}.value", max_length=MAX_DOCUMENT_BYTES)
            if raw is not None:
                node["value"] = json_or_text(raw)
        return node
    children = [_read_node(form, child, depth + 1) for child in _child_paths(form, path)]
    if kind == "not":
        return {"not": children[0] if children else {"field": "", "operator": "exists"}}
    return {kind: children}


def conditions_from_form(form: Mapping[str, Any]) -> Any:
    """The structured condition the builder describes (or the one-line text), None for none."""
    if optional_text(form, "cond.mode", max_length=10) == "text":
        return optional_text(form, "cond.text", max_length=MAX_DOCUMENT_BYTES)
    if optional_text(form, "c.kind", max_length=10) in (None, "none"):
        return None
    return _read_node(form, "c", 1)


def _param_value(spec: ParamSpec, raw: str | None, key: str) -> tuple[bool, Any]:
    """``(present, value)`` of one parameter field."""
    if spec.widget == "checkbox":
        return True, raw is not None
    if raw is None:
        return False, None
    if spec.widget == "list":
        return True, [item.strip() for item in raw.split(",") if item.strip()]
    if spec.widget == "number":
        try:
            return True, int(raw)
        except ValueError:
            try:
                return True, float(raw)
            except ValueError:
                return True, raw  # the model says why at this field
    if spec.widget == "object":
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InputError(key, f"not a JSON object: {exc}") from None
        return True, parsed
    if spec.widget == "json":
        return True, json_or_text(raw)
    return True, raw


def _actions_from_form(form: Mapping[str, Any], registry: ActionRegistry) -> list[dict[str, Any]]:
    classes = {name: cls for cls in registry.classes() if (name := action_type_name(cls))}
    actions = []
    for index in range(MAX_ACTIONS):
        type_key = f"a.{index}.type"
        if type_key not in form:
            break
        action_type = optional_text(form, type_key, max_length=100) or ""
        action: dict[str, Any] = {"type": action_type}
        action_class = classes.get(action_type)
        if action_class is None:
            raise InputError(type_key, "not an action type")
        for spec in param_specs(action_class):
            key = f"a.{index}.p.{spec.name}"
            present, value = _param_value(
                spec, optional_text(form, key, max_length=MAX_DOCUMENT_BYTES), key
            )
            if present:
                action[spec.name] = value
        actions.append(action)
    return actions


def form_can_show(kind: str, raw: Mapping[str, Any]) -> bool:
    """Whether the form shows all of ``raw``: not for rules, nor for workflows with memory."""
    return kind == "workflow" and not any(raw.get(name) for name in SOURCE_ONLY_FIELDS)


def raw_from_form(form: Mapping[str, Any], registry: ActionRegistry) -> dict[str, Any]:
    """The raw workflow the editor's form describes (not validated: see validate_definition)."""
    raw: dict[str, Any] = {"kind": "workflow"}
    for name in _TOP_FIELDS:
        value = optional_text(
            form, name, max_length=MAX_DOCUMENT_BYTES if name == "description" else 2000
        )
        if value is not None:
            raw[name] = value
    priority = optional_text(form, "priority", max_length=10)
    if priority is not None:
        raw["priority"] = int(priority) if priority.lstrip("-").isdigit() else priority
    raw["enabled"] = form.get("enabled") is not None
    conditions = conditions_from_form(form)
    if conditions is not None:
        raw["conditions"] = conditions
    raw["actions"] = _actions_from_form(form, registry)
    for name in ("created_by", "version"):
        value = optional_text(form, name, max_length=200)
        if value is not None:
            raw[name] = int(value) if name == "version" and value.isdigit() else value
    return raw


def _node_at(root: Any, steps: list[int]) -> tuple[Any, Any, int | None]:
    """``(node, parent list or not-node, index)`` at ``steps`` below the root."""
    parent: Any = None
    index: int | None = None
    node = root
    for step in steps:
        if isinstance(node, dict) and "not" in node:
            if step != 0:
                raise InputError("op", "no such condition")
            parent, index, node = node, 0, node["not"]
            continue
        group = next((node[key] for key in _GROUPS if isinstance(node, dict) and key in node), None)
        if not isinstance(group, list) or not 0 <= step < len(group):
            raise InputError("op", "no such condition")
        parent, index, node = group, step, group[step]
    return node, parent, index


def _steps(path: str) -> list[int]:
    parts = path.split(".")
    if parts[0] != "c" or not all(part.isdigit() for part in parts[1:]):
        raise InputError("op", "no such condition")
    return [int(part) for part in parts[1:]]


_BLANK: Final[dict[str, Any]] = {"field": "", "operator": "eq", "value": ""}


def apply_operation(raw: dict[str, Any], operation: str, *, new_action: str | None) -> None:
    """Change ``raw`` as a builder button asks (``cond-add:c.1``, ``act-remove:2``, ...)."""
    name, _, target = operation.partition(":")
    if name == "cond-root":
        _set_root(raw, target)
    elif name.startswith("cond-"):
        _condition_operation(raw, name, target)
    elif name.startswith("act-"):
        _action_operation(raw, name, target, new_action)
    else:
        raise InputError("op", "unknown operation")


def _set_root(raw: dict[str, Any], kind: str) -> None:
    conditions = raw.get("conditions")
    if kind == "none":
        raw.pop("conditions", None)
    elif kind in _GROUPS:
        raw["conditions"] = {kind: [conditions] if conditions else [dict(_BLANK)]}
    elif kind == "compare":
        raw["conditions"] = dict(_BLANK)
    else:
        raise InputError("op", "unknown operation")


_NEW_CHILD: Final[dict[str, dict[str, Any]]] = {
    "cond-add": _BLANK,
    "cond-add-all": {"all": [_BLANK]},
    "cond-add-any": {"any": [_BLANK]},
    "cond-add-not": {"not": _BLANK},
}


def _condition_operation(raw: dict[str, Any], name: str, target: str) -> None:
    conditions = raw.get("conditions")
    if not isinstance(conditions, dict):
        raise InputError("op", "no such condition")
    node, parent, index = _node_at(conditions, _steps(target))
    if name in _NEW_CHILD:
        group = next((node[key] for key in _GROUPS if isinstance(node, dict) and key in node), None)
        if not isinstance(group, list):
            raise InputError("op", "conditions are added to AND/OR groups")
        if len(group) >= MAX_CHILDREN:
            raise InputError("op", f"a group holds at most {MAX_CHILDREN} conditions")
        # a deep copy: the blank templates are shared
        group.append(orjson.loads(orjson.dumps(_NEW_CHILD[name])))
    elif name == "cond-remove":
        if parent is None:
            raw.pop("conditions", None)
        elif isinstance(parent, list) and index is not None:
            parent.pop(index)
        else:
            parent["not"] = dict(_BLANK)
    else:
        raise InputError("op", "unknown operation")


def _action_operation(raw: dict[str, Any], name: str, target: str, new_action: str | None) -> None:
    actions = raw.setdefault("actions", [])
    if name == "act-add":
        if len(actions) >= MAX_ACTIONS:
            raise InputError("op", f"at most {MAX_ACTIONS} actions")
        actions.append({"type": new_action or "send_email"})
        return
    if not target.isdigit() or not 0 <= int(target) < len(actions):
        raise InputError("op", "no such action")
    position = int(target)
    if name == "act-remove":
        actions.pop(position)
    elif name == "act-up":
        if position > 0:
            actions[position - 1], actions[position] = actions[position], actions[position - 1]
    else:
        raise InputError("op", "unknown operation")


def validate_definition(
    raw: Any, catalog: TriggerCatalog, registry: ActionRegistry
) -> tuple[Definition | None, list[tuple[str, str]]]:
    """The definition, or the ``(field path, reason)`` problems that stop it (the same checks
    as ``eventrules validate``: the model, the trigger catalog, the templates)."""
    try:
        definition = parse_definition(raw, registry=registry)
        if isinstance(definition, Workflow):
            compile_workflow(definition, catalog)
        else:
            compile_rule(definition)
    except DefinitionError as exc:
        return None, exc.problems or [("", str(exc))]
    return definition, []


def field_key(path: str, *, text_conditions: bool = False) -> str:
    """The form field a problem's path concerns (``actions.0.to`` -> ``a.0.p.to``,
    ``conditions.all.1.value`` -> ``c.1.value``); the path itself when no field shows it."""
    parts = path.split(".") if path else []
    if not parts:
        return ""
    if parts[0] == "conditions":
        if text_conditions:
            return "cond.text"
        mapped = ["c"]
        for part in parts[1:]:
            if part in _GROUPS:
                continue
            mapped.append("0" if part == "not" else part)
        return ".".join(mapped)
    if parts[0] == "actions" and len(parts) >= 2 and parts[1].isdigit():
        if len(parts) == 2 or parts[2] == "type":
            return f"a.{parts[1]}.type" if len(parts) > 2 else f"a.{parts[1]}"
        return f"a.{parts[1]}.p.{parts[2]}"
    return parts[0]


def source_text(raw: Any, fmt: str) -> str:
    if fmt == "json":
        return orjson.dumps(raw, option=orjson.OPT_INDENT_2).decode()
    return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)


def definition_from_source(source: str | None, fmt: str) -> Any:
    """The raw document typed into the source view (YAML or JSON, one definition)."""
    if not source or not source.strip():
        raise InputError("source", "required")
    if len(source.encode()) > MAX_DOCUMENT_BYTES:
        raise InputError("source", f"at most {MAX_DOCUMENT_BYTES // 1024} KiB")
    try:
        if fmt == "json":
            return orjson.loads(source)
        return parse_yaml_text(source)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError("source", f"not {fmt.upper()}: {exc}") from None


@dataclass
class EditorState:
    """Everything the editor page shows."""

    kind: str
    mode: str  # form, yaml, json
    raw: dict[str, Any]
    source: str = ""
    is_new: bool = True
    base_offset: int = -1
    base_version: int = 0
    problems: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)
    text_conditions: bool = False

    def add_problems(self, problems: list[tuple[str, str]]) -> None:
        for path, reason in problems:
            key = field_key(path, text_conditions=self.text_conditions)
            if self.mode != "form" or not key:
                self.general.append(f"{path or '<root>'}: {reason}" if path else reason)
            else:
                self.problems.setdefault(key, []).append(reason)
