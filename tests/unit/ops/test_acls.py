"""The least-privilege ACLs: one table in code, the README's copy of it, and the bindings."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from eventrules.errors import OperationError
from eventrules.ops.acls import COMPONENTS, acl_bindings, grants
from eventrules.settings import Settings

README = Path(__file__).resolve().parents[3] / "README.md"
PLACEHOLDERS = Settings(topic_prefix="<prefix>", app_id="<app>")


def _readme_rows() -> list[str]:
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("<!-- acl-table"))
    rows = []
    for line in lines[start + 3 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_the_readme_acl_table_is_the_one_the_code_grants() -> None:
    expected = [
        f"| {component} | {g.resource} | {g.pattern} | `{g.name}` | {', '.join(g.operations)} |"
        for component in COMPONENTS
        for g in grants(component, PLACEHOLDERS, topic="<topic>")
    ]
    assert sorted(_readme_rows()) == sorted(expected)


def test_components_get_only_their_own_topics() -> None:
    producer = grants("producer", PLACEHOLDERS, topic="events.orders")
    assert [(g.name, g.operations) for g in producer] == [
        ("<prefix>events.orders", ("WRITE", "DESCRIBE"))
    ]
    publisher_topics = {g.name for g in grants("publisher", PLACEHOLDERS) if g.resource == "topic"}
    assert publisher_topics == {"<prefix>config", "<prefix>config-audit"}
    worker = grants("worker", PLACEHOLDERS)
    assert not any(g.name.endswith("config-audit") for g in worker)
    # the state topics carry runs to make: the workers' alone
    state = {"<prefix>state-repartition", "<prefix>state-changelog"}
    assert state <= {g.name for g in worker if "WRITE" in g.operations}
    for component in ("publisher", "console"):
        assert not state & {g.name for g in grants(component, PLACEHOLDERS)}
    # readers' private groups never cover the workers' own groups
    private = [g for g in grants("publisher", PLACEHOLDERS) if g.resource == "group"]
    assert [g.name for g in private] == ["eventrules-private-"]


def test_bindings_are_one_allow_per_operation() -> None:
    bindings = acl_bindings(grants("producer", PLACEHOLDERS, topic="events.orders"), "User:shop")
    assert [(b.restype, b.resource_pattern_type, b.operation) for b in bindings] == [
        (ResourceType.TOPIC, ResourcePatternType.LITERAL, AclOperation.WRITE),
        (ResourceType.TOPIC, ResourcePatternType.LITERAL, AclOperation.DESCRIBE),
    ]
    assert {b.principal for b in bindings} == {"User:shop"}


def test_bad_requests_are_refused() -> None:
    with pytest.raises(OperationError, match="--topic"):
        grants("producer", PLACEHOLDERS)
    with pytest.raises(OperationError, match="unknown component"):
        grants("dba", PLACEHOLDERS)
    with pytest.raises(OperationError, match="User:<name>"):
        acl_bindings(grants("worker", PLACEHOLDERS), "worker")
