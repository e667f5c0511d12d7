"""CI runs the worker benchmark's general and scale-out parts in their reduced form: every
execution record is checked against the matches worked out in-process (the figures themselves
are read by people, never asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from integration.harness import REPO_ROOT

pytestmark = pytest.mark.integration


def test_bench_worker_quick_general_and_scaleout_lose_nothing(kafka_bootstrap: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "bench/bench_worker.py",
            "--quick",
            "--only",
            "general,scaleout",
            "--warmup-seconds",
            "0",
            "--bootstrap",
            kafka_bootstrap,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert re.search(r"worker/passthrough = \d+\.\d\d \(target >= 0\.4\)", output), output
    checks = re.findall(
        r"([\d,]+) execution records for ([\d,]+) expected matches: (\d+) lost, (\d+) duplicates, "
        r"(\d+) unexpected",
        output,
    )
    # the general run, then one line per process count (1 and 2 in the quick form)
    assert len(checks) == 3, output
    for _records, expected, lost, _duplicates, unexpected in checks:
        assert int(expected.replace(",", "")) > 2_000
        assert (lost, unexpected) == ("0", "0"), output
    assert re.search(r"1 / 2 processes: [\d,]+ / [\d,]+ events/s", output), output
    assert "partitions held 48/48" in output
