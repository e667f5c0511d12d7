"""The in-process benchmarks run in their --quick form: they print figures and agree on counts.

No timing is asserted (speed is what the benches print, next to their baselines); a bench exits
non-zero when its engines disagree on match counts, hit counts or prices, which fails here.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run(script: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=BENCH.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_matching_bench_prints_every_workload_with_equal_counts() -> None:
    output = run("bench_matching.py")
    for row in ("general 100", "general 1,000", "skewed 1,000", "nested 1,000"):
        line = next(line for line in output.splitlines() if line.strip().startswith(row))
        assert "k" in line
        assert "x" in line
    assert "zen-engine not installed" not in output
    assert "flatness" in output


def test_rules_bench_prints_both_policies_beside_zen() -> None:
    output = run("bench_rules.py")
    assert "first-hit" in output
    assert "collect (stack)" in output
    assert output.count("eventrules/zen-engine") == 2
    assert output.count("hits ") == 2


def test_readiness_bench_loads_every_definition() -> None:
    output = run("bench_ready.py")
    assert "readiness: 1,000 definitions" in output
    assert "RSS once loaded" in output


def test_instruction_count_bench_counts_the_runner() -> None:
    output = run("bench_instructions.py")
    line = next(line for line in output.splitlines() if "(1.00x the first)" in line)
    assert int(line.split()[1].replace(",", "")) > 10_000  # a real count, not an empty window


def test_cpu_seconds_counts_a_process_and_the_children_its_threads_started() -> None:
    """bench_worker's CPU per event reads /proc: a worker starts its stats keeper from an
    executor thread, so the children of every thread count (not only the main thread's)."""
    sys.path.insert(0, str(BENCH))
    from worker_harness import cpu_seconds  # bench/ is not a package: imported once on its path

    burn = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, threading, time\n"
            f"child = lambda: subprocess.run([sys.executable, '-c', {burn!r}])\n"
            "thread = threading.Thread(target=child); thread.start()\n"
            f"{burn}\n"
            "thread.join(); time.sleep(5)",
        ]
    )
    try:
        seen: list[tuple[float, float]] = []
        for _ in range(40):  # while the child burns, it is a live child of the thread
            seen.append(cpu_seconds(parent.pid))
            time.sleep(0.1)
        own = max(own for own, _ in seen)
        children = max(children for _, children in seen)
    finally:
        parent.kill()
        parent.wait()
    assert own >= 0.5, seen
    assert children >= 0.3, seen
    assert cpu_seconds(parent.pid) == (0.0, 0.0), "a process gone counts nothing"
