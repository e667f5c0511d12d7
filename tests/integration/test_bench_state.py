"""CI runs the state benchmark in its reduced form: restore, restart and decisions complete and
print their figures (the figures themselves are read by people, never asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from integration.harness import REPO_ROOT

pytestmark = pytest.mark.integration


def test_bench_state_quick_restores_every_key(kafka_bootstrap: str) -> None:
    result = subprocess.run(
        [sys.executable, "bench/bench_state.py", "--quick", "--bootstrap", kafka_bootstrap],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout
    assert re.search(r"changelog: 20,000 keys over 6 partitions", output), output
    assert re.search(
        r"restore into empty SQLite stores: 20,000 records .* 20,000 keys held", output
    )
    assert "restart on the same host (local files kept): 0 records read" in output
    assert re.search(r"decisions: 5,000 throttle requests over 500 keys: [\d,]+/s", output)
