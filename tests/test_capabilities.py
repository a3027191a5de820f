"""The CPU capability probes, and every dtype on a CPU without AVX-512 (emulated here by limiting torch's and
oneDNN's instruction sets, which reproduces the errors a real AVX2-only CPU gave)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap

import pytest
import torch

from hf_vocos import capabilities
from hf_vocos.vocoder import DTYPE_CHOICES, resolve_dtype

X86 = platform.machine().lower() in ("x86_64", "amd64")


def test_probes_answer_per_dtype():
    assert capabilities.onednn_packed_linear_available(torch.float16) is False  # never packed: not probed
    assert capabilities.onednn_packed_linear_available(torch.float64) is False
    for dtype in (torch.float32, torch.bfloat16):
        assert capabilities.onednn_packed_linear_available(dtype) in (True, False)
    if capabilities.native_bfloat16_available():
        # native bfloat16 implies that oneDNN runs it
        assert capabilities.onednn_packed_linear_available(torch.bfloat16)
    assert capabilities.tiled_cpu_path_preferred() == (torch.backends.cpu.get_cpu_capability() == "AVX512")


def test_auto_dtype_follows_native_bfloat16():
    expected = torch.bfloat16 if capabilities.native_bfloat16_available() else torch.float32
    assert resolve_dtype("auto", "cpu") is expected
    assert resolve_dtype("float16", "cpu") is torch.float16
    assert resolve_dtype("float32", "meta") is torch.float32
    assert resolve_dtype("auto", "meta") is torch.float32  # no compute there to speak of
    with pytest.raises(
        ValueError, match=r"--dtype 'half': expected one of \['float32', 'bfloat16', 'float16', 'auto'\]"
    ):
        resolve_dtype("half")


def test_cli_offers_the_vocoder_dtypes():
    from hf_vocos import cli

    assert set(cli.DTYPE_CHOICES) == set(DTYPE_CHOICES)


# Run in a child process with torch's kernels limited to AVX2 and oneDNN's to AVX2 (no AVX-512, so no bf16
# instructions): before the fix, a bf16 model and a bf16 autocast region raised there (oneDNN's "bf16 path needs the
# cpu support avx_ne_convert or avx512bw ..." and "could not create a primitive descriptor").
_AVX2_CHILD = textwrap.dedent(
    """
    import json, torch
    from hf_vocos import VocosConfig, VocosModel, capabilities
    from hf_vocos.vocoder import resolve_dtype

    report = {
        "capability": torch.backends.cpu.get_cpu_capability(),
        "tiled": capabilities.tiled_cpu_path_preferred(),
        "packed_float32": capabilities.onednn_packed_linear_available(torch.float32),
        "packed_bfloat16": capabilities.onednn_packed_linear_available(torch.bfloat16),
        "native_bfloat16": capabilities.native_bfloat16_available(),
        "auto": str(resolve_dtype("auto", "cpu")),
    }
    torch.manual_seed(0)
    config = VocosConfig(hidden_size=64, intermediate_size=96, num_layers=2)
    model = VocosModel(config).eval()
    features = torch.randn(1, 100, 60)
    report["auto_path"] = model.implementation_for(features).name  # (with autograd: eager)
    with torch.no_grad():
        report["auto_path"] = model.implementation_for(features).name

    def snr(reference, estimate):
        return float(10 * torch.log10(reference.square().sum() / (reference - estimate).square().sum()))

    with torch.no_grad():
        reference = model(input_features=features).audio
        with torch.autocast("cpu", dtype=torch.bfloat16):
            report["autocast_snr"] = snr(reference, model(input_features=features).audio)
        for dtype in ("bfloat16", "float16"):
            cast = VocosModel(config).eval()
            cast.load_state_dict(model.state_dict())
            cast.to(getattr(torch, dtype))
            report[dtype + "_snr"] = snr(reference, cast(input_features=features).audio)
            cast.inference_implementation = "cpu_tiled"  # forced: it steps aside from packing it cannot run
            report[dtype + "_tiled_snr"] = snr(reference, cast(input_features=features).audio)
            report["tiled_used"] = cast.implementation_for(features).name
    print(json.dumps(report))
    """
)


@pytest.mark.skipif(not X86, reason="the AVX2 emulation limits x86 instruction sets")
def test_avx2_only_cpu_runs_every_dtype():
    env = dict(os.environ, ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2")
    result = subprocess.run([sys.executable, "-c", _AVX2_CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["capability"] == "AVX2"
    assert report["tiled"] is False and report["auto_path"] == "eager"  # measured slower there: the plain path runs
    assert report["packed_bfloat16"] is False and report["native_bfloat16"] is False
    assert report["auto"] == "torch.float32" and report["tiled_used"] == "cpu_tiled"
    for key in ("autocast_snr", "bfloat16_snr", "bfloat16_tiled_snr"):
        assert report[key] >= 30, (key, report)
    for key in ("float16_snr", "float16_tiled_snr"):
        assert report[key] >= 45, (key, report)
