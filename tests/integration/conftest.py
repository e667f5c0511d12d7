"""Fixtures for end-to-end tests: a deployment (topics under a unique prefix) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.harness import Deployment


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Deployment]:
    deployed = Deployment(kafka_bootstrap, tmp_path)
    try:
        yield deployed
    finally:
        deployed.close()
