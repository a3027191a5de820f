#!/usr/bin/env python
"""Speed and memory of hf_vocos against the original `vocos` package, measured in one run, through the public API.

    python benchmarks/benchmark_inference.py                                  # every CPU table (about 10 minutes)
    python benchmarks/benchmark_inference.py --sections speed --durations 10 60
    python benchmarks/benchmark_inference.py --device cuda --dtypes float32 float16 bfloat16 --batch-sizes 1 16
    python benchmarks/benchmark_inference.py --markdown results.md            # also write the tables

Both implementations run the release sizes of vocos-mel-24khz and vocos-encodec-24khz (codes at 6 kbps) with the
same random weights (speed does not depend on the values): the original in its own classes (`tests/reference.py`,
needs `pip install --no-deps vocos==0.1.0 encodec==0.1.1`), saved in its own format and loaded with
`VocosModel.from_pretrained`. Each row times the original and ours interleaved, repeat after repeat, and reports
medians: ratio = original time / ours (higher is better); RTF = our time / audio duration. The baseline is always the
original in float32 on the same device.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from hf_vocos import CPUTiledImplementation, VocosModel  # noqa: E402
from hf_vocos.capabilities import native_bfloat16_available  # noqa: E402

BANDWIDTH = 6.0
SECTIONS = {
    "speed": "| model | audio x batch | device | original fp32 | ours | ratio | RTF | max abs diff / SNR vs original "
    "| implementation |",
    "paths": "| model | audio | original | eager | cpu_tiled | cpu_tiled, packing every call | cpu_tiled, never "
    "packing | accelerator | best |",
    "busy": "| model | audio | torch threads | original | eager | cpu_tiled | auto | auto picks |",
    "streaming": "| model | chunk | original, windowed decode | ours, per push | ratio | compute RTF | latency "
    "(context + chunk) |",
    "memory": "| mode | peak RSS, 1 min (+ above baseline) | peak RSS, 10 min (+ above baseline) | growth |",
    "onnx": "| model | audio | original (torch) | ours (torch) | ours (onnxruntime) | ratio (onnxruntime) | max abs "
    "diff |",
}


def machine(device: str) -> str:
    name = platform.processor() or platform.machine()
    flags = ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        name = next(
            (line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), name
        )
        flags = ", ".join(flag for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {flag}" in info)
    except OSError:
        pass
    cores = f"{os.cpu_count()} cores ({flags or 'no x86 flags'})"
    line = f"{name}, {cores}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    if torch.device(device).type == "cuda":
        line += f"; {torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"
    return line


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(functions: dict, repeats: int, device="cpu") -> dict:
    """Median seconds of each function, timed in turn for `repeats` rounds after one warm-up call each."""
    for function in functions.values():
        function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            synchronize(device)
            start = time.perf_counter()
            function()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def snr_db(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    return float(10 * torch.log10(reference.square().sum() / (reference - estimate).square().sum()))


def build_pair(variant: str, folder: Path):
    """(original, ours): the original at release size with random weights, saved in its own format, and ours loaded
    from that folder with `VocosModel.from_pretrained` (which reads the original format)."""
    import reference

    if variant == "mel":
        original = reference.build_mel_vocos(seed=0)
        features = {"sample_rate": 24000, "n_fft": 1024, "hop_length": 256, "n_mels": 100, "padding": "center"}
        config = reference.mel_config_yaml(features, 512, 1536, 8)
        buffers = reference.mel_buffers(24000, 1024, 100)
    else:
        original, config, buffers = reference.build_encodec_vocos(seed=0), reference.encodec_config_yaml(), None
    reference.save_original_checkpoint(original, folder / variant, config, buffers)
    return original, VocosModel.from_pretrained(folder / variant).eval()


def make_inputs(ours, seconds: float, batch_size: int, device="cpu", seed: int = 0) -> dict:
    frames = max(1, int(round(seconds * ours.config.frame_rate)))
    generator = torch.Generator().manual_seed(seed)
    if ours.config.is_codes_model:
        quantizers = ours.config.num_quantizers_for_bandwidth(BANDWIDTH)
        return {
            "codes": torch.randint(0, 1024, (quantizers, batch_size, frames), generator=generator).to(device),
            "bandwidth": BANDWIDTH,
        }
    return {"input_features": (torch.randn(batch_size, 100, frames, generator=generator) - 4.0).to(device)}


def original_call(original, ours, inputs):
    """The original decoding the same input: `codes_to_features` + `decode`, or `decode`."""
    if "codes" in inputs:
        bandwidth_id = torch.tensor([ours.config.bandwidth_index(BANDWIDTH)], device=inputs["codes"].device)
        return lambda: original.decode(original.codes_to_features(inputs["codes"]), bandwidth_id=bandwidth_id)
    return lambda: original.decode(inputs["input_features"])


def copy_of(ours, dtype, device):
    model = type(ours)(ours.config).eval()
    model.load_state_dict(ours.state_dict())
    return model.to(device=device, dtype=dtype)


# ---------------------------------------------------------------------------------------------------------------------
# sections


def speed_section(args, pairs, lines) -> None:
    """Ours in each `--dtypes` (the automatic implementation) against the original in float32, per size."""
    for variant, (original, ours) in pairs.items():
        original = original.to(args.device)
        models = {dtype: copy_of(ours, getattr(torch, dtype), args.device) for dtype in args.dtypes}
        for seconds in args.durations:
            for batch_size in args.batch_sizes:
                inputs = make_inputs(ours, seconds, batch_size, args.device)
                calls = {"original": original_call(original, ours, inputs)}
                calls.update({dtype: (lambda model=model: model(**inputs)) for dtype, model in models.items()})
                with torch.inference_mode():
                    times = interleaved(calls, args.repeats if seconds < 60 else max(3, args.repeats // 2), args.device)
                    reference_audio = calls["original"]()
                for dtype, model in models.items():
                    with torch.inference_mode():
                        audio = model(**inputs).audio
                        implementation = model.implementation_for(next(iter(inputs.values())).float()).name
                    quality = (
                        f"{float((audio - reference_audio).abs().max()):.1e}"
                        if dtype == "float32"
                        else f"{snr_db(reference_audio, audio):.1f} dB"
                    )
                    native = (
                        ""
                        if dtype != "bfloat16" or args.device != "cpu"
                        else (" (native)" if native_bfloat16_available() else " (emulated)")
                    )
                    lines.append(
                        f"| {variant} | {seconds:g} s x {batch_size} | {args.device} {dtype}{native} | "
                        f"{times['original'] * 1000:.1f} ms | "
                        f"{times[dtype] * 1000:.1f} ms | {times['original'] / times[dtype]:.2f}x | "
                        f"{times[dtype] / (seconds * batch_size):.4f} | {quality} | {implementation} |"
                    )
                    print(lines[-1], flush=True)
        original.cpu()


def paths_section(args, pairs, lines) -> None:
    """Each CPU inference implementation forced, float32, batch 1, against the original: the measurement behind
    the automatic choice (`capabilities.tiled_cpu_path_preferred`), and the tiled path packing its weights in every
    call or never (the default packs from `pack_min_rows` rows)."""
    choices = {
        "eager": "eager",
        "cpu_tiled": "cpu_tiled",
        "packing": CPUTiledImplementation(pack_min_rows=0),
        "no packing": CPUTiledImplementation(pack_min_rows=2**62),
        "accelerator": "accelerator",
    }
    names = tuple(choices)
    for variant, (original, ours) in pairs.items():
        for seconds in args.durations:
            inputs = make_inputs(ours, seconds, 1)
            calls = {"original": original_call(original, ours, inputs)}
            models = {name: copy_of(ours, torch.float32, "cpu") for name in names}
            for name, model in models.items():
                model.inference_implementation = choices[name]
                calls[name] = lambda model=model: model(**inputs)
            with torch.inference_mode():
                times = interleaved(calls, args.repeats)
            cells = " | ".join(
                f"{times[name] * 1000:.0f} ms ({times['original'] / times[name]:.2f}x)" for name in names
            )
            best = min(names, key=times.get)
            lines.append(f"| {variant} | {seconds:g} s | {times['original'] * 1000:.0f} ms | {cells} | {best} |")
            print(lines[-1], flush=True)


def busy_section(args, pairs, lines) -> None:
    """float32, batch 1, with one other process spinning on a core (a shared machine), at torch's default thread
    count and at one thread per process: the original, eager, the tiled path forced, and what "auto" picks."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    default_threads = torch.get_num_threads()
    try:
        for threads in sorted({default_threads, 1}, reverse=True):
            torch.set_num_threads(threads)
            for variant, (original, ours) in pairs.items():
                for seconds in args.durations:
                    inputs = make_inputs(ours, seconds, 1)
                    calls = {"original": original_call(original, ours, inputs)}
                    models = {name: copy_of(ours, torch.float32, "cpu") for name in ("eager", "cpu_tiled", "auto")}
                    for name, model in models.items():
                        model.inference_implementation = name
                        calls[name] = lambda model=model: model(**inputs)
                    with torch.inference_mode():
                        times = interleaved(calls, args.repeats)
                        picked = models["auto"].implementation_for(next(iter(inputs.values())).float()).name
                    cells = " | ".join(
                        f"{times[name] * 1000:.0f} ms ({times['original'] / times[name]:.2f}x)"
                        for name in ("eager", "cpu_tiled", "auto")
                    )
                    lines.append(
                        f"| {variant} | {seconds:g} s | {threads} | {times['original'] * 1000:.0f} ms | {cells} | "
                        f"{picked} |"
                    )
                    print(lines[-1], flush=True)
    finally:
        torch.set_num_threads(default_threads)
        spinner.kill()
        spinner.wait()


