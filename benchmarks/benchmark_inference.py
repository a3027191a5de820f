#!/usr/bin/env python
"""Inference speed and memory of hf_vocos against the original vocos implementation, measured in one run.

    python benchmarks/benchmark_inference.py                  # everything (about 15 minutes on 2 CPU cores)
    python benchmarks/benchmark_inference.py --quick          # 1 s and 10 s, batch 1, no compile (a minute)
    python benchmarks/benchmark_inference.py --markdown out.md

Both implementations run the release sizes of vocos-mel-24khz and vocos-encodec-24khz with the same random weights
(speed does not depend on the values); the original is built from its own classes as tests/reference.py does.
Every configuration times the original and each hf_vocos variant interleaved, repeat after repeat, and reports
medians: ratio = original time / our time (higher is better), RTF = our time / audio duration. The matmul ceiling is
the time of the model's matmuls alone (same shapes, tiles and weights, back to back): what the machine's matmul
throughput allows.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import RELEASE_ENCODEC  # noqa: E402  (tests/conftest.py: the released EnCodec model's config)

from hf_vocos import VocosConfig, VocosFeatureExtractor, VocosModel  # noqa: E402
from hf_vocos.conversion import convert_original_state_dict  # noqa: E402
from hf_vocos.feature_extraction_vocos import usable_device  # noqa: E402

BANDWIDTH = 6.0
SECTIONS = [
    "speed", "cpu-paths", "targets", "page-faults", "ceiling", "op-times", "packing", "features", "feature-stages", "feature-alternatives", "feature-interference",
    "streaming", "memory", "onnx", "kernels", "accelerator", "stages", "tile-sizes", "block-order", "second-product", "depthwise", "head-alternatives",
]
# Not run by default: the device sections (for --device) and experiments the model does not use (docs/benchmarks.md).
NOT_DEFAULT = ("accelerator", "stages", "tile-sizes", "block-order", "second-product", "depthwise", "head-alternatives")


# --------------------------------------------------------------------------------------------------------------------
# helpers


def machine(device: str = "cpu") -> str:
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
        flags = Path("/proc/cpuinfo").read_text()
        extensions = [flag for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {flag}" in flags]
    except OSError:
        extensions = []
    return (
        f"{name}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"{', '.join(extensions) or 'no AVX info'}"
        + (f"; {torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}" if torch.device(device).type == "cuda" else "")
    )


def interleaved(functions: dict, repeats: int) -> dict:
    """Median seconds of each function, timed in turn, `repeats` rounds, after one warm-up call each."""
    for function in functions.values():
        function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def snr_db(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    return float(10 * torch.log10(reference.square().sum() / (reference - estimate).square().sum()))


def matmul_workload(model: VocosModel, frames: int):
    """The model's matmuls alone, at the shapes it runs them, back to back: the input convolution as a
    (frames, channels x kernel) @ (channels x kernel, hidden) product, each block's two MLP matmuls over the model's
    tiles of frames, the head's projection as its two halves over the same tiles. Its time is the floor the machine's matmul
    throughput sets; returns (call, FLOPs)."""
    config, dtype = model.config, model.dtype
    generator = torch.Generator().manual_seed(0)
    embed_in = torch.randn(frames, config.input_channels * config.input_kernel_size, generator=generator).to(dtype)
    embed_weight = model.backbone.embed.weight.reshape(config.hidden_size, -1).t()
    hidden = torch.randn(frames, config.hidden_size, generator=generator).to(dtype)
    inner = torch.randn(frames, config.intermediate_size, generator=generator).to(dtype)
    from hf_vocos.modeling_vocos import _MLP_TILE_FRAMES as tile
    from hf_vocos.modeling_vocos import _packed_mlp_weights, _uses_packed_linear

    tiles = [(start, min(start + tile, frames)) for start in range(0, frames, tile)]
    flops = 2 * frames * embed_weight.shape[0] * embed_weight.shape[1]
    flops += len(model.backbone.convnext) * 4 * frames * config.hidden_size * config.intermediate_size
    flops += 2 * frames * config.hidden_size * (config.n_fft + 2)

    residual = torch.randn(frames, config.hidden_size, generator=generator).to(dtype)
    blocks = []
    for block in model.backbone.convnext:
        # The kernels the model uses: oneDNN's linear on packed weights where available (without the fused GELU;
        # with the fused residual add), else the plain products.
        if _uses_packed_linear(block, block.pwconv1.weight):
            first, second, second_bias = _packed_mlp_weights(block)
            blocks.append(
                (
                    lambda inputs, first=first, bias=block.pwconv1.bias: torch.ops.mkldnn._linear_pointwise(
                        inputs, first, bias, "none", [], ""
                    ),
                    lambda inputs, start, end, second=second, bias=second_bias: torch.ops.mkldnn._linear_pointwise.binary(
                        inputs, residual[start:end], second, bias, "add"
                    ),
                )
            )
        else:
            blocks.append(
                (
                    lambda inputs, layer=block.pwconv1: torch.nn.functional.linear(inputs, layer.weight, layer.bias),
                    lambda inputs, start, end, layer=block.pwconv2: torch.nn.functional.linear(
                        inputs, layer.weight, layer.bias
                    ),
                )
            )

    # The head's projection as CPU inference runs it (its two halves, packed where available).
    head_packed = _uses_packed_linear(model.head, model.head.out.weight)

    def run():
        embed_in @ embed_weight
        for first_product, second_product in blocks:
            for start, end in tiles:
                first_product(hidden[start:end])
                second_product(inner[start:end], start, end)
        for start, end in tiles:
            model.head._projection_halves(hidden[start:end], head_packed)

    return run, flops


# --------------------------------------------------------------------------------------------------------------------
# models


def build_pair(variant: str):
    """(original, ours) at release sizes with the same random weights."""
    import reference

    if variant == "mel":
        original = reference.build_mel_vocos(seed=0)
        config = VocosConfig()
    else:
        original = reference.build_encodec_vocos(seed=0)
        config = VocosConfig(**RELEASE_ENCODEC)
    weights, _ = convert_original_state_dict(original.state_dict())
    ours = VocosModel(config).eval()
    ours.load_state_dict(weights)
    return original, ours


def copy_of(ours: VocosModel, dtype: torch.dtype, device: str | torch.device = "cpu") -> VocosModel:
    """A separate model with `ours`'s weights, cast to `dtype` (and moved to `device`), in eval mode."""
    model = VocosModel(ours.config).eval()
    model.load_state_dict(ours.state_dict())
    return model.to(device=device, dtype=dtype)


def make_inputs(ours: VocosModel, seconds: float, batch_size: int, seed: int = 0, device: str | torch.device = "cpu"):
    """Random codes (at BANDWIDTH) or log-mel-like features for `seconds` of audio, made on the CPU, then on `device`."""
    frames = int(round(seconds * ours.config.frame_rate))
    generator = torch.Generator().manual_seed(seed)
    if ours.config.is_codes_model:
        codes = torch.randint(0, 1024, (ours.config.num_quantizers_for_bandwidth(BANDWIDTH), batch_size, frames), generator=generator)
        return {"codes": codes.to(device), "bandwidth": BANDWIDTH}
    return {"input_features": (torch.randn(batch_size, 100, frames, generator=generator) - 4.0).to(device)}


def model_input(inputs: dict) -> torch.Tensor:
    """The frames `make_inputs` made (codes or features), without the bandwidth: what a streaming decoder is pushed."""
    return inputs["codes"] if "codes" in inputs else inputs["input_features"]


def original_call(original, ours, inputs):
    """The original decoding the same input: codes_to_features + decode, or decode."""
    if "codes" in inputs:
        bandwidth_id = torch.tensor([ours.config.bandwidth_index(inputs["bandwidth"])], device=inputs["codes"].device)
        return lambda: original.decode(original.codes_to_features(inputs["codes"]), bandwidth_id=bandwidth_id)
    return lambda: original.decode(inputs["input_features"])


# --------------------------------------------------------------------------------------------------------------------
# sections


