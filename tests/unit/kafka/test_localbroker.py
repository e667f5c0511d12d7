"""Where the local broker's jars go: beside a checkout's pom, or the user cache for the wheel's."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from eventrules.kafka.localbroker import LocalBroker


def test_a_checkout_pom_keeps_its_jars_beside_it(tmp_path: Path) -> None:
    pom = tmp_path / "kafka" / "pom.xml"
    pom.parent.mkdir()
    pom.write_text("<project/>")
    jars = pom.parent / "target" / "dependency"
    jars.mkdir(parents=True)
    (jars / "kafka_2.13-4.1.1.jar").write_bytes(b"")  # resolved already: Maven is not run
    assert LocalBroker(pom=pom).jars_dir() == jars


def test_the_installed_pom_resolves_its_jars_into_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = tmp_path / "site-packages" / "eventrules" / "shipped"
    pom = shipped / "kafka" / "pom.xml"
    pom.parent.mkdir(parents=True)
    pom.write_text("<project/>")
    monkeypatch.setattr("eventrules.kafka.localbroker.SHIPPED_DIR", shipped)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # One folder per pom content, so a new Kafka version never mixes with the old jars.
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
    jars = tmp_path / "cache" / "eventrules" / f"kafka-jars-{digest}"
    jars.mkdir(parents=True)
    (jars / "kafka_2.13-4.1.1.jar").write_bytes(b"")
    assert LocalBroker(pom=pom).jars_dir() == jars
    assert not (pom.parent / "target").exists()