def streaming_section(args, pairs, lines) -> None:
    """`VocosStreamingDecoder.push` of `chunk` new frames, against what the original needs to stream the same audio
    exactly: decoding each chunk with the receptive field's frames of context on both sides."""
    from hf_vocos import VocosStreamingDecoder

    for variant, (original, ours) in pairs.items():
        radius = ours.receptive_radius
        for chunk in args.chunks:
            decoder = VocosStreamingDecoder(ours, bandwidth=BANDWIDTH if ours.config.is_codes_model else None)
            rate = ours.config.frame_rate
            pushed, window, warm_up = (
                make_inputs(ours, frames / rate, 1, seed=frames) for frames in (chunk, chunk + 2 * radius, 64)
            )
            first = lambda inputs: next(value for key, value in inputs.items() if key != "bandwidth")  # noqa: E731
            with torch.inference_mode():
                decoder.push(first(warm_up))
                times = interleaved(
                    {"original": original_call(original, ours, window), "ours": lambda: decoder.push(first(pushed))},
                    max(5, args.repeats),
                )
            seconds = chunk / rate
            lines.append(
                f"| {variant} | {chunk} frames ({seconds * 1000:.0f} ms of audio) | {times['original'] * 1000:.1f} ms "
                "| "
                f"{times['ours'] * 1000:.1f} ms | {times['original'] / times['ours']:.2f}x | "
                f"{times['ours'] / seconds:.3f} | "
                f"{(decoder.latency_frames + chunk) / rate * 1000:.0f} ms |"
            )
            print(lines[-1], flush=True)


