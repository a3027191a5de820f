"""The benchmark script stays runnable: its per-process feature probes (which the feature table is built from) run and
report what the table expects. The timings themselves are not asserted (they belong in docs/benchmarks.md)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "benchmark_inference.py"


def run_script(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run the benchmark script with `args`; it must succeed."""
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def last_json(*args: str) -> object:
    """What a probe prints last, as JSON."""
    return json.loads(run_script(*args).stdout.strip().splitlines()[-1])


def section_table(tmp_path: Path, *args: str, timeout: int = 300) -> str:
    """The markdown the script writes for `args` (sections to run and their options)."""
    table = tmp_path / "table.md"
    run_script(*args, "--markdown", str(table), timeout=timeout)
    return table.read_text()


def needs_original() -> None:
    if importlib.util.find_spec("vocos") is None:  # the original implementation, timed beside ours
        pytest.skip("the original vocos package is not installed")


@pytest.mark.parametrize("library, calls", [("ours", 10), ("librosa", 10), ("mixed", 25)])
def test_feature_probe_reports_one_time_per_call(library, calls):
    pytest.importorskip("librosa")  # the probes build both libraries' calls
    times = last_json("--feature-probe", library, "--seconds", "1", "--batch", "2", "--repeats", "1")
    assert len(times) == calls and all(isinstance(value, float) and 0 < value < 10 for value in times)


def test_help_lists_the_sections_and_hides_the_probes():
    result = run_script("--help")
    assert "--sections" in result.stdout and "--feature-probe" not in result.stdout  # the probes are internal


def test_accelerator_section_runs_on_the_cpu(tmp_path):
    """The GPU table's code path (device placement, synchronised timing, fp16/bf16 rows with their SNR), run on the
    CPU with one tiny configuration, so that a session with a GPU only has to pass `--device cuda`."""
    needs_original()
    text = section_table(
        tmp_path, "--sections", "accelerator", "--device", "cpu", "--models", "mel", "--durations", "0.5",
        "--gpu-batch-sizes", "2", "--repeats", "1",
    )
    rows = [line for line in text.splitlines() if line.startswith("| mel | 0.5 s x 2 |")]
    assert [row.split(" | ")[2] for row in rows] == ["ours fp32", "ours fp16", "ours bf16"]
    assert "SNR" not in rows[0] and all("dB vs fp32" in row for row in rows[1:])


def test_op_times_and_packing_sections_run(tmp_path):
    """The per-operator breakdown (the model's own kernels told apart) and the packed-weights table, on 0.5 s."""
    needs_original()
    from hf_vocos.capabilities import tiled_cpu_path_preferred

    if not tiled_cpu_path_preferred():  # the breakdown names the tiled path's kernels
        pytest.skip("this CPU takes the plain path (the tiled one is chosen on AVX-512 x86 only)")
    text = section_table(
        tmp_path, "--sections", "op-times", "packing", "--models", "encodec", "--durations", "0.5", "--repeats", "1",
        timeout=600,
    )
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| encodec | 0.5 s |")]
    operators = {row[3] for row in rows if len(row) == 6}
    assert {"whole forward (untimed / timed)", "conv2d, depthwise", "linear (oneDNN) + residual add"} <= operators
    packing = [row for row in rows if len(row) == 8]
    assert [row[2] for row in packing] == ["float32", "bfloat16"]
    assert all(row[6].endswith(" MB") and row[7].endswith(" MB |") for row in packing)


def test_streaming_section_compares_pushes_with_the_originals_windowed_decode(tmp_path):
    """Per-push time of the streaming decoder against the original decoding each chunk with its context, per chunk,
    for both models (the EnCodec one pushing codes)."""
    needs_original()
    text = section_table(tmp_path, "--sections", "streaming", "--repeats", "1", timeout=600)
    rows = [line.split(" | ") for line in text.splitlines() if " ms of audio) |" in line]
    assert [(row[0], row[1].split()[0]) for row in rows] == [
        (model, chunk) for model in ("| mel", "| encodec") for chunk in ("1", "16", "64", "256", "1024")
    ]
    for row in rows:
        original, ours, ratio = (float(cell.rstrip("msx ")) for cell in row[2:5])
        assert ratio == pytest.approx(original / ours, rel=0.06)  # (each printed to one decimal)
        frame_rate = 93.75 if row[0] == "| mel" else 75.0
        assert row[6] == f"{(27 + int(row[1].split()[0])) * 1000 / frame_rate:.0f} ms |"


def test_target_probe_reports_the_three_timings_and_the_snr():
    """The `targets` section's per-process probe (run here on 1 s instead of 60 s): the original's, our float32 and
    our bfloat16 time, and the bfloat16 output's SNR, which must hold the 30 dB bound."""
    needs_original()
    run = last_json("--target-probe", "mel", "--seconds", "1", "--repeats", "1")
    assert sorted(run) == ["bf16", "fp32", "original", "snr"]
    assert all(0 < run[key] < 60 for key in ("bf16", "fp32", "original")) and run["snr"] >= 30


