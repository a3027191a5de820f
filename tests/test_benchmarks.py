"""The benchmark script stays runnable: its per-process feature probes (which the feature table is built from) run and
report what the table expects. The timings themselves are not asserted (they belong in docs/benchmarks.md)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "benchmark_inference.py"


@pytest.mark.parametrize("library, calls", [("ours", 10), ("librosa", 10), ("mixed", 25)])
def test_feature_probe_reports_one_time_per_call(library, calls):
    pytest.importorskip("librosa")  # the probes build both libraries' calls
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--feature-probe", library, "--seconds", "1", "--batch", "2", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    times = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(times) == calls and all(isinstance(value, float) and 0 < value < 10 for value in times)


def test_help_lists_the_sections_and_hides_the_probes():
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--sections" in result.stdout and "--feature-probe" not in result.stdout  # the probes are internal
