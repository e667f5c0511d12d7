"""Fixtures for end-to-end tests: a deployment (topics under a unique prefix) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from integration.harness import Deployment


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Deployment]:
    deployed = Deployment(kafka_bootstrap, tmp_path)
    try:
        yield deployed
    finally:
        deployed.close()


@pytest.fixture
def runner(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI runner whose commands talk to the test's deployment."""
    monkeypatch.setenv("EVENTRULES_BOOTSTRAP_SERVERS", deployment.bootstrap)
    monkeypatch.setenv("EVENTRULES_TOPIC_PREFIX", deployment.prefix)
    return CliRunner()
