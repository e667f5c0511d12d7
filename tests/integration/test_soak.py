"""The soak in its CI size: 5,000 events, 5% hostile, through two real workers on the session
broker. 0 exits and the counts reconcile exactly (bench/soak.py runs the full 100,000)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from integration.harness import REPO_ROOT

pytestmark = pytest.mark.integration


def _soak_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("soak", REPO_ROOT / "bench" / "soak.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module
    spec.loader.exec_module(module)
    return module


def test_five_thousand_events_with_hostile_ones_through_two_workers_reconcile(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    soak = _soak_module()
    result = soak.soak(kafka_bootstrap, tmp_path, events=5000, hostile_share=0.05, timeout=300)
    print("\n".join(result.lines()))
    assert result.exits == 0
    assert result.healthy
    assert result.consumed == 5000
    assert result.dead_lettered == result.produced["hostile"] > 0
    assert set(result.dead_reasons) >= {"not_json", "missing_type", "oversized"}
    assert result.executed == result.produced["matched"]
    assert result.unmatched == result.produced["unmatched"]
    assert result.consumed == result.executed + result.unmatched + result.dead_lettered