def memory_section(args, pairs, lines) -> None:
    """Peak resident memory of fresh processes decoding 1 and `--memory-minutes` minutes of features with the release
    mel model: whole (`forward`), `decode_chunked`, and `stream` (features in, audio out, in pieces)."""
    for mode in ("stream", "decode_chunked", "forward"):
        peaks = [run_probe(["--memory-probe", mode, "--minutes", str(minutes)]) for minutes in (1, args.memory_minutes)]
        extra = [peak["peak_mb"] - peak["baseline_mb"] for peak in peaks]
        lines.append(
            f"| {mode} | {peaks[0]['peak_mb']:.0f} MB (+{extra[0]:.0f}) | {peaks[1]['peak_mb']:.0f} MB "
            f"(+{extra[1]:.0f}) | "
            f"{peaks[1]['peak_mb'] / peaks[0]['peak_mb']:.2f}x |"
        )
        print(lines[-1], flush=True)


def memory_probe(mode: str, minutes: float) -> None:
    """Decode `minutes` of random features with the release mel model (random weights); print the resident memory
    before decoding and its peak during it (VmHWM, reset first: ru_maxrss carries over from the parent)."""
    from hf_vocos import VocosConfig

    torch.manual_seed(0)
    model = VocosModel(VocosConfig()).eval()
    frames = int(round(minutes * 60 * model.config.frame_rate))
    with torch.inference_mode():
        model(input_features=torch.randn(1, 100, 64))  # warm up oneDNN and the allocator
        features = None if mode == "stream" else torch.randn(1, 100, frames) - 4.0
        Path("/proc/self/clear_refs").write_text("5")
        baseline = _status_mb("VmRSS")
        if mode == "stream":
            pieces = ((torch.randn(1, 100, 256) - 4.0) for _ in range(frames // 256))
            for _ in model.stream(pieces):
                pass
        else:
            (model.decode_chunked if mode == "decode_chunked" else model)(input_features=features)
    print(json.dumps({"baseline_mb": baseline, "peak_mb": _status_mb("VmHWM")}))


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def run_probe(arguments: list[str]) -> dict:
    result = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True, timeout=3600)
    if result.returncode:
        raise RuntimeError(f"probe {arguments} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def onnx_section(args, pairs, lines) -> None:
    """The exported graph on onnxruntime (CPU) against the original and our torch model, float32, batch 1."""
    try:
        from hf_vocos.onnx_export import VocosOnnxModel, export_onnx
    except ImportError:
        lines.append(
            "| (onnx, onnxruntime and onnxscript are not installed: pip install 'hf_vocos[onnx]') | | | | | | |"
        )
        return
    for variant, (original, ours) in pairs.items():
        with tempfile.TemporaryDirectory() as folder:
            export_onnx(ours, folder)
            runner = VocosOnnxModel.from_pretrained(folder)
            for seconds in args.durations:
                inputs = make_inputs(ours, seconds, 1)
                calls = {
                    "original": original_call(original, ours, inputs),
                    "torch": lambda: ours(**inputs),
                    "onnx": lambda: runner(**inputs),
                }
                with torch.inference_mode():
                    times = interleaved(calls, args.repeats)
                    difference = float((runner(**inputs).audio - ours(**inputs).audio).abs().max())
                lines.append(
                    f"| {variant} | {seconds:g} s | {times['original'] * 1000:.0f} ms | {times['torch'] * 1000:.0f} "
                    "ms | "
                    f"{times['onnx'] * 1000:.0f} ms | {times['original'] / times['onnx']:.2f}x | {difference:.1e} |"
                )
                print(lines[-1], flush=True)


RUNNERS = {
    "speed": speed_section,
    "paths": paths_section,
    "busy": busy_section,
    "streaming": streaming_section,
    "memory": memory_section,
    "onnx": onnx_section,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--models", nargs="+", choices=["mel", "encodec"], default=["mel", "encodec"])
    parser.add_argument(
        "--durations", nargs="+", type=float, default=[1.0, 10.0, 60.0], help="seconds of audio per item"
    )
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1], help="items per call (speed)")
    parser.add_argument(
        "--dtypes",
        nargs="+",
        choices=["float32", "bfloat16", "float16"],
        default=["float32", "bfloat16"],
        help="our dtypes (speed)",
    )
    parser.add_argument(
        "--device", default="cpu", help="device of the speed section, e.g. cuda (the others run on the CPU)"
    )
    parser.add_argument("--chunks", nargs="+", type=int, default=[1, 16, 256], help="frames per push (streaming)")
    parser.add_argument("--memory-minutes", type=float, default=10.0, help="the long decode of the memory section")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--memory-probe", nargs=1, help=argparse.SUPPRESS)
    parser.add_argument("--minutes", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        return memory_probe(args.memory_probe[0], args.minutes)
    torch.manual_seed(0)
    out = [f"Machine: {machine(args.device)}", ""]
    print(out[0], flush=True)
    with tempfile.TemporaryDirectory() as folder:
        needs_pairs = set(args.sections) != {"memory"}
        pairs = {variant: build_pair(variant, Path(folder)) for variant in args.models} if needs_pairs else {}
        for name in args.sections:
            header = SECTIONS[name]
            lines = [f"### {name}", "", header, "|" + "---|" * (header.count("|") - 1)]
            print("\n" + "\n".join(lines), flush=True)
            RUNNERS[name](args, pairs, lines)
            out += lines + [""]
    if args.markdown:
        args.markdown.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
