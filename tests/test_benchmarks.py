"""The benchmark script stays runnable: each section runs on tiny sizes and writes the table docs/benchmarks.md shows.
The timings themselves are not asserted (they belong in docs/benchmarks.md, measured on a quiet machine)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "benchmark_inference.py"


def run_script(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def table_rows(tmp_path: Path, *args: str) -> list[list[str]]:
    """The data rows of the markdown the script writes for `args`, as cells."""
    run_script(*args, "--markdown", str(tmp_path / "table.md"))
    lines = (tmp_path / "table.md").read_text().splitlines()
    assert lines[0].startswith("Machine: ")
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in lines
        if line.startswith("| ") and not line.startswith("| model") and not line.startswith("| mode")
    ]


def needs_original() -> None:
    if importlib.util.find_spec("vocos") is None:  # the original implementation, timed beside ours
        pytest.skip("the original vocos package is not installed")


def test_help_lists_the_sections_and_hides_the_probe():
    result = run_script("--help")
    assert all(name in result.stdout for name in ("speed", "paths", "busy", "streaming", "memory", "onnx"))
    assert "--memory-probe" not in result.stdout


def test_speed_and_paths_sections(tmp_path):
    needs_original()
    rows = table_rows(tmp_path, "--sections", "speed", "paths", "--durations", "0.5", "--repeats", "1")
    speed = [row for row in rows if len(row) == 9 and row[1].endswith("x 1")]
    assert [(row[0], row[2].split()[1]) for row in speed] == [
        ("mel", "float32"),
        ("mel", "bfloat16"),
        ("encodec", "float32"),
        ("encodec", "bfloat16"),
    ]
    assert all(row[1] == "0.5 s x 1" and row[5].endswith("x") for row in speed)
    assert float(speed[0][7]) < 1e-4 and float(speed[2][7]) < 1e-4  # float32: the original's audio
    assert all(float(row[7].removesuffix(" dB")) > 30 for row in (speed[1], speed[3]))  # bfloat16: its SNR bound
    paths = [row for row in rows if len(row) == 9 and not row[1].endswith("x 1")]
    assert [row[0] for row in paths] == ["mel", "encodec"] and all(
        row[8] in ("eager", "cpu_tiled", "packing", "no packing", "accelerator") for row in paths
    )


def test_busy_neighbour_section(tmp_path):
    """The shared-machine rows: default threads and one thread, each model, and what "auto" picks there."""
    needs_original()
    rows = table_rows(tmp_path, "--sections", "busy", "--durations", "0.5", "--repeats", "1")
    import torch

    threads = sorted({torch.get_num_threads(), 1}, reverse=True)
    assert [(row[0], int(row[2])) for row in rows] == [(model, t) for t in threads for model in ("mel", "encodec")]
    assert all(row[4].endswith("x)") and row[7] in ("eager", "cpu_tiled") for row in rows)


def test_streaming_section(tmp_path):
    needs_original()
    rows = table_rows(tmp_path, "--sections", "streaming", "--chunks", "1", "16", "--repeats", "1")
    assert [(row[0], row[1].split()[0]) for row in rows] == [
        ("mel", "1"),
        ("mel", "16"),
        ("encodec", "1"),
        ("encodec", "16"),
    ]
    frame_rates = {"mel": 93.75, "encodec": 75.0}
    for row in rows:
        assert row[6] == f"{(27 + int(row[1].split()[0])) * 1000 / frame_rates[row[0]]:.0f} ms"  # 27 frames of context


def test_memory_section(tmp_path):
    rows = table_rows(tmp_path, "--sections", "memory", "--memory-minutes", "0.2")
    assert [row[0] for row in rows] == ["stream", "decode_chunked", "forward"]
    assert all(row[1].endswith(")") and row[3].endswith("x") for row in rows)


def test_onnx_section(tmp_path):
    needs_original()
    pytest.importorskip("onnxruntime")
    rows = table_rows(tmp_path, "--sections", "onnx", "--models", "mel", "--durations", "0.5", "--repeats", "1")
    assert len(rows) == 1 and rows[0][:2] == ["mel", "0.5 s"] and float(rows[0][6]) < 1e-4


@pytest.mark.slow
def test_cli_memory_section(tmp_path):
    """benchmarks/benchmark_cli.py's memory table: each command's peak RSS for each duration, and the growth (45 s:
    eight fresh processes with the release-size model)."""
    script = SCRIPT.parent / "benchmark_cli.py"
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--sections",
            "memory",
            "--durations",
            "2",
            "70",
            "--markdown",
            tmp_path / "m.md",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [
        line.strip("|").split("|") for line in (tmp_path / "m.md").read_text().splitlines() if line.startswith("| ")
    ]
    assert [row[0].strip() for row in rows[1:]] == ["resynth", "analyze", "synthesize", "resynth, whole file in memory"]
    assert all(row[1].strip().endswith("s)") and row[3].strip().endswith("x") for row in rows[1:])
