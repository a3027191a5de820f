#!/usr/bin/env python
"""The `hf-vocos` command line as a user runs it, in fresh processes (imports and model loading included).

    python benchmarks/benchmark_cli.py [--sections throughput memory] [--files 48] [--durations 60 3600 36000]
                                       [--markdown out.md]

throughput: a folder of speech-like clips (2-6 s at 24 kHz) through `hf-vocos resynth` and `hf-vocos dataset resynth`
on one and two processes: files/s and seconds of audio per second.
memory: peak resident memory (the process's VmHWM, from wait4) of `resynth` (wav to wav), `analyze` (wav to .npy) and
`synthesize` (.npy to wav) on one file of each duration; files longer than `--long-seconds` (60 s) go from file to
file in blocks, so the peak should not grow with the length.

Both use a release-size mel model with random weights (speed and memory do not depend on the values).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", nargs="+", choices=["throughput", "memory"], default=["throughput", "memory"])
    parser.add_argument("--files", type=int, default=48, help="throughput: number of clips")
    parser.add_argument(
        "--durations", type=float, nargs="+", default=[60, 3600, 36000], help="memory: seconds of audio per file"
    )
    parser.add_argument("--markdown")
    args = parser.parse_args()

    from hf_vocos import VocosConfig, VocosFeatureExtractor, VocosModel, VocosProcessor

    lines = [f"Machine: {machine()}", ""]
    with tempfile.TemporaryDirectory() as folder:
        model = Path(folder) / "model"
        VocosModel(VocosConfig()).save_pretrained(model)
        VocosProcessor(VocosFeatureExtractor()).save_pretrained(model)
        for section in args.sections:
            lines += (throughput if section == "throughput" else memory)(args, model) + [""]
    print("\n".join(lines))
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines))


def machine() -> str:
    name = platform.processor() or platform.machine()
    try:
        info = Path("/proc/cpuinfo").read_text()
        name = next(
            (line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), name
        )
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores, {platform.system()}"


def peak_rss(command: list[str], env: dict) -> tuple[float, float]:
    """(peak resident memory in MB, wall seconds) of a fresh process running `command`."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{command}: exit {process.returncode}\n{stderr.decode()[-3000:]}")
    return usage.ru_maxrss / 1024, elapsed  # kB on Linux


def write_long_wav(path: Path, seconds: float, rate: int = 24000) -> None:
    """A 16-bit wav of `seconds` of speech-like audio, written a minute at a time (one minute of it, repeated)."""
    from conftest import speech_like

    minute = speech_like(60 * rate, rate, seed=7)
    remaining = int(seconds * rate)
    with soundfile.SoundFile(path, "w", rate, 1, subtype="PCM_16") as handle:
        while remaining > 0:
            handle.write(minute[:remaining])
            remaining -= min(remaining, minute.shape[0])