def speed_section(args, rows: list) -> None:
    # Both dtypes and both models' compiled forwards share code objects: without room for their recompilations dynamo
    # would fall back to eager for the later configurations, silently.
    limit = "recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit") else "cache_size_limit"  # torch < 2.6
    setattr(torch._dynamo.config, limit, max(getattr(torch._dynamo.config, limit), 64))
    for variant in args.models:
        original, ours = build_pair(variant)
        half = copy_of(ours, torch.bfloat16)
        compiled = torch.compile(ours, dynamic=True) if args.compile else None
        compiled_half = torch.compile(half, dynamic=True) if args.compile else None
        for seconds in args.durations:
            for batch_size in args.batch_sizes:
                inputs = make_inputs(ours, seconds, batch_size)
                functions = {"original fp32": original_call(original, ours, inputs)}
                functions["ours fp32"] = lambda: ours(**inputs)
                functions["ours bf16"] = lambda: half(**inputs)
                if compiled is not None:
                    functions["ours fp32 compiled"] = lambda: compiled(**inputs)
                    functions["ours bf16 compiled"] = lambda: compiled_half(**inputs)
                repeats = args.repeats if seconds * batch_size <= 60 else max(3, args.repeats // 2)
                with torch.inference_mode():
                    times = interleaved(functions, repeats)
                    reference_audio = ours(**inputs).audio
                    bf16_snr = snr_db(reference_audio, half(**inputs).audio)
                    error = float((reference_audio - functions["original fp32"]()).abs().max())
                audio_seconds = seconds * batch_size
                for name, seconds_taken in times.items():
                    if name == "original fp32":
                        continue
                    rows.append(
                        {
                            "model": variant,
                            "audio": f"{seconds:g} s x {batch_size}",
                            "variant": name,
                            "original ms": times["original fp32"] * 1000,
                            "ours ms": seconds_taken * 1000,
                            "ratio": times["original fp32"] / seconds_taken,
                            "RTF": seconds_taken / audio_seconds,
                            "note": f"SNR {bf16_snr:.1f} dB vs fp32" if "bf16" in name else f"max abs diff {error:.1e}",
                        }
                    )
                    print_row(rows[-1])


def target_probe(variant: str, repeats: int, seconds: float = 60) -> None:
    """One process's batch-1 timings on `seconds` of audio (60 in the section), each the median of `repeats`
    interleaved rounds, of the original in float32 and ours in float32 and bfloat16, with the bfloat16 SNR, as JSON."""
    original, ours = build_pair(variant)
    half = copy_of(ours, torch.bfloat16)
    inputs = make_inputs(ours, seconds, 1)
    with torch.inference_mode():
        times = interleaved(
            {"original": original_call(original, ours, inputs), "fp32": lambda: ours(**inputs), "bf16": lambda: half(**inputs)},
            repeats,
        )
        snr = snr_db(ours(**inputs).audio, half(**inputs).audio)
    print(json.dumps({**times, "snr": snr}))


def target_section(args, lines: list) -> None:
    """The 60 s, batch-1 comparison the targets are about, in `--processes` fresh processes per model: the original's
    own time varies by up to 1.5x from one process (or phase of this VM) to the next, so one run's ratio is not
    the answer; the median and range over processes are."""
    for variant in args.models:
        runs = []
        for _ in range(args.processes):
            runs.append(run_probe(["--target-probe", variant, "--seconds", "60", "--repeats", str(args.repeats)]))

        def spread(values, unit=""):
            return f"{statistics.median(values):.{0 if unit else 2}f}{unit or 'x'} ({min(values):.{0 if unit else 2}f}-{max(values):.{0 if unit else 2}f})"

        lines.append(
            f"| {variant} | {len(runs)} | {spread([r['original'] * 1000 for r in runs], ' ms')} | "
            f"{spread([r['fp32'] * 1000 for r in runs], ' ms')} | {spread([r['bf16'] * 1000 for r in runs], ' ms')} | "
            f"{spread([r['original'] / r['fp32'] for r in runs])} | {spread([r['original'] / r['bf16'] for r in runs])} | "
            f"{min(r['snr'] for r in runs):.1f} dB |"
        )
        print(lines[-1], flush=True)


FAULT_PROBE_IMPLEMENTATIONS = (
    "original", "ours fp32", "ours bf16", "ours fp32, original loaded", "ours bf16, original loaded"
)


def fault_probe(variant: str, which: str, seconds: float) -> None:
    """Minor page faults and time per batch-1 forward on `seconds` of audio (60 in the section) of one implementation
    in this fresh process (medians over 5 calls after 2 warm-up calls), as JSON. Alone in the process, or, for
    "..., original loaded", with the original model and our float32 one (which the copy is made from) kept alive
    beside it, as in the `targets` probe: the allocation history differs, and with it glibc's decisions."""
    import resource

    original, ours = build_pair(variant)
    inputs = make_inputs(ours, seconds, 1)
    if which == "original":
        call = original_call(original, ours, inputs)
    else:
        model = copy_of(ours, torch.bfloat16 if "bf16" in which else torch.float32)
        call = lambda: model(**inputs)  # noqa: E731
    kept = (original, ours) if which.endswith("original loaded") else ()  # noqa: F841
    del original, ours
    with torch.inference_mode():
        for _ in range(2):
            call()
        faults, times = [], []
        for _ in range(5):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            times.append(_timed(call))
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(json.dumps({"faults": statistics.median(faults), "ms": statistics.median(times) * 1000}))


def fault_section(args, lines: list) -> None:
    """Page faults per forward, each implementation in fresh processes of its own (`--processes`, alternating): glibc
    hands large freed blocks back to the kernel, so a call that allocates fresh large temporaries pages them in again
    (zeroed) every time. How many depends on the process's allocation history, hence the range."""
    import resource

    for variant in args.models:
        results = {which: [] for which in FAULT_PROBE_IMPLEMENTATIONS}
        for _ in range(args.processes):
            for which in results:
                results[which].append(run_probe(["--fault-probe", variant, which, "--seconds", "60"]))
        for which, runs in results.items():
            faults, times = [r["faults"] for r in runs], [r["ms"] for r in runs]
            lines.append(
                f"| {variant} | {which} | {statistics.median(faults):,.0f} ({min(faults):,.0f}-{max(faults):,.0f}) | "
                f"{statistics.median(faults) * resource.getpagesize() / 2**20:.0f} MB | {statistics.median(times):.0f} ms ({min(times):.0f}-{max(times):.0f}) |"
            )
            print(lines[-1], flush=True)


def ceiling_section(args, lines: list) -> None:
    for variant in args.models:
        _, ours = build_pair(variant)
        for dtype in (torch.float32, torch.bfloat16):
            model = copy_of(ours, dtype)
            inputs = make_inputs(ours, 60, 1)
            frames = int(round(60 * ours.config.frame_rate))
            workload, flops = matmul_workload(model, frames)
            with torch.inference_mode():
                times = interleaved({"matmuls": workload, "model": lambda: model(**inputs)}, args.repeats)
            lines.append(
                f"| {variant} | {str(dtype).replace('torch.', '')} | {flops / 1e9:.1f} GFLOP | "
                f"{flops / times['matmuls'] / 1e9:.0f} GFLOP/s | {times['matmuls'] * 1000:.0f} ms | "
                f"{times['model'] * 1000:.0f} ms | {times['matmuls'] / times['model']:.0%} |"
            )
            print(lines[-1], flush=True)


class OpTimer(TorchDispatchMode):
    """Wall time per torch operator, each call timed around itself: exact for CPU ops, which run synchronously
    (torch.profiler's bookkeeping inflated the small ones several-fold). A composite op (conv2d, layer_norm) counts
    as one; its Python dispatch cost falls outside the timings."""

    def __init__(self):
        super().__init__()
        self.seconds = collections.defaultdict(float)
        self.calls = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        start = time.perf_counter()
        result = func(*args, **(kwargs or {}))
        label = op_label(func, args)
        self.seconds[label] += time.perf_counter() - start
        self.calls[label] += 1
        return result


def op_label(func, args) -> str:
    """The operator's name, the model's own kernels told apart: depthwise convolutions (groups > 1) from the input
    convolution, oneDNN's linear with its fused GELU or residual add from the plain one."""
    name = str(func.overloadpacket).removeprefix("aten.")
    if name == "conv2d":
        return "conv2d, depthwise" if len(args) > 6 and args[6] > 1 else "conv2d"
    if name == "mkldnn._linear_pointwise":
        epilogue = "residual add" if func._overloadname == "binary" else args[3]
        return "linear (oneDNN)" + ("" if epilogue == "none" else f" + {epilogue}")
    return name


def op_times_section(args, lines: list) -> None:
    """Where a forward's time goes, operator by operator (the longest `--durations`, batch 1), with the original model
    loaded beside ours as in the `targets` probe: the 12 costliest operators, and the forward's time with and
    without the timing."""
    seconds = max(args.durations)
    for variant in args.models:
        original, ours = build_pair(variant)
        for dtype in (torch.float32, torch.bfloat16):
            model = copy_of(ours, dtype)
            inputs = make_inputs(model, seconds, 1)
            with torch.inference_mode():
                for _ in range(2):
                    model(**inputs)
                plain = statistics.median(_timed(lambda: model(**inputs)) for _ in range(args.repeats))
                timer = OpTimer()
                with timer:
                    timed = statistics.median(_timed(lambda: model(**inputs)) for _ in range(args.repeats))
            name = f"{variant} | {seconds:g} s | {str(dtype).replace('torch.', '')}"
            lines.append(f"| {name} | whole forward (untimed / timed) | {plain * 1000:.1f} / {timed * 1000:.1f} ms | 1 |")
            print(lines[-1], flush=True)
            for label, total in sorted(timer.seconds.items(), key=lambda item: -item[1])[:12]:
                lines.append(
                    f"| {name} | {label} | {total / args.repeats * 1000:.2f} ms | {timer.calls[label] // args.repeats} |"
                )
                print(lines[-1], flush=True)
        del original


def packing_section(args, lines: list) -> None:
    """`model.pack_cpu_weights` on and off: forward time (the longest `--durations`, batch 1, a packed and a plain
    model interleaved in one process) and the peak resident memory of fresh processes doing two such forwards."""
    seconds = max(args.durations)
    for variant in args.models:
        _, ours = build_pair(variant)
        for dtype in (torch.float32, torch.bfloat16):
            packed, plain = copy_of(ours, dtype), copy_of(ours, dtype)
            plain.pack_cpu_weights = False
            inputs = make_inputs(ours, seconds, 1)
            with torch.inference_mode():
                times = interleaved({"packed": lambda: packed(**inputs), "plain": lambda: plain(**inputs)}, args.repeats)
            dtype_name = str(dtype).replace("torch.", "")
            peaks = {
                flag: run_probe(["--packing-probe", variant, dtype_name, flag, "--seconds", str(seconds)])["peak_mb"]
                for flag in ("on", "off")
            }
            lines.append(
                f"| {variant} | {seconds:g} s | {dtype_name} | {times['packed'] * 1000:.0f} ms | {times['plain'] * 1000:.0f} ms | "
                f"{times['plain'] / times['packed']:.2f}x | {peaks['on']:.0f} MB | {peaks['off']:.0f} MB |"
            )
            print(lines[-1], flush=True)


def cpu_paths_section(args, lines: list) -> None:
    """The tiled (packed where oneDNN allows) CPU path against the plain one, forced either way, beside what this CPU
    chooses (`capabilities.tiled_cpu_path_preferred`): the measurement behind the choice. Run it with
    `ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2` for an AVX2-only CPU emulated."""
    import hf_vocos.modeling_vocos as modeling
    from hf_vocos.capabilities import tiled_cpu_path_preferred

    chooses = "tiled" if tiled_cpu_path_preferred() else "plain"
    for variant in args.models:
        original, ours = build_pair(variant)
        for seconds in args.durations:
            inputs = make_inputs(ours, seconds, 1)

            def forced(tiled: bool):
                def call():
                    modeling.tiled_cpu_path_preferred = lambda: tiled
                    try:
                        return ours(**inputs)
                    finally:
                        modeling.tiled_cpu_path_preferred = tiled_cpu_path_preferred
                return call

            with torch.inference_mode():
                times = interleaved(
                    {"original": original_call(original, ours, inputs), "tiled": forced(True), "plain": forced(False)},
                    args.repeats,
                )
            lines.append(
                f"| {variant} | {seconds:g} s | {torch.backends.cpu.get_cpu_capability()} | "
                f"{times['original'] * 1000:.0f} ms | {times['tiled'] * 1000:.0f} ms | {times['plain'] * 1000:.0f} ms | "
                f"{times['original'] / times['tiled']:.2f}x | {times['original'] / times['plain']:.2f}x | {chooses} |"
            )
            print(lines[-1], flush=True)


def packing_probe(variant: str, dtype: str, flag: str, seconds: float) -> None:
    """Peak resident memory (VmHWM) of this fresh process after building one model (random weights, release size),
    with packing `flag` (on/off), and two forwards of `seconds` of audio; as JSON."""
    torch.manual_seed(0)
    model = VocosModel(VocosConfig() if variant == "mel" else VocosConfig(**RELEASE_ENCODEC)).eval()
    model = model.to(getattr(torch, dtype))
    model.pack_cpu_weights = flag == "on"
    inputs = make_inputs(model, seconds, 1)
    with torch.inference_mode():
        for _ in range(2):
            model(**inputs)
    print(json.dumps({"peak_mb": _status_mb("VmHWM")}))


def feature_section(args, lines: list) -> None:
    """librosa's mel against `VocosFeatureExtractor`, each timed in processes of its own, alternating (three of each:
    this VM has slow phases of a few seconds that hit whichever process runs then)."""
    for seconds, batch_size in ((10, 1), (10, 8)):
        times = {"librosa": [], "ours": []}
        for _ in range(3):
            for library in times:
                times[library] += _probe(library, seconds, batch_size, args.repeats)
        (librosa_median, librosa_best), (ours_median, ours_best) = (
            (statistics.median(values), min(values)) for values in times.values()
        )
        lines.append(
            f"| {seconds} s x {batch_size}, 24 kHz, 100 mels | {librosa_median * 1000:.1f} ms ({librosa_best * 1000:.1f}) | "
            f"{ours_median * 1000:.1f} ms ({ours_best * 1000:.1f}) | {librosa_median / ours_median:.1f}x "
            f"({librosa_best / ours_best:.1f}x) |"
        )
        print(lines[-1], flush=True)


def _log_mel_functions(seconds: int, batch_size: int) -> dict:
    """librosa's log-mel and ours of the same `batch_size` clips of `seconds` of noise, as argument-less calls."""
    import librosa

    clips = [np.random.default_rng(seed).standard_normal(int(seconds * 24000)).astype(np.float32) * 0.1 for seed in range(batch_size)]
    extractor = VocosFeatureExtractor()

    def with_librosa():
        for clip in clips:
            mel = librosa.feature.melspectrogram(
                y=clip, sr=24000, n_fft=1024, hop_length=256, n_mels=100, power=1, htk=True, norm=None, pad_mode="reflect"
            )
            np.log(np.maximum(mel, 1e-7))

    return {"librosa": with_librosa, "ours": lambda: extractor(clips, sampling_rate=24000, return_tensors="pt")}


def feature_probe(library: str, seconds: int, batch_size: int, repeats: int) -> None:
    """Print the seconds of `repeats * 10` calls of one library's log-mel (after 5 warm-up calls) as a JSON list;
    `mixed`: ours, timed in blocks of 25 calls alternating with blocks of 25 librosa calls in this one process.

    The feature table runs each library in a process of its own: in one process, numpy's OpenBLAS (which librosa's mel
    product uses) keeps a worker thread spinning for a while after each call, and torch's OpenMP worker, sharing the
    second core with it, then waits for a scheduler tick (the `feature-interference` section measures it).
    """
    functions = _log_mel_functions(seconds, batch_size)
    if library == "mixed":
        times = []
        for _ in range(max(1, repeats * 10 // 25)):
            for _ in range(25):
                functions["librosa"]()
            times += [_timed(functions["ours"]) for _ in range(25)]
        print(json.dumps(times))
        return
    for _ in range(5):
        functions[library]()
    print(json.dumps([_timed(functions[library]) for _ in range(repeats * 10)]))


def _probe(library: str, seconds: int, batch_size: int, repeats: int, env: dict | None = None) -> list[float]:
    return run_probe(
        ["--feature-probe", library, "--seconds", str(seconds), "--batch", str(batch_size), "--repeats", str(repeats)],
        env=env,
    )


def run_probe(arguments: list[str], env: dict | None = None, timeout: float = 1800):
    """Run this script with `arguments` (one of the hidden probes) in a fresh process; return the JSON it prints last."""
    result = subprocess.run(
        [sys.executable, __file__, *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def feature_interference_section(args, lines: list) -> None:
    """Our extractor alone in its process against the same calls alternating with librosa's in one process, with
    OpenBLAS's default spin and with `OPENBLAS_THREAD_TIMEOUT=4` (its idle threads sleep almost at once)."""
    runs = {
        "alone in its process": ("ours", None),
        "alternating with librosa in one process": ("mixed", None),
        "alternating with librosa, OPENBLAS_THREAD_TIMEOUT=4": ("mixed", {"OPENBLAS_THREAD_TIMEOUT": "4"}),
    }
    for name, (library, env) in runs.items():
        times = _probe(library, 10, 1, max(args.repeats, 10), env)
        best = min(times)
        slow = sum(value > 3 * best for value in times) / len(times)
        lines.append(f"| {name} | {statistics.median(times) * 1000:.2f} ms | {best * 1000:.2f} ms | {slow:.0%} |")
        print(lines[-1], flush=True)


def feature_alternative_section(args, lines: list) -> None:
    """The options for each stage of a 10 s clip's extraction that `VocosFeatureExtractor` does not use, timed beside
    the ones it uses, and the whole call at other STFT block sizes."""
    import scipy.fft

    from hf_vocos import feature_extraction_vocos as module

    extractor = VocosFeatureExtractor()
    clip = np.random.default_rng(0).standard_normal(10 * 24000).astype(np.float32) * 0.1
    frames = torch.from_numpy(
        np.lib.stride_tricks.sliding_window_view(np.pad(clip, 512, mode="reflect"), 1024)[::256] * extractor.window
    ).contiguous()
    spectrum = torch.fft.rfft(frames, dim=-1)
    parts = torch.view_as_real(spectrum).numpy()
    magnitude = torch.abs(spectrum)
    rows = torch.empty(frames.shape[0], extractor.feature_size)
    dense = torch.from_numpy(extractor.mel_filters)

    def whole_call(block_frames):
        def call():
            module._FRAMES_PER_BLOCK = block_frames
            extractor(clip, sampling_rate=24000, return_tensors="pt")

        return call

    candidates = {
        "real FFT: torch (MKL), used": lambda: torch.fft.rfft(frames, dim=-1),
        "real FFT: scipy.fft, 1 worker": lambda: scipy.fft.rfft(frames.numpy(), axis=-1),
        "real FFT: scipy.fft, 2 workers": lambda: scipy.fft.rfft(frames.numpy(), axis=-1, workers=2),
        "real FFT: numpy.fft": lambda: np.fft.rfft(frames.numpy(), axis=-1),
        "magnitude: numpy abs, used": lambda: np.abs(spectrum.numpy()),
        "magnitude: numpy sqrt(re^2 + im^2)": lambda: np.sqrt(np.square(parts[..., 0]) + np.square(parts[..., 1])),
        "magnitude: torch abs": lambda: torch.abs(spectrum),
        "mel product: filter groups, used": lambda: module._mel_product(magnitude, extractor._mel_blocks, out=rows),
        "mel product: dense": lambda: torch.mm(magnitude, dense, out=rows),
        **{f"whole call, blocks of {size} frames{', used' if size == module._FRAMES_PER_BLOCK else ''}": whole_call(size) for size in (64, 256, 1024)},
    }
    default_block = module._FRAMES_PER_BLOCK
    try:
        times = in_blocks(candidates, args.repeats * 20)
    finally:
        module._FRAMES_PER_BLOCK = default_block
    for name, (median, best) in times.items():
        lines.append(f"| {name} | {median * 1000:.2f} ms | {best * 1000:.2f} ms |")
        print(lines[-1], flush=True)


def feature_stage_section(args, lines: list) -> None:
    """Where a 10 s clip's extraction time goes: each stage of `VocosFeatureExtractor._log_mel` alone, on its own
    buffers, against the whole call (which adds the argument checks, the mask and the BatchFeature)."""
    from hf_vocos import feature_extraction_vocos as module

    extractor = VocosFeatureExtractor()
    clip = np.random.default_rng(0).standard_normal(10 * 24000).astype(np.float32) * 0.1
    frames_count = extractor.num_frames(len(clip))
    frames, magnitude = module._thread_buffers(frames_count, extractor.n_fft)
    rows = torch.empty(frames_count, extractor.feature_size)
    samples = torch.from_numpy(clip)

    spectrum = torch.fft.rfft(frames, dim=-1)

    stages = {
        "frames x window (edge frames reflect-padded)": lambda: extractor._windowed_frames(clip, samples, 0, frames, extractor._fft_window),
        "real FFT": lambda: torch.fft.rfft(frames, dim=-1),
        "magnitude (numpy abs)": lambda: np.abs(spectrum.numpy(), out=magnitude.numpy()),
        "mel product (filter groups)": lambda: module._mel_product(magnitude, extractor._mel_blocks, out=rows),
        "clamp + log": lambda: rows.clamp_(min=extractor.log_floor).log_(),
        "whole call": lambda: extractor(clip, sampling_rate=24000, return_tensors="pt"),
    }
    times = in_blocks(stages, args.repeats * 20)
    for name, (median, best) in times.items():
        lines.append(f"| {name} | {median * 1000:.2f} ms | {best * 1000:.2f} ms |")
        print(lines[-1], flush=True)


def in_blocks(functions: dict, calls: int, blocks: int = 4) -> dict:
    """(median, best) seconds per call of each function, timed in alternating blocks of `calls // blocks` calls."""
    times = {name: [] for name in functions}
    for _ in range(blocks):
        for name, function in functions.items():
            function()
            for _ in range(max(1, calls // blocks)):
                start = time.perf_counter()
                function()
                times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(values), min(values)) for name, values in times.items()}


def streaming_section(args, lines: list) -> None:
    """`VocosStreamingDecoder.push` of `chunk` new frames on each release model (float32; the EnCodec one at
    BANDWIDTH), against what the original needs to stream the same audio exactly: decoding each chunk with the
    receptive field's frames of context on both sides (`original.decode` on chunk + 2 x 27 frames, after
    `codes_to_features` for codes), interleaved."""
    from hf_vocos.streaming_vocos import VocosStreamingDecoder

    for variant in args.models:
        original, ours = build_pair(variant)
        radius = ours.backbone.receptive_radius
        for chunk in (1, 16, 64, 256, 1024):
            decoder = VocosStreamingDecoder(ours, bandwidth=BANDWIDTH if ours.config.is_codes_model else None)
            pushed, window, warm_up = (
                make_inputs(ours, frames / ours.config.frame_rate, 1, seed=frames) for frames in (chunk, chunk + 2 * radius, 64)
            )
            with torch.inference_mode():
                decoder.push(model_input(warm_up))
                times = interleaved(
                    {"original": original_call(original, ours, window), "ours": lambda: decoder.push(model_input(pushed))},
                    max(5, args.repeats),
                )
            chunk_seconds = chunk / ours.config.frame_rate
            algorithmic = (decoder.latency_frames + chunk) / ours.config.frame_rate
            lines.append(
                f"| {variant} | {chunk} frame{'s' if chunk > 1 else ''} ({chunk_seconds * 1000:.0f} ms of audio) | "
                f"{times['original'] * 1000:.1f} ms | "
                f"{times['ours'] * 1000:.1f} ms | {times['original'] / times['ours']:.2f}x | "
                f"{times['ours'] / chunk_seconds:.3f} | {algorithmic * 1000:.0f} ms |"
            )
            print(lines[-1], flush=True)


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def memory_section(args, lines: list) -> None:
    for mode in ("stream", "decode_chunked", "forward"):
        peaks = {}
        for minutes in (1, 10):
            peaks[minutes] = run_probe(["--memory-probe", mode, "--minutes", str(minutes)], timeout=3600)
        growth = peaks[10]["peak_mb"] / peaks[1]["peak_mb"]
        extra = [peaks[m]["peak_mb"] - peaks[m]["baseline_mb"] for m in (1, 10)]
        lines.append(
            f"| {mode} | {peaks[1]['peak_mb']:.0f} MB (+{extra[0]:.0f}) | {peaks[10]['peak_mb']:.0f} MB (+{extra[1]:.0f}) | "
            f"{growth:.2f}x | {peaks[1]['seconds']:.1f} s / {peaks[10]['seconds']:.1f} s |"
        )
        print(lines[-1], flush=True)


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_probe(mode: str, minutes: int) -> None:
    """Decode `minutes` of (random) features with the release mel model; report the process's resident memory
    before decoding and its peak during decoding. (Not ru_maxrss: Linux carries it over from the parent process.)"""
    torch.manual_seed(0)
    model = VocosModel(VocosConfig()).eval()
    frames = int(round(minutes * 60 * model.config.frame_rate))
    with torch.inference_mode():
        model(input_features=torch.randn(1, 100, 64))  # warm up oneDNN and the allocator
        features = None if mode == "stream" else torch.randn(1, 100, frames) - 4.0
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current size
        baseline = _status_mb("VmRSS")
        start = time.perf_counter()
        if mode == "stream":
            # Features arrive in pieces and audio leaves in pieces (e.g. to a file or a socket).
            pieces = ((torch.randn(1, 100, 256) - 4.0) for _ in range(frames // 256))
            samples = sum(piece.shape[-1] for piece in model.stream(pieces))
        else:
            decode = model.decode_chunked if mode == "decode_chunked" else model
            samples = decode(input_features=features).audio.shape[-1]
    peak = _status_mb("VmHWM")
    print(json.dumps({"baseline_mb": baseline, "peak_mb": peak, "samples": samples, "seconds": time.perf_counter() - start}))


def onnx_section(args, lines: list) -> None:
    try:
        from hf_vocos.onnx_export import VocosOnnxModel, export_onnx
    except ImportError:
        lines.append("| onnx | not installed | | | |")
        return
    for variant in args.models:
        original, ours = build_pair(variant)
        with tempfile.TemporaryDirectory() as folder:
            export_onnx(ours, folder)
            # (Its default session keeps onnxruntime's workers from spinning between runs, which, interleaved with
            # torch in this process, slowed the original and our eager model 2-4x in earlier versions of this table.)
            onnx_model = VocosOnnxModel.from_pretrained(folder)
            for seconds in [d for d in args.durations if d <= 10]:
                inputs = make_inputs(ours, seconds, 1)
                with torch.inference_mode():
                    times = interleaved(
                        {"original": original_call(original, ours, inputs), "ours": lambda: ours(**inputs), "onnx": lambda: onnx_model(**inputs)},
                        args.repeats,
                    )
                    error = float((onnx_model(**inputs).audio - ours(**inputs).audio).abs().max())
                lines.append(
                    f"| {variant} | {seconds:g} s | {times['original'] * 1000:.0f} ms | {times['ours'] * 1000:.0f} ms | "
                    f"{times['onnx'] * 1000:.0f} ms | {times['original'] / times['onnx']:.2f}x | {error:.1e} |"
                )
                print(lines[-1], flush=True)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _reset_peak_memory(device: torch.device) -> int:
    """Start a peak-memory measurement; returns the device memory already allocated (weights, inputs)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    return 0


def _peak_memory(device: torch.device, resident: int) -> str:
    """The call's peak working memory: the peak allocated since `_reset_peak_memory`, less what was resident."""
    if device.type == "cuda":
        return f"{(torch.cuda.max_memory_allocated(device) - resident) / 2**20:.0f} MB"
    return "n/a"


def accelerator_section(args, lines: list) -> None:
    """On `--device` (a GPU): the original in float32 against ours in float32, float16 and bfloat16 over a batch sweep,
    each call timed to the device's completion (synchronised), with our peak working memory on the device (above the
    weights and inputs already there) and each half-precision output's SNR against our float32 output.
    Configurations that do not fit in memory are reported as such."""
    device = torch.device(args.device)
    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    for variant in args.models:
        original, ours = build_pair(variant)
        original.to(device)
        models = {name: copy_of(ours, dtype, device) for name, dtype in dtypes.items()}
        for mode in args.gpu_compile:
            # One compile for every shape (dynamic), done by the warm-up call of the first configuration;
            # "reduce-overhead" also records a CUDA graph per shape (on its first calls) and replays it.
            name = "fp16 compiled" if mode == "default" else f"fp16 compiled ({mode})"
            models[name] = torch.compile(copy_of(ours, torch.float16, device), mode=mode, dynamic=True)
        for seconds in args.durations:
            for batch_size in args.gpu_batch_sizes:
                inputs = make_inputs(ours, seconds, batch_size, device=device)

                def synchronised(function):
                    return lambda: (function(), _synchronize(device))

                functions = {"original fp32": synchronised(original_call(original, ours, inputs))}
                functions.update({f"ours {name}": synchronised(lambda model=model: model(**inputs)) for name, model in models.items()})
                audio = f"{seconds:g} s x {batch_size}"
                try:
                    with torch.inference_mode():
                        times = interleaved(functions, args.repeats)
                        outputs = {}
                        for name, model in models.items():
                            resident = _reset_peak_memory(device)
                            output = model(**inputs).audio
                            # (cloned: a CUDA graph's replay would write over its output)
                            outputs[name] = (output.float().clone(), _peak_memory(device, resident))
                            _synchronize(device)
                except torch.OutOfMemoryError:
                    lines.append(f"| {variant} | {audio} | | | | | | | out of device memory |")
                    print(lines[-1], flush=True)
                    torch.cuda.empty_cache()
                    continue
                reference_audio = outputs["fp32"][0]
                for name in models:
                    taken = times[f"ours {name}"]
                    note = "" if name == "fp32" else f"SNR {snr_db(reference_audio, outputs[name][0]):.1f} dB vs fp32"
                    lines.append(
                        f"| {variant} | {audio} | ours {name} | {times['original fp32'] * 1000:.1f} | {taken * 1000:.1f} | "
                        f"{times['original fp32'] / taken:.2f}x | {taken / (seconds * batch_size):.5f} | {outputs[name][1]} | {note} |"
                    )
                    print(lines[-1], flush=True)


def stages_section(args, lines: list) -> None:
    """Where a float32 forward's time goes on `--device`, each part timed to the device's completion: input checks,
    backbone, head (up to windowed frames), inverse STFT's overlap-add and normalisation, against the original's
    backbone and head (mel). On a GPU, small inputs show the host's cost per part (docs/benchmarks.md, "GPU")."""
    device = torch.device(args.device)
    for variant in args.models:
        original, ours = build_pair(variant)
        original.to(device)
        model = copy_of(ours, torch.float32, device)
        for seconds in args.durations:
            for batch_size in args.gpu_batch_sizes:
                inputs = make_inputs(ours, seconds, batch_size, device=device)
                with torch.inference_mode():
                    features, frame_mask, bandwidth_id = model.prepare_inputs(**inputs)
                    hidden = model.backbone(features, frame_mask, bandwidth_id)
                    frames = model.hidden_to_frames(hidden, frame_mask)
                    parts = {
                        "original forward": original_call(original, ours, inputs),
                        "ours forward": lambda: model(**inputs),
                        "ours input checks": lambda: model.prepare_inputs(**inputs),
                        "ours backbone": lambda: model.backbone(features, frame_mask, bandwidth_id),
                        "ours head": lambda: model.hidden_to_frames(hidden, frame_mask),
                        "ours synthesize": lambda: model.head.istft.synthesize(frames, frame_mask),
                    }
                    if variant == "mel":
                        original_hidden = original.backbone(inputs["input_features"])
                        parts["original backbone"] = lambda: original.backbone(inputs["input_features"])
                        parts["original head"] = lambda: original.head(original_hidden)
                    times = interleaved(
                        {name: (lambda f=f: (f(), _synchronize(device))) for name, f in parts.items()}, args.repeats
                    )
                for name, taken in times.items():
                    lines.append(f"| {variant} | {seconds:g} s x {batch_size} | {name} | {taken * 1000:.3f} |")
                    print(lines[-1], flush=True)


def tile_size_section(args, lines: list) -> None:
    """The model at other tile sizes (`_MLP_TILE_FRAMES`, 1024) than its own: fresh models per size (their weights
    are packed for the tile), timed interleaved on the longest `--durations`, batch 1."""
    import hf_vocos.modeling_vocos as modeling

    seconds, own = max(args.durations), modeling._MLP_TILE_FRAMES
    for variant in args.models:
        _, ours = build_pair(variant)
        inputs = make_inputs(ours, seconds, 1)
        for dtype in (torch.float32, torch.bfloat16):
            models, functions = {}, {}
            try:
                for size in args.tile_sizes:
                    modeling._MLP_TILE_FRAMES = size
                    models[size] = copy_of(ours, dtype)
                    with torch.inference_mode():
                        models[size](**inputs)  # packs its weights for this tile

                    def run(size=size):
                        modeling._MLP_TILE_FRAMES = size
                        models[size](**inputs)

                    functions[size] = run
                with torch.inference_mode():
                    times = interleaved(functions, args.repeats)
            finally:
                modeling._MLP_TILE_FRAMES = own
            cells = ", ".join(f"{size}: {times[size] * 1000:.0f} ms" for size in args.tile_sizes)
            lines.append(f"| {variant} | {seconds:g} s x 1 | {str(dtype).replace('torch.', '')} | {cells} |")
            print(lines[-1], flush=True)


def _block_tile(block, source: torch.Tensor, target: torch.Tensor, start: int, stop: int, bandwidth_id, convolve=None) -> None:
    """One block's output for frames [start, stop) of `source` (batch 1, time-major) into `target`, with the kernels
    the model's tiled forward uses (packed weights), but no held-back tile: source and target are separate.
    `convolve(window, conv)` replaces the depthwise convolution of the window around the tile (default: the model's)."""
    from hf_vocos.modeling_vocos import _conv_time_major

    num_frames, hidden_size = source.shape[1:]
    radius = block.dwconv.padding[0]
    low, high = max(start - radius, 0), min(stop + radius, num_frames)
    convolved = (convolve or _conv_time_major)(source[:, low:high], block.dwconv)[:, start - low : stop - low]
    residual = source[:, start:stop].reshape(-1, hidden_size)
    product = block._tile_mlp(bandwidth_id)(convolved.reshape(-1, hidden_size), residual)
    target[:, start:stop] = product.view(1, stop - start, hidden_size)


def _blocks_alone(variant: str, seconds: float):
    """The float32 release model's blocks and their input for `seconds` of audio (batch 1, time-major), its tiles
    of frames, and the bandwidth row: what the block experiments run."""
    import hf_vocos.modeling_vocos as modeling

    _, ours = build_pair(variant)
    with torch.inference_mode():
        features, _, bandwidth_id = ours.prepare_inputs(**make_inputs(ours, seconds, 1))
        states = ours.backbone.forward_stage(0, features.transpose(1, 2), bandwidth_id)
    num_frames, tile = states.shape[1], modeling._MLP_TILE_FRAMES
    tiles = [(start, min(start + tile, num_frames)) for start in range(0, num_frames, tile)]
    return list(ours.backbone.convnext), states, tiles, bandwidth_id


def _wavefront(blocks, states, tiles, bandwidth_id, group: int, outputs: list, convolve=None) -> torch.Tensor:
    """The blocks over their tiles in groups of `group` blocks run as a wavefront: within a group, block k+1 runs tile
    t-1 right after block k has made tile t (so it reads that tile while it is in cache). Group 1 is block after block,
    as the model runs them; a group of all blocks takes each tile through every block before the next tile. Each block
    writes its own buffer of `outputs`; returns the last one."""
    for first in range(0, len(blocks), group):
        members = range(first, min(first + group, len(blocks)))
        for step in range(len(tiles) + len(members) - 1):
            for lag, k in enumerate(members):
                if 0 <= step - lag < len(tiles):
                    _block_tile(blocks[k], states if k == 0 else outputs[k - 1], outputs[k], *tiles[step - lag], bandwidth_id, convolve)
    return outputs[-1]


def block_order_section(args, lines: list) -> None:
    """A dropped experiment: the eight blocks block after block (each over all its tiles, as the model runs them)
    against blocks in pairs as a wavefront (block k+1's tile t-1 right after block k's tile t, while that is in
    cache) and all blocks as one wavefront (each tile through every block before the next tile). The blocks alone,
    float32, the longest `--durations`, batch 1; the same output."""
    seconds = max(args.durations)
    for variant in args.models:
        blocks, states, tiles, bandwidth_id = _blocks_alone(variant, seconds)
        outputs = [torch.empty_like(states) for _ in blocks]
        orders = {"block after block": 1, "pairs": 2, "all": len(blocks)}
        functions = {
            name: (lambda group=group: _wavefront(blocks, states, tiles, bandwidth_id, group, outputs)) for name, group in orders.items()
        }
        with torch.inference_mode():
            expected = functions["block after block"]().clone()
            same = all(torch.equal(expected, functions[name]()) for name in ("pairs", "all"))
            times = interleaved(functions, args.repeats)
        lines.append(
            f"| {variant} | {seconds:g} s x 1 | "
            + " | ".join(f"{times[name] * 1000:.0f} ms" for name in orders)
            + f" | {'yes' if same else 'NO'} |"
        )
        print(lines[-1], flush=True)


def _shifted_depthwise(window: torch.Tensor, conv) -> torch.Tensor:
    """The depthwise convolution of a time-major window as `kernel_size` shifted multiply-adds over the zero-padded
    window (a dropped alternative)."""
    radius, frames = conv.padding[0], window.shape[1]
    padded = nn.functional.pad(window, (0, 0, radius, radius))
    output = conv.bias.expand_as(window).clone()
    for offset in range(conv.kernel_size[0]):
        output.addcmul_(padded[:, offset : offset + frames], conv.weight[:, 0, offset])
    return output


def _height_depthwise(window: torch.Tensor, conv) -> torch.Tensor:
    """The depthwise convolution with the frames along a channels-last image's height instead of its width (a
    dropped alternative)."""
    image = window.transpose(1, 2).unsqueeze(3)
    output = nn.functional.conv2d(image, conv.weight.unsqueeze(3), conv.bias, padding=(conv.padding[0], 0), groups=conv.groups)
    return output.squeeze(3).transpose(1, 2)


def depthwise_section(args, lines: list) -> None:
    """Dropped experiments on the blocks' depthwise convolution, timed where the model runs it: every tile of every
    block, the blocks run as the model runs them (float32, the longest `--durations`, batch 1), the convolutions'
    time summed per forward. As the model runs it (its input last written a whole block earlier), the same call
    again right after (its input now in cache), the call right after an untimed copy of its input (the input just
    written, so in cache too, but no convolution run before it), as seven shifted multiply-adds, and along the
    image's height."""
    from hf_vocos.modeling_vocos import _conv_time_major

    seconds = max(args.durations)
    for variant in args.models:
        blocks, states, tiles, bandwidth_id = _blocks_alone(variant, seconds)
        outputs = [torch.empty_like(states) for _ in blocks]
        spent = collections.defaultdict(float)

        def timed(name, function, prepare=None):
            def convolve(window, conv):
                if prepare is not None:
                    window = prepare(window, conv)  # untimed
                begin = time.perf_counter()
                result = function(window, conv)
                spent[name] += time.perf_counter() - begin
                return result

            return convolve

        used = "the model's (channels-last, width)"
        variants = (
            (used, _conv_time_major, None),
            ("the same call again (warm)", _conv_time_major, lambda window, conv: (_conv_time_major(window, conv), window)[1]),
            ("right after a copy of its input", _conv_time_major, lambda window, conv: window.clone()),
            ("seven shifted multiply-adds", _shifted_depthwise, None),
            ("along the image's height", _height_depthwise, None),
        )
        options = {name: timed(name, function, prepare) for name, function, prepare in variants}
        rounds = {name: [] for name in options}
        with torch.inference_mode():
            expected = _wavefront(blocks, states, tiles, bandwidth_id, 1, outputs).clone()
            error = {}
            for name, convolve in options.items():
                error[name] = float((_wavefront(blocks, states, tiles, bandwidth_id, 1, outputs, convolve) - expected).abs().max())
            for _ in range(args.repeats):
                for name, convolve in options.items():
                    spent.clear()
                    _wavefront(blocks, states, tiles, bandwidth_id, 1, outputs, convolve)
                    rounds[name].append(spent[name])
        used_time = statistics.median(rounds[used])
        for name, values in rounds.items():
            median = statistics.median(values)
            lines.append(
                f"| {variant} | {seconds:g} s x 1 | {name} | {median * 1000:.1f} ms | {median / used_time:.2f}x | {error[name]:.1e} |"
            )
            print(lines[-1], flush=True)


def head_alternative_section(args, lines: list) -> None:
    """Dropped alternatives for the head's spectrum and inverse FFT, on one 1024-frame tile (float32, warm, median of
    at least 50), scaled to a forward of the longest `--durations`: the spectrum as the model makes it (exp and clamp
    in place, cos and sin products, interleaved into a complex tile) against `torch.polar` and a complex `exp`; the
    inverse FFT by torch (as the model) against scipy.fft with 1 and 2 workers."""
    import scipy.fft

    from hf_vocos.modeling_vocos import _MLP_TILE_FRAMES as tile

    seconds = max(args.durations)
    for variant in args.models:
        _, ours = build_pair(variant)
        head, n_fft = ours.head, ours.config.n_fft
        bins = n_fft // 2 + 1
        tiles_per_forward = -(-int(round(seconds * ours.config.frame_rate)) // tile)
        generator = torch.Generator().manual_seed(0)
        log_magnitude, phase = torch.randn(2, tile, bins, generator=generator).unbind(0)
        out, workspace = torch.empty(tile, bins, dtype=torch.complex64), torch.empty(tile, bins)

        def magnitude():
            # The model's in-place exp and clamp, on a copy of the log-magnitude (the model's is a fresh projection);
            # both the model's spectrum and the polar one pay for that copy.
            return head._magnitude_(log_magnitude.clone())

        def used_spectrum():
            amplitude = magnitude()
            real = torch.cos(phase, out=workspace).mul_(amplitude)
            return torch.complex(real, phase.sin().mul_(amplitude), out=out)

        spectra = {
            "the model's (exp, cos, sin, complex)": used_spectrum,
            "torch.polar": lambda: torch.polar(magnitude(), phase),
            "complex exp": lambda: torch.exp(torch.complex(log_magnitude.clamp(max=math.log(head.max_magnitude)), phase)),
        }
        spectrum = used_spectrum().clone()
        transforms = {
            "torch.fft.irfft (the model's)": lambda: torch.fft.irfft(spectrum, n=n_fft, dim=-1),
            "scipy.fft.irfft, 1 worker": lambda: scipy.fft.irfft(spectrum.numpy(), n=n_fft, axis=-1, workers=1),
            "scipy.fft.irfft, 2 workers": lambda: scipy.fft.irfft(spectrum.numpy(), n=n_fft, axis=-1, workers=2),
        }
        expected_frames = torch.fft.irfft(spectrum, n=n_fft, dim=-1)
        for part, functions, expected in (("spectrum", spectra, spectrum), ("inverse FFT", transforms, expected_frames)):
            with torch.inference_mode():
                times = in_blocks(functions, max(args.repeats, 50))
                errors = {name: float((torch.as_tensor(function()) - expected).abs().max()) for name, function in functions.items()}
            used = times[next(iter(functions))][0]
            for name, (median, _) in times.items():
                lines.append(
                    f"| {variant} | {part} | {name} | {median * 1e6:.0f} us | {median * tiles_per_forward * 1000:.1f} ms | "
                    f"{median / used:.2f}x | {errors[name]:.1e} |"
                )
                print(lines[-1], flush=True)


def second_product_section(args, lines: list) -> None:
    """A dropped experiment: a block's second MLP product as the model runs it (oneDNN on packed weights, residual
    added in its epilogue, then copied over the residual's rows) against two ways without that copy: an in-place
    `addmm_` onto those rows plus the bias, and oneDNN's in-place 1x1 convolution (`_convolution_pointwise_`, packed
    weights, adding into the rows viewed as a channels-last image). One tile of the model's size (1024 frames) in the
    middle of 6000 frames, float32, warm."""
    from hf_vocos.modeling_vocos import _MLP_TILE_FRAMES as tile

    for variant in args.models:
        _, ours = build_pair(variant)
        block = ours.backbone.convnext[0]
        hidden_size, inner_size = block.pwconv2.out_features, block.pwconv2.in_features
        generator = torch.Generator().manual_seed(0)
        inner = torch.randn(tile, inner_size, generator=generator)
        states = torch.randn(6000, hidden_size, generator=generator)
        weight, bias = block.pwconv2.weight.detach(), block.pwconv2.bias.detach()
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, tile)
        rows = states[2 * tile : 3 * tile]
        # (1, channels, 1, frames) channels-last views of the same memory: the convolution reads and writes the rows.
        image, rows_image = inner.t()[None, :, None], rows.t()[None, :, None]
        convolution_weight = torch._C._nn.mkldnn_reorder_conv2d_weight(
            weight[:, :, None, None].contiguous().to_mkldnn(), [0, 0], [1, 1], [1, 1], 1, list(image.shape)
        )

        def packed_and_copy():
            rows.copy_(torch.ops.mkldnn._linear_pointwise.binary(inner, rows, packed, bias, "add"))

        def in_place():
            rows.addmm_(inner, weight.t()).add_(bias)

        def convolution():
            torch.ops.mkldnn._convolution_pointwise_.binary(
                rows_image, image, convolution_weight, bias, [0, 0], [1, 1], [1, 1], 1, "add", None, None, [], None
            )

        with torch.inference_mode():
            before = rows.clone()
            convolution()
            # The convolution added the product to the rows in place: the same values as the model's product.
            same = torch.allclose(rows, before + torch.nn.functional.linear(inner, weight, bias), atol=1e-4, rtol=1e-4)
            functions = {"packed + copy": packed_and_copy, "addmm_ in place": in_place, "1x1 convolution in place": convolution}
            times = interleaved(functions, max(args.repeats, 50))
        used = times["packed + copy"]
        lines.append(
            f"| {variant} | {used * 1e6:.0f} us | {times['addmm_ in place'] * 1e6:.0f} us | "
            f"{times['addmm_ in place'] / used:.2f}x | {times['1x1 convolution in place'] * 1e6:.0f} us | "
            f"{times['1x1 convolution in place'] / used:.2f}x | {'yes' if same else 'NO'} |"
        )
        print(lines[-1], flush=True)


class KernelCounter(TorchDispatchMode):
    """Counts the operators a call dispatches that compute something (each launches a kernel on a GPU), apart from
    views and host-side reads (which only cost the host's time): an operator is a view when all its outputs share
    storage with an input and it mutates nothing."""

    def __init__(self):
        super().__init__()
        self.kernels = collections.Counter()
        self.views = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        inputs = [value for value in (*args, *(kwargs or {}).values()) if isinstance(value, torch.Tensor)]
        outputs = [value for value in (result if isinstance(result, (tuple, list)) else [result]) if isinstance(value, torch.Tensor)]
        storages = {tensor.untyped_storage().data_ptr() for tensor in inputs if tensor.numel()}
        if not outputs or (
            not func._schema.is_mutable and all(tensor.untyped_storage().data_ptr() in storages for tensor in outputs)
        ):
            self.views += 1
        else:
            self.kernels[func.overloadpacket.__name__] += 1
        return result


def kernel_section(args, lines: list) -> None:
    """Kernels a float32 forward launches, ours against the original, at batch 1 on `--device`. On the CPU ours runs
    its accelerator path (the CPU's tiling turned off), so the count is what a GPU would launch; a kernel costs the
    host a few microseconds to launch, which is what small calls on a GPU are bound by (docs/benchmarks.md, "GPU")."""
    from unittest import mock

    import hf_vocos.modeling_vocos as modeling

    device = torch.device(args.device)
    patches = []
    if device.type == "cpu":
        patches = [
            mock.patch.object(modeling, "_tiled_cpu_inference", lambda tensor: False),
            mock.patch.object(modeling, "_accelerator_inference", lambda tensor: modeling._eager_inference()),
        ]
    for variant in args.models:
        original, ours = build_pair(variant)
        original.to(device)
        model = copy_of(ours, torch.float32, device)
        for seconds in args.durations:
            inputs = make_inputs(ours, seconds, 1, device=device)
            for name, call in (("original", original_call(original, ours, inputs)), ("ours", lambda: model(**inputs))):
                counter = KernelCounter()
                with torch.inference_mode(), contextlib.ExitStack() as stack:
                    for patch in patches if name == "ours" else []:
                        stack.enter_context(patch)
                    call()  # (caches made on a first call are not counted)
                    with counter:
                        call()
                top = ", ".join(f"{op} {count}" for op, count in counter.kernels.most_common())
                lines.append(
                    f"| {variant} | {seconds:g} s x 1 | {name} | {sum(counter.kernels.values())} | {counter.views} | {top} |"
                )
                print(lines[-1], flush=True)


def print_row(row: dict) -> None:
    print(
        f"| {row['model']} | {row['audio']} | {row['variant']} | {row['original ms']:.0f} | {row['ours ms']:.0f} | "
        f"{row['ratio']:.2f}x | {row['RTF']:.4f} | {row['note']} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 s and 10 s, batch 1, no torch.compile, no memory runs")
    parser.add_argument("--models", nargs="+", default=["mel", "encodec"], choices=["mel", "encodec"])
    parser.add_argument("--durations", nargs="+", type=float, default=[1, 10, 60])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument(
        "--sections", nargs="+", choices=SECTIONS, default=[name for name in SECTIONS if name not in NOT_DEFAULT],
        help=f"tables to measure (default: all but {', '.join(NOT_DEFAULT)}: `accelerator` and `stages` are for "
        "--device, the others are experiments the model does not use)",
    )
    parser.add_argument(
        "--tile-sizes", nargs="+", type=int, default=[512, 1024, 2048, 4096], help="tiles of frames the `tile-sizes` section times"
    )
    parser.add_argument("--markdown", help="also write the tables to this file")
    parser.add_argument("--device", default="cpu", help="device of the `accelerator` and `stages` sections, e.g. cuda (the others run on the CPU)")
    parser.add_argument("--gpu-batch-sizes", nargs="+", type=int, default=[1, 4, 16, 64], help="batch sweep of the `accelerator` and `stages` sections")
    parser.add_argument(
        "--gpu-compile", nargs="*", default=[], choices=["default", "reduce-overhead"], metavar="MODE",
        help="the `accelerator` section adds a float16 model compiled in each torch.compile MODE (default, reduce-overhead)",
    )
    parser.add_argument("--memory-probe", choices=["stream", "decode_chunked", "forward"], help=argparse.SUPPRESS)
    parser.add_argument("--minutes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--feature-probe", choices=["librosa", "ours", "mixed"], help=argparse.SUPPRESS)
    parser.add_argument("--target-probe", choices=["mel", "encodec"], help=argparse.SUPPRESS)
    parser.add_argument("--fault-probe", nargs=2, metavar=("MODEL", "WHICH"), help=argparse.SUPPRESS)
    parser.add_argument("--packing-probe", nargs=3, metavar=("MODEL", "DTYPE", "ON_OFF"), help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=5, help="fresh processes per model (per implementation) in the `targets` (`page-faults`) section")
    parser.add_argument("--seconds", type=float, default=10, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in ("repeats", "processes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} {getattr(args, name)}: expected at least 1")
    if any(size < 1 for size in args.batch_sizes + args.gpu_batch_sizes + args.tile_sizes) or any(not d > 0 for d in args.durations):
        parser.error("--batch-sizes/--gpu-batch-sizes/--tile-sizes must be at least 1 and --durations positive")
    try:
        args.device = str(usable_device(args.device, "--device"))
    except ValueError as error:
        parser.error(str(error))
    if args.memory_probe:
        memory_probe(args.memory_probe, args.minutes)
        return
    if args.feature_probe:
        feature_probe(args.feature_probe, args.seconds, args.batch, args.repeats)
        return
    if args.target_probe:
        target_probe(args.target_probe, args.repeats, args.seconds)
        return
    if args.packing_probe:
        variant, dtype, flag = args.packing_probe
        if variant not in ("mel", "encodec") or dtype not in ("float32", "bfloat16") or flag not in ("on", "off"):
            parser.error(f"--packing-probe {variant!r} {dtype!r} {flag!r}: expected mel|encodec float32|bfloat16 on|off")
        packing_probe(variant, dtype, flag, args.seconds)
        return
    if args.fault_probe:
        variant, which = args.fault_probe
        if variant not in ("mel", "encodec") or which not in FAULT_PROBE_IMPLEMENTATIONS:
            parser.error(f"--fault-probe {variant!r} {which!r}: expected mel|encodec and one of {FAULT_PROBE_IMPLEMENTATIONS}")
        fault_probe(variant, which, args.seconds)
        return
    if args.quick:
        args.durations, args.batch_sizes, args.compile = [1, 10], [1], False
        args.sections = [s for s in args.sections if s != "memory"]

    out = [f"Machine: {machine(args.device)}", ""]
    print("\n".join(out), flush=True)
    if "speed" in args.sections:
        out += ["| model | audio | variant | original ms | ours ms | ratio | RTF | note |", "|---|---|---|---|---|---|---|---|"]
        print("\n".join(out[-2:]))
        rows = []
        speed_section(args, rows)
        out += [
            f"| {r['model']} | {r['audio']} | {r['variant']} | {r['original ms']:.0f} | {r['ours ms']:.0f} | {r['ratio']:.2f}x | {r['RTF']:.4f} | {r['note']} |"
            for r in rows
        ] + [""]
    sections = [
        ("cpu-paths", cpu_paths_section, "| model (float32, batch 1) | audio | torch CPU capability | original | tiled | plain | tiled ratio | plain ratio | chosen here |"),
        ("targets", target_section, "| model (60 s, batch 1) | processes | original fp32 | ours fp32 | ours bf16 | fp32 ratio | bf16 ratio | bf16 SNR (worst) |"),
        ("page-faults", fault_section, "| model (60 s, batch 1) | implementation | page faults per forward, median (range) | paged in | time per forward |"),
        ("op-times", op_times_section, "| model | audio | dtype | operator | ms per forward | calls per forward |"),
        ("packing", packing_section, "| model | audio | dtype | packed | plain | plain / packed | peak RSS, packed | peak RSS, plain |"),
        ("ceiling", ceiling_section, "| model | dtype | FLOPs (60 s) | sustained matmul throughput | matmuls alone (ceiling) | whole model | of ceiling |"),
        ("features", feature_section, "| feature extraction | librosa median (best) | ours median (best) | ratio median (best) |"),
        ("feature-stages", feature_stage_section, "| stage (10 s, 24 kHz, 1 clip) | median | best |"),
        ("feature-alternatives", feature_alternative_section, "| option (10 s, 24 kHz, 1 clip) | median | best |"),
        ("feature-interference", feature_interference_section, "| our extractor (10 s, 1 clip) | median | best | calls over 3x the best |"),
        ("streaming", streaming_section, "| model | chunk | original, windowed decode | ours, time per push | ratio | compute RTF | latency (context + chunk) |"),
        ("memory", memory_section, "| mode | peak RSS, 1 min (+ above baseline) | peak RSS, 10 min (+ above baseline) | growth | time |"),
        ("onnx", onnx_section, "| model | audio | original | ours eager | onnxruntime | ratio (onnx) | max abs diff |"),
        ("stages", stages_section, "| model | audio | part | ms |"),
        ("tile-sizes", tile_size_section, "| model | audio | dtype | time per tile size |"),
        ("block-order", block_order_section, "| model | audio | block after block | pairs as a wavefront | all blocks as one wavefront | same output |"),
        ("depthwise", depthwise_section, "| model | audio | depthwise convolution | ms per forward | / the model's | max abs diff of the output |"),
        ("head-alternatives", head_alternative_section, "| model | part | option | per 1024-frame tile | per forward | / the model's | max abs diff |"),
        ("second-product", second_product_section, "| model | packed + copy | addmm_ in place | addmm_ / packed | 1x1 convolution in place | convolution / packed | convolution's sum right |"),
        ("kernels", kernel_section, "| model | audio | implementation | kernels | views | kernels by operator |"),
        ("accelerator", accelerator_section, "| model | audio | variant | original fp32 ms | ours ms | ratio | RTF | peak working memory | note |"),
    ]
    for name, function, header in sections:
        if name not in args.sections:
            continue
        lines = [header, "|" + "---|" * (header.count("|") - 1)]
        print("\n" + "\n".join(lines), flush=True)
        function(args, lines)
        out += lines + [""]
    if args.markdown:
        Path(args.markdown).write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