@pytest.mark.parametrize("which", ["original", "ours fp32", "ours bf16"])
def test_fault_probe_reports_faults_and_time(which):
    """The `page-faults` section's per-process probe (1 s instead of 60 s): page faults and time per forward."""
    needs_original()
    run = last_json("--fault-probe", "encodec", which, "--seconds", "1")
    assert sorted(run) == ["faults", "ms"] and run["faults"] >= 0 and 0 < run["ms"] < 60_000


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sections", "feature"], "invalid choice: 'feature'"),
        (["--repeats", "0"], "--repeats 0: expected at least 1"),
        (["--processes", "0"], "--processes 0: expected at least 1"),
        (["--gpu-batch-sizes", "0"], "--gpu-batch-sizes/--tile-sizes must be at least 1"),
        (["--tile-sizes", "0"], "--tile-sizes must be at least 1"),
        (["--device", "gpu!"], "--device 'gpu!': not a torch device"),
        (["--fault-probe", "mel", "ours fp16"], "--fault-probe 'mel' 'ours fp16': expected"),
        (["--packing-probe", "mel", "float16", "on"], "--packing-probe 'mel' 'float16' 'on': expected"),
    ],
)
def test_bad_arguments_are_refused_before_any_run(args, message):
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]


def test_stages_section_runs_on_the_cpu(tmp_path):
    """The per-part breakdown of a forward (what found the GPU's per-call envelope cost), on one tiny configuration."""
    needs_original()
    text = section_table(
        tmp_path, "--sections", "stages", "--device", "cpu", "--models", "mel", "--durations", "0.5",
        "--gpu-batch-sizes", "1", "--repeats", "1",
    )
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| mel | 0.5 s x 1 |")]
    assert [row[2] for row in rows] == [
        "original forward", "ours forward", "ours input checks", "ours backbone", "ours head", "ours synthesize",
        "original backbone", "original head",
    ]
    assert all(float(row[3].rstrip(" |")) > 0 for row in rows)


def test_kernel_section_counts_the_accelerator_path_on_the_cpu(tmp_path):
    """The kernel count of a forward: on the CPU, ours runs its accelerator path (one fold, one polar, no tiles), and
    the EnCodec norms look nothing up."""
    needs_original()
    text = section_table(tmp_path, "--sections", "kernels", "--models", "encodec", "--durations", "0.5")
    rows = {row[2]: row for row in (line.split(" | ") for line in text.splitlines()) if row[0] == "| encodec"}
    assert set(rows) == {"original", "ours"}
    ours = rows["ours"][5]
    assert "col2im 1" in ours and "polar 1" in ours and "embedding " not in ours
    assert int(rows["ours"][3]) < int(rows["original"][3])  # the original looks up 19 norm rows, among others


def test_experiment_sections_run(tmp_path):
    """The dropped experiments docs/benchmarks.md reports (other tile sizes, the blocks as wavefronts, the second
    product in place, depthwise-convolution and head variants), on 25 s (two 1024-frame tiles, so the wavefronts
    overlap): each row is there, the wavefronts give the same output as block after block, the in-place convolution
    the same sum, and every variant the same values to float32 rounding."""
    needs_original()
    text = section_table(
        tmp_path, "--sections", "tile-sizes", "block-order", "second-product", "depthwise", "head-alternatives",
        "--models", "encodec", "--durations", "25", "--repeats", "1", "--tile-sizes", "64", "1024",
    )
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| encodec |")]
    tiles = [row for row in rows if len(row) == 4 and row[2] in ("float32", "bfloat16")]
    assert [row[2] for row in tiles] == ["float32", "bfloat16"]
    assert all(row[3].startswith("64: ") and ", 1024: " in row[3] for row in tiles)
    order = [row for row in rows if len(row) == 6 and row[1] == "25 s x 1" and row[2].endswith(" ms")]
    assert len(order) == 1 and order[0][5] == "yes |"
    product = [row for row in rows if len(row) == 7 and row[1].endswith(" us")]
    assert len(product) == 1 and product[0][6] == "yes |"
    depthwise = [row for row in rows if len(row) == 6 and row[1] == "25 s x 1" and not row[2].endswith(" ms")]
    assert [row[2] for row in depthwise] == [
        "the model's (channels-last, width)", "the same call again (warm)", "right after a copy of its input",
        "seven shifted multiply-adds", "along the image's height",
    ]
    assert all(float(row[5].rstrip(" |")) < 1e-3 for row in depthwise)
    head = [row for row in rows if len(row) == 7 and row[1] in ("spectrum", "inverse FFT")]
    assert [row[1] for row in head] == ["spectrum"] * 3 + ["inverse FFT"] * 3
    assert all(float(row[6].rstrip(" |")) < 1e-4 for row in head)
