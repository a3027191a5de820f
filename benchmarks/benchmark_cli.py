#!/usr/bin/env python
"""Throughput of the `hf-vocos` command line and of `hf-vocos dataset` on one and two processes.

    python benchmarks/benchmark_cli.py [--files 48] [--markdown out.md]

Writes a folder of speech-like clips (2-6 s at 24 kHz) and a release-size mel model with random weights (speed does not
depend on the values), then times each command end to end as a user runs it (a fresh process: imports and model
loading included), and reports files/s and seconds of audio per second.
"""

from __future__ import annotations

import argparse
import os
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
    parser.add_argument("--files", type=int, default=48)
    parser.add_argument("--markdown")
    args = parser.parse_args()

    from conftest import speech_like

    from hf_vocos import VocosConfig, VocosFeatureExtractor, VocosModel, VocosProcessor

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        lengths = np.random.default_rng(0).uniform(2, 6, args.files)
        (folder / "audio").mkdir()
        for index, seconds in enumerate(lengths):
            soundfile.write(folder / "audio" / f"{index:03d}.wav", speech_like(int(seconds * 24000), seed=index), 24000)
        VocosModel(VocosConfig()).save_pretrained(folder / "model")
        VocosProcessor(VocosFeatureExtractor()).save_pretrained(folder / "model")
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
            command = [str(part) for part in command] + ["--model", str(folder / "model"), "-q"]
            extra = {"OMP_NUM_THREADS": "1"} if "accelerate.commands.launch" in command else {}
            started = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True, env={**env, **extra})
            elapsed = time.perf_counter() - started
            if result.returncode != 0:
                raise RuntimeError(result.stderr[-3000:])
            lines.append(f"| {name} | {elapsed:.1f} s | {args.files / elapsed:.2f} | {audio_seconds / elapsed:.1f} |")
            print(lines[-1], flush=True)
    print("\n".join(lines))
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
