"""CI runs the worker benchmark's general and scale-out parts in their reduced form: every
execution record is checked against the matches worked out in-process (the figures themselves
are read by people, never asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from integration.harness import REPO_ROOT

pytestmark = pytest.mark.integration


def worker_complaints(log_dir: Path) -> str:
    """The workers' log lines above INFO, to tell why a run failed."""
    return "\n".join(
        f"{log.name}: {line}"
        for log in sorted(log_dir.glob("*.log"))
        for line in log.read_text(errors="replace").splitlines()
        if '"level":"WARNING"' in line or '"level":"ERROR"' in line
    )


def test_bench_worker_quick_general_and_scaleout_lose_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
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
            "--log-dir",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout
    assert result.returncode == 0, output + result.stderr + worker_complaints(tmp_path)
    assert re.search(r"worker/passthrough = \d+\.\d\d \(target >= 0\.4\)", output), output
    # a --quick run may be too short for CPU figures (10 ms clock ticks): it says so
    assert re.search(r"CPU per event(: worker [\d.]+ us \+ its stats keeper| not measured)", output)
    checks = re.findall(
        r"([\d,]+) execution records for ([\d,]+) expected matches: (\d+) lost, (\d+) duplicates, "
        r"(\d+) unexpected",
        output,
    )
    # the general run, compiled then pure Python, then one line per group: 1 and 2 processes
    # settled before their events, 2 joining while the first works
    assert len(checks) == 5, output
    assert re.search(r"pure-Python worker .* pure Python: EVENTRULES_PURE_PYTHON is set", output)
    for _records, expected, lost, _duplicates, unexpected in checks:
        assert int(expected.replace(",", "")) > 2_000
        assert (lost, unexpected) == ("0", "0"), output
    assert re.search(r"1 / 2 processes: [\d,]+ / [\d,]+ events/s", output), output
    assert "partitions held 48/48" in output
    # the settled group of two split the events: each process consumed some of them
    two = re.search(
        r"  2 processes {3,}[\d,]+ events/s.*\n"
        r"      partitions held 48/48, events consumed ([\d,]+)/([\d,]+)",
        output,
    )
    assert two, output
    assert all(int(n.replace(",", "")) > 0 for n in two.groups()), two.group(0)
    assert re.search(r"  2 processes joining ", output), output
