"""What this machine's CPU can do for the model's fast paths, probed once per process and per dtype.

Machines differ: x86 with AVX-512 (some with native bfloat16), x86 with AVX2 only (no native bfloat16: it is emulated
and slow), ARM. Nothing here assumes one of them: each fast path asks for the capability it needs, for the dtype it
actually runs in, and the model takes the plain path where the answer is no.
"""

from __future__ import annotations

import functools
import platform

import torch
from torch import nn

__all__ = ["native_bfloat16_available", "onednn_packed_linear_available", "tiled_cpu_path_preferred"]


@functools.cache
def tiled_cpu_path_preferred() -> bool:
    """Whether this CPU takes the tiled (and, where oneDNN offers it, packed-weight) inference path rather than the
    plain one. Chosen by capability from measurements (docs/benchmarks.md, "Which CPUs take the fast path"): on x86
    with AVX-512 it is 1.5-1.8x faster than the plain path; on AVX2-only x86 it was measured 25-30% slower, so the
    plain path runs there; ARM and other CPUs are unmeasured and take the plain path (the reference). Both paths give
    the same audio to float32 rounding."""
    return torch.backends.cpu.get_cpu_capability() == "AVX512"


@functools.cache
def onednn_packed_linear_available(dtype: torch.dtype) -> bool:
    """oneDNN's linear on a weight packed into its blocked layout (`torch.ops.mkldnn._reorder_linear_weight`) with a
    fused exact-GELU epilogue (`_linear_pointwise`) or residual add (`_linear_pointwise.binary`), in `dtype`: private
    ops (what inductor's CPU backend uses), so used only where they exist, run in that dtype on this CPU and agree
    with the unfused computation. Probed once per dtype, on first use rather than at import: a CPU can pack float32
    and not bfloat16 (oneDNN's bf16 path needs AVX-512 BW/VL/DQ or AVX-NE-CONVERT on x86)."""
    if dtype not in (torch.float32, torch.bfloat16):
        return False
    if not (
        torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
    ):
        return False
    try:
        generator = torch.Generator().manual_seed(0)
        inputs, weight, bias, other = (
            torch.randn(shape, generator=generator).to(dtype) for shape in ((8, 16), (24, 16), (24,), (8, 24))
        )
        with torch.no_grad():
            packed = torch.ops.mkldnn._reorder_linear_weight(weight, 8)
            fused_gelu = torch.ops.mkldnn._linear_pointwise(inputs, packed, bias, "gelu", [], "none")
            fused_add = torch.ops.mkldnn._linear_pointwise.binary(inputs, other, packed, bias, "add")
            plain = nn.functional.linear(inputs.float(), weight.float(), bias.float())
        tolerance = 1e-5 if dtype == torch.float32 else 5e-2  # bf16 keeps 8 bits: ~0.4% per rounding
        return bool(
            fused_gelu.dtype == dtype
            and torch.allclose(fused_gelu.float(), nn.functional.gelu(plain), rtol=tolerance, atol=tolerance)
            and torch.allclose(fused_add.float(), plain + other.float(), rtol=tolerance, atol=tolerance)
        )
    except (RuntimeError, TypeError):
        return False


@functools.cache
def native_bfloat16_available() -> bool:
    """Whether this CPU computes bfloat16 natively: AVX512-BF16 or AMX on x86, the BF16 extension on ARM, and oneDNN
    can use it. Elsewhere bfloat16 runs but is emulated, and was measured about 13x slower than float32 on an
    AVX2-only x86 CPU: float32 is then the better choice (`dtype="auto"` in `Vocoder` and the command line)."""
    try:
        onednn_bfloat16 = torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "x86", "i386", "i686"):
        # oneDNN also reports bf16 support on AVX-512 without BF16 instructions (it emulates them there).
        is_avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
        is_amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        return onednn_bfloat16 and bool(is_avx512_bf16() or is_amx())
    if machine in ("aarch64", "arm64"):
        return onednn_bfloat16  # on ARM, oneDNN's check is the BF16 extension itself
    return False