def memory(args, model: Path) -> list[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    hf_vocos = [sys.executable, "-m", "hf_vocos"]
    results: dict[str, list[tuple[float, float]]] = {
        "resynth": [],
        "analyze": [],
        "synthesize": [],
        "resynth, whole file in memory": [],
    }
    for seconds in args.durations:
        with tempfile.TemporaryDirectory() as folder:
            folder = Path(folder)
            write_long_wav(folder / "in.wav", seconds)
            common = ["--model", str(model), "-q"]
            for command, source, target in (
                ("resynth", folder / "in.wav", folder / "resynth.wav"),
                ("analyze", folder / "in.wav", folder / "features.npy"),
                ("synthesize", folder / "features.npy", folder / "synthesized.wav"),
            ):
                results[command].append(peak_rss([*hf_vocos, command, str(source), "-o", str(target), *common], env))
                print(command, seconds, results[command][-1], flush=True)
                if command == "resynth":  # keeps the disk in use to one output at a time
                    frames = soundfile.info(str(target)).frames
                    assert abs(frames - seconds * 24000) < 256, (frames, seconds)
                    target.unlink()
            assert np.load(folder / "features.npy", mmap_mode="r").shape == (100, int(seconds * 24000) // 256 + 1)
            if seconds <= 3600:  # the whole file in memory, decoded in streaming chunks (the CLI's earlier way)
                script = (
                    "import sys, soundfile; from hf_vocos.vocoder import Vocoder; v = Vocoder(sys.argv[1]); "
                    "a, r = soundfile.read(sys.argv[2], dtype='float32'); "
                    "soundfile.write(sys.argv[3], v.resynthesize([v.prepare(a, r)])[0], v.sampling_rate, "
                    "subtype='FLOAT')"
                )
                command = [sys.executable, "-c", script, str(model), str(folder / "in.wav"), str(folder / "mem.wav")]
                results["resynth, whole file in memory"].append(peak_rss(command, env))
    durations = [_duration(seconds) for seconds in args.durations]
    lines = [
        "Peak resident memory (MB) and wall time of one file, release-size mel model, float32, 2 threads:",
        "",
        "| command | " + " | ".join(durations) + f" | {durations[-1]} / {durations[0]} |",
        "|---|" + "---|" * (len(durations) + 1),
    ]
    for command, runs in results.items():
        cells = [f"{rss:.0f} MB ({elapsed:.0f} s)" for rss, elapsed in runs]
        cells += ["not run"] * (len(durations) - len(runs))
        growth = f"{runs[-1][0] / runs[0][0]:.2f}x" if len(runs) == len(durations) else "-"
        lines.append(f"| {command} | " + " | ".join(cells) + f" | {growth} |")
    return lines


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def throughput(args, model: Path) -> list[str]:
    from conftest import speech_like

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        lengths = np.random.default_rng(0).uniform(2, 6, args.files)
        (folder / "audio").mkdir()
        for index, seconds in enumerate(lengths):
            soundfile.write(folder / "audio" / f"{index:03d}.wav", speech_like(int(seconds * 24000), seed=index), 24000)
        audio_seconds = float(lengths.sum())
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
        runs = {
            "hf-vocos resynth (1 process, 2 threads)": [
                sys.executable,
                "-m",
                "hf_vocos",
                "resynth",
                folder / "audio",
                "-o",
                folder / "cli",
            ],
            "hf-vocos dataset resynth (1 process, 2 threads)": [
                sys.executable,
                "-m",
                "hf_vocos",
                "dataset",
                "resynth",
                folder / "audio",
                "-o",
                folder / "ds1",
            ],
            "accelerate launch ... dataset resynth (2 processes x 1 thread)": [
                sys.executable,
                "-m",
                "accelerate.commands.launch",
                "--multi_gpu",
                "--num_processes",
                "2",
                "--num_machines",
                "1",
                "--mixed_precision",
                "no",
                "--dynamo_backend",
                "no",
                "-m",
                "hf_vocos",
                "dataset",
                "resynth",
                folder / "audio",
                "-o",
                folder / "ds2",
            ],
        }
        lines = [
            f"{args.files} files, {audio_seconds:.0f} s of audio (2-6 s clips, 24 kHz), release-size mel model, "
            "float32",
            "",
            "| command | wall time | files/s | audio s/s |",
            "|---|---|---|---|",
        ]
        for name, command in runs.items():
            command = [str(part) for part in command] + ["--model", str(model), "-q"]
            extra = {"OMP_NUM_THREADS": "1"} if "accelerate.commands.launch" in command else {}
            started = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True, env={**env, **extra})
            elapsed = time.perf_counter() - started
            if result.returncode != 0:
                raise RuntimeError(result.stderr[-3000:])
            lines.append(f"| {name} | {elapsed:.1f} s | {args.files / elapsed:.2f} | {audio_seconds / elapsed:.1f} |")
            print(lines[-1], flush=True)
    return lines


if __name__ == "__main__":
    main()
