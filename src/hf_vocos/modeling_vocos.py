"""Vocos: a ConvNeXt backbone predicts STFT magnitude and phase, an inverse STFT makes the waveform."""

from __future__ import annotations

import functools
import math
import numbers
import weakref
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput, logging

from .capabilities import onednn_packed_linear_available, tiled_cpu_path_preferred
from .configuration_vocos import VocosConfig

logger = logging.get_logger(__name__)

__all__ = ["VocosModel", "VocosOutput", "VocosPreTrainedModel"]

# from_pretrained arguments that locate files, passed on when looking for an original-format checkpoint.
_HUB_KWARGS = ("cache_dir", "revision", "token", "local_files_only", "force_download", "subfolder")


@dataclass
class VocosOutput(ModelOutput):
    r"""
    Output of [`VocosModel`].

    Args:
        audio (`torch.FloatTensor` of shape `(batch_size, num_samples)`):
            The waveform, in float32. In a ragged batch the samples past an item's valid span are zero.
        attention_mask (`torch.IntTensor` of shape `(batch_size, num_samples)`):
            1 on the valid samples of each item, 0 on padding. [`VocosProcessor.batch_decode`] trims with it. When no
            item is padded it is a broadcast view of a single 1 (no memory of its own; `.clone()` it to write to it).
    """

    audio: torch.FloatTensor | None = None
    attention_mask: torch.Tensor | None = None


def sample_mask(config, audio: torch.Tensor, frame_lengths: torch.Tensor | None = None) -> torch.Tensor:
    """The output's sample-level `attention_mask` (int32, `audio`'s shape): 1 on the samples of each item's
    `frame_lengths` valid frames, 0 after. Without lengths (no padding) all ones, as a broadcast view of one element:
    a real tensor would take as much memory as the audio (58 MB for 10 minutes at 24 kHz). Reading it works as usual;
    writing to it needs a `.clone()` first."""
    if frame_lengths is None:
        return torch.ones((), dtype=torch.int32, device=audio.device).expand(audio.shape)
    num_samples = config.num_samples(frame_lengths.to(device=audio.device, dtype=torch.long))
    return (torch.arange(audio.shape[-1], device=audio.device)[None, :] < num_samples[:, None]).int()


class VocosAdaptiveLayerNorm(nn.Module):
    """Layer norm without affine parameters followed by a scale and shift looked up by bandwidth index."""

    def __init__(self, num_embeddings: int, hidden_size: int, eps: float):
        super().__init__()
        self.eps = eps
        self.hidden_size = hidden_size
        self.scale = nn.Embedding(num_embeddings, hidden_size)
        self.shift = nn.Embedding(num_embeddings, hidden_size)

    def affine(self, bandwidth_id: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer norm's weight and bias for `bandwidth_id` ((1,), one bandwidth for the whole call): its scale and
        shift rows. Outside tracing the index is read on the host and picks them as views of the tables: no lookup
        kernels (small calls on a GPU are bound by kernel launches), and a row out of range is refused there, on any
        device. `VocosModel.bandwidth_id` gives it on the CPU, so reading it costs no device sync. While tracing it
        stays a graph input and the rows are looked up, with the same values."""
        if not isinstance(bandwidth_id, torch.Tensor):
            raise TypeError(
                "`bandwidth_id` must be the tensor `model.bandwidth_id(bandwidth)` gives (this model's norms are "
                f"conditioned on the bandwidth), got {type(bandwidth_id).__name__}."
            )
        if bandwidth_id.numel() != 1:
            raise ValueError(
                f"`bandwidth_id` must hold one bandwidth row (shape (1,)): one bandwidth per call, got shape "
                f"{tuple(bandwidth_id.shape)}."
            )
        if bandwidth_id.is_floating_point() or bandwidth_id.is_complex() or bandwidth_id.dtype == torch.bool:
            raise TypeError(
                f"`bandwidth_id` must be an integer tensor (a bandwidth row), got dtype {bandwidth_id.dtype}."
            )
        if not _tracing():
            index = int(bandwidth_id)
            if not 0 <= index < self.scale.num_embeddings:
                raise ValueError(
                    f"`bandwidth_id` must be a bandwidth row from 0 to {self.scale.num_embeddings - 1}, got {index}."
                )
            return self.scale.weight[index], self.shift.weight[index]
        bandwidth_id = bandwidth_id.to(self.scale.weight.device)
        return self.scale(bandwidth_id)[0], self.shift(bandwidth_id)[0]

    def forward(self, hidden_states: torch.Tensor, bandwidth_id: torch.Tensor) -> torch.Tensor:
        # hidden_states: (batch, frames, hidden). With one bandwidth per call, its scale and shift rows are exactly a
        # layer norm's affine weight and bias: one fused kernel instead of three passes.
        scale, shift = self.affine(bandwidth_id)
        return nn.functional.layer_norm(hidden_states, (self.hidden_size,), weight=scale, bias=shift, eps=self.eps)


def _make_norm(config: VocosConfig) -> nn.Module:
    if config.use_adaptive_norm:
        return VocosAdaptiveLayerNorm(len(config.bandwidths), config.hidden_size, eps=config.layer_norm_eps)
    return nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


def _apply_norm(norm: nn.Module, hidden_states: torch.Tensor, bandwidth_id: torch.Tensor | None) -> torch.Tensor:
    if isinstance(norm, VocosAdaptiveLayerNorm):
        return norm(hidden_states, bandwidth_id)
    return norm(hidden_states)


def _row_norm(norm: nn.Module, bandwidth_id: torch.Tensor | None):
    """`norm` as a function of rows, its parameters looked up once: tiled inference applies it to every tile, and
    the adaptive norm would otherwise look its bandwidth's rows up again on each (the same layer norm either way)."""
    if isinstance(norm, VocosAdaptiveLayerNorm):
        shape, (weight, bias) = (norm.hidden_size,), norm.affine(bandwidth_id)
    else:
        shape, weight, bias = norm.normalized_shape, norm.weight, norm.bias
    return functools.partial(nn.functional.layer_norm, normalized_shape=shape, weight=weight, bias=bias, eps=norm.eps)


# CPU inference runs each block (convolution, norm, MLP) over tiles of this many frames: the (tile, intermediate_size)
# activation stays in cache instead of a whole-sequence tensor going through memory (measured 14% faster per block on
# 60 s of audio), and no whole-sequence temporary is paged in per block. The backbone's norms, the head, the inverse
# FFT and (in `forward`) the overlap-add run over the same tiles (docs/benchmarks.md has the numbers).
_MLP_TILE_FRAMES = 1024


def _tracing() -> bool:
    """Whether torch.compile, export or the JIT tracer is tracing the model (rather than running it eagerly)."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def _eager_inference() -> bool:
    """Eager inference: not tracing, no autograd. Only then may results be computed in place or from cached values."""
    return not (_tracing() or torch.is_grad_enabled())


def _tiled_cpu_inference(hidden_states: torch.Tensor) -> bool:
    """Whether to run frame-wise work over tiles of frames: eager CPU inference only, on a CPU where that path was
    measured faster (`capabilities.tiled_cpu_path_preferred`). Training keeps whole-sequence ops (autograd),
    accelerators gain nothing, and compile, export and tracing need a graph whose size does not depend on the
    input's length."""
    return _eager_inference() and hidden_states.device.type == "cpu" and tiled_cpu_path_preferred()


def _accelerator_inference(tensor: torch.Tensor) -> bool:
    """Eager inference off the CPU (a GPU's): whole-sequence ops, and the fewest kernels that compute them, since small
    calls there are bound by kernel launches, not by the device."""
    return _eager_inference() and tensor.device.type != "cpu"


def _value_checks_enabled() -> bool:
    """Whether to run the input checks that read tensor values (finite features, codes in range, the mask's form).
    They bring values to the host, so they are skipped while torch.compile or export traces the model: each would be
    a graph break, and `torch.compile(model, fullgraph=True)` would fail. Shapes and dtypes are checked either way."""
    return not _tracing()


def _uses_packed_linear(module: nn.Module, weight: torch.Tensor) -> bool:
    """Whether CPU inference multiplies `module`'s `weight` by packed copies: the model has not turned packing off
    (`VocosModel.pack_cpu_weights`), no CPU autocast region is active (the packed products would bypass it: the
    autocast dtype is the one actually used, and the plain modules follow it), and oneDNN packs the weight's dtype
    on this CPU."""
    return (
        getattr(module, "_pack_cpu_weights", True)
        and not torch.is_autocast_enabled("cpu")
        and onednn_packed_linear_available(weight.dtype)
    )


# Packed copies of weights for CPU inference (each block's MLP, the layer scale folded into its second product, and
# the head's projection). Held here, not on the modules (so copies, pickles and state dicts never see them), and
# rebuilt when any of the weights behind them changes: another tensor, an in-place update (its version counter) or a
# new dtype.
_PACKED_WEIGHTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cached_packing(owner: nn.Module, sources: tuple[torch.Tensor, ...], pack) -> tuple[torch.Tensor, ...]:
    """`pack()`'s tensors for `owner`, made once and again only when one of `sources` has changed."""
    entry = _PACKED_WEIGHTS.get(owner)
    if entry is not None and all(
        ref() is tensor and state == (tensor.data_ptr(), tensor._version, tensor.dtype)
        for (ref, state), tensor in zip(entry[0], sources)
    ):
        return entry[1]
    with torch.no_grad():
        packed = pack()
    states = tuple((weakref.ref(tensor), (tensor.data_ptr(), tensor._version, tensor.dtype)) for tensor in sources)
    _PACKED_WEIGHTS[owner] = (states, packed)
    return packed


def _packed_mlp_weights(block: VocosConvNeXtBlock) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(first weight, second weight x layer scale, second bias x layer scale), the weights packed for oneDNN."""

    def pack():
        # Folded in float32 and rounded once: gamma * (W x + b) = (gamma W) x + gamma b.
        dtype, gamma = block.pwconv2.weight.dtype, block.gamma.float()
        second = (block.pwconv2.weight.float() * gamma[:, None]).to(dtype)
        return (
            torch.ops.mkldnn._reorder_linear_weight(block.pwconv1.weight.detach(), _MLP_TILE_FRAMES),
            torch.ops.mkldnn._reorder_linear_weight(second, _MLP_TILE_FRAMES),
            (block.pwconv2.bias.float() * gamma).to(dtype),
        )

    return _cached_packing(block, (block.pwconv1.weight, block.pwconv2.weight, block.pwconv2.bias, block.gamma), pack)


def _packed_head_weights(head: VocosISTFTHead) -> tuple[torch.Tensor, torch.Tensor]:
    """The head projection's log-magnitude and phase halves of the weight, each packed for oneDNN."""
    weight, bins = head.out.weight, head.out.out_features // 2

    def pack():
        return tuple(
            torch.ops.mkldnn._reorder_linear_weight(half.detach().contiguous(), _MLP_TILE_FRAMES)
            for half in (weight[:bins], weight[bins:])
        )

    return _cached_packing(head, (weight,), pack)


def _conv_time_major(hidden_states: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """Apply a "same"-padded `nn.Conv1d` to (batch, frames, channels), returning (batch, frames, out_channels).

    The input is viewed as a channels-last (batch, channels, 1, frames) image, so the convolution runs in that layout
    (oneDNN and cuDNN support it natively) and its channels-last output is the (batch, frames, channels) result: no
    transposing copies. The weights stay those of the `nn.Conv1d`, so checkpoints are unchanged.
    """
    image = hidden_states.transpose(1, 2).unsqueeze(2)
    output = nn.functional.conv2d(
        image, conv.weight.unsqueeze(2), conv.bias, padding=(0, conv.padding[0]), groups=conv.groups
    )
    return output.squeeze(2).transpose(1, 2)


class VocosConvNeXtBlock(GradientCheckpointingLayer):
    """ConvNeXt block on a 1-D sequence: depthwise conv -> norm -> Linear -> activation -> Linear -> layer scale,
    plus the residual. Works on (batch, frames, hidden)."""

    def __init__(self, config: VocosConfig):
        super().__init__()
        self.dwconv = nn.Conv1d(
            config.hidden_size,
            config.hidden_size,
            kernel_size=config.kernel_size,
            padding=config.kernel_size // 2,
            groups=config.hidden_size,
        )
        self.norm = _make_norm(config)
        self.pwconv1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        # oneDNN can fuse exactly this activation (erf GELU) into the first matmul.
        self._fusable_gelu = config.hidden_act == "gelu"
        self.pwconv2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.gamma = nn.Parameter(torch.full((config.hidden_size,), config.layer_scale_init_value))

    def forward(
        self,
        hidden_states: torch.Tensor,
        frame_mask: torch.Tensor | None = None,
        bandwidth_id: torch.Tensor | None = None,
        reuse_input: bool = False,
    ) -> torch.Tensor:
        """hidden_states (batch, frames, hidden) -> same shape. `reuse_input=True` lets CPU inference write the output
        over `hidden_states` (the backbone does, for the intermediate tensors it owns); otherwise it is left as is."""
        if frame_mask is not None:
            # Zero the padded frames so the convolution sees what a solo item sees: zero padding past its end.
            hidden_states = hidden_states * frame_mask
            reuse_input = True  # the product is this block's own
        if _tiled_cpu_inference(hidden_states):
            return self._tiled_forward(hidden_states, reuse_input, bandwidth_id)
        residual = hidden_states
        hidden_states = _conv_time_major(hidden_states, self.dwconv)
        hidden_states = _apply_norm(self.norm, hidden_states, bandwidth_id)
        hidden_states = self.pwconv2(self.act(self.pwconv1(hidden_states)))
        return torch.addcmul(residual, self.gamma, hidden_states)

    def _tiled_forward(
        self, hidden_states: torch.Tensor, reuse_input: bool, bandwidth_id: torch.Tensor | None
    ) -> torch.Tensor:
        """CPU inference: the whole block over tiles of frames. Each tile's depthwise convolution reads its frames plus
        `kernel_size // 2` on each side (zeros only at the sequence's own edges, so its values are the whole
        sequence's), then the norm, the MLP, the layer scale and the residual run on that tile while it is in cache.
        No whole-sequence temporary is made: depending on the process's allocation history, glibc can page each fresh
        11.5 MB one (release mel size) in anew on every call, 2,800 page faults apiece (docs/benchmarks.md).

        The output goes over `hidden_states` when `reuse_input`. A tile's result is then held back until the next
        tile's convolution has read the input frames it overlaps, and written after. With oneDNN the products run on
        packed weights, the GELU fused into the first (exact GELU only), the layer scale folded into the second, whose
        epilogue adds the residual."""
        batch_size, num_frames, hidden_size = hidden_states.shape
        radius = self.dwconv.padding[0]
        output = hidden_states if reuse_input else torch.empty_like(hidden_states)
        tile_frames = max(_MLP_TILE_FRAMES, radius)  # a held-back tile must not reach past the next one's left edge
        tile_mlp = self._tile_mlp(bandwidth_id)
        held = None
        for start in range(0, num_frames, tile_frames):
            stop = min(start + tile_frames, num_frames)
            low, high = max(start - radius, 0), min(stop + radius, num_frames)
            convolved = _conv_time_major(hidden_states[:, low:high], self.dwconv)[:, start - low : stop - low]
            if held is not None:
                output[:, held[0] : held[1]] = held[2]
            residual = hidden_states[:, start:stop].reshape(-1, hidden_size)
            product = tile_mlp(convolved.reshape(-1, hidden_size), residual)
            held = (start, stop, product.view(batch_size, stop - start, hidden_size))
        if held is not None:
            output[:, held[0] : held[1]] = held[2]
        return output

    def _tile_mlp(self, bandwidth_id: torch.Tensor | None):
        """CPU inference's rest of the block after the depthwise convolution, as a function of one tile's rows:
        `(convolved, residual) -> residual + layer scale x MLP(norm(convolved))`, all (frames, hidden), a fresh
        result. Its weights are fetched once per call of this method: packed by oneDNN where available (the GELU fused
        into the first product for exact GELU, the layer scale folded into the second, whose epilogue adds the
        residual), the plain modules otherwise."""
        norm = _row_norm(self.norm, bandwidth_id)
        if not _uses_packed_linear(self, self.pwconv1.weight):
            return lambda convolved, residual: torch.addcmul(
                residual, self.gamma, self.pwconv2(self.act(self.pwconv1(norm(convolved))))
            )
        first, second, second_bias = _packed_mlp_weights(self)

        def packed(convolved: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
            rows = norm(convolved)
            if self._fusable_gelu:
                inner = torch.ops.mkldnn._linear_pointwise(rows, first, self.pwconv1.bias, "gelu", [], "none")
            else:
                inner = self.act(torch.ops.mkldnn._linear_pointwise(rows, first, self.pwconv1.bias, "none", [], ""))
            return torch.ops.mkldnn._linear_pointwise.binary(inner, residual, second, second_bias, "add")

        return packed


class VocosBackbone(nn.Module):
    """Input convolution, norm, ConvNeXt blocks and a final layer norm; keeps the frame rate."""

    def __init__(self, config: VocosConfig):
        super().__init__()
        self.embed = nn.Conv1d(
            config.input_channels,
            config.hidden_size,
            kernel_size=config.input_kernel_size,
            padding=config.input_kernel_size // 2,
        )
        self.norm = _make_norm(config)
        self.convnext = nn.ModuleList([VocosConvNeXtBlock(config) for _ in range(config.num_hidden_layers)])
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(
        self,
        features: torch.Tensor,
        frame_mask: torch.Tensor | None = None,
        bandwidth_id: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """features: (batch, channels, frames); frame_mask: (batch, frames, 1) or None. Returns (batch, frames,
        hidden)."""
        hidden_states = features.transpose(1, 2)  # (batch, channels, frames) -> (batch, frames, channels)
        for index in range(len(self.convnext) + 2):
            # Past the first stage the input is a tensor made here, which CPU inference may overwrite.
            hidden_states = self.forward_stage(index, hidden_states, bandwidth_id, frame_mask, own_input=index > 0)
        return hidden_states

    @property
    def stage_radii(self) -> list[int]:
        """Frames of context each stage of `forward_stage` reads on each side of a frame: the input convolution
        (with the norm after it), each block, then the final norm (0)."""
        return [self.embed.padding[0]] + [block.dwconv.padding[0] for block in self.convnext] + [0]

    @property
    def receptive_radius(self) -> int:
        """Frames on each side that influence a frame: every convolution reaches `kernel_size // 2` further."""
        return sum(self.stage_radii)

    def forward_stage(
        self,
        index: int,
        hidden_states: torch.Tensor,
        bandwidth_id: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        own_input: bool = False,
    ) -> torch.Tensor:
        """Stage `index` of `forward` on time-major frames (batch, frames, channels), zero-padded at their edges as
        `forward` pads the sequence's: 0 is the input convolution and norm (input_channels -> hidden), 1 to
        `num_hidden_layers` the blocks, the last the final norm. `forward` is these stages in order; the streaming
        decoder runs each on the new frames only. `own_input=True` lets CPU inference write over `hidden_states`."""
        last = len(self.convnext) + 1
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"`index` must be an integer stage from 0 to {last}, got {index!r}.")
        if not 0 <= index <= last:
            raise ValueError(f"`index` must be a stage from 0 to {last}, got {index}.")
        channels = self.embed.in_channels if index == 0 else self.embed.out_channels
        if hidden_states.dim() != 3 or hidden_states.shape[-1] != channels:
            raise ValueError(
                f"`hidden_states` of stage {index} must be time-major frames (batch, frames, {channels}), got shape "
                f"{tuple(hidden_states.shape)}."
            )
        if index == 0:
            if frame_mask is not None:
                hidden_states = hidden_states * frame_mask
            hidden_states = _conv_time_major(hidden_states.contiguous(), self.embed)
            # (the convolution's output is a fresh tensor: its norm may go in place)
            return _norm_rows(self.norm, hidden_states, bandwidth_id, in_place=_tiled_cpu_inference(hidden_states))
        if index <= len(self.convnext):
            return self.convnext[index - 1](hidden_states, frame_mask, bandwidth_id, reuse_input=own_input)
        in_place = own_input and _tiled_cpu_inference(hidden_states)
        return _norm_rows(self.final_layer_norm, hidden_states, None, in_place=in_place)


def _norm_rows(
    norm: nn.Module, hidden_states: torch.Tensor, bandwidth_id: torch.Tensor | None, in_place: bool
) -> torch.Tensor:
    """The norm of (batch, frames, hidden); with `in_place` (CPU inference, on a tensor the caller owns) written over
    the input a tile of frames at a time: the norm is row-wise, so the values are the same, and no whole-sequence
    output is allocated (which glibc may page in anew on every call, as the blocks' temporaries)."""
    if not in_place:
        return _apply_norm(norm, hidden_states, bandwidth_id)
    rows, row_norm = hidden_states.view(-1, hidden_states.shape[-1]), _row_norm(norm, bandwidth_id)
    for start in range(0, rows.shape[0], _MLP_TILE_FRAMES):
        tile = rows[start : start + _MLP_TILE_FRAMES]
        tile.copy_(row_norm(tile))
    return hidden_states


# Window energy below which a sample counts as covered by no frame (it becomes 0 instead of being divided).
_ENVELOPE_FLOOR = 1e-11


class VocosISTFT(nn.Module):
    """Inverse STFT by overlap-add, normalised per item by the summed squared window of that item's own frames.

    `"center"` equals `torch.istft(center=True)`; `"same"` trims `(n_fft - hop_length) // 2` samples on each side
    (the original's custom ISTFT). With a frame mask, padded frames contribute neither signal nor window energy,
    so each item of a ragged batch gets the audio it gets alone.

    The steps are public for streaming and export: `frames` (spectrum -> windowed time frames), `overlap_add`,
    `window_envelope`. With `use_dft_matmul = True`, `frames` is a matmul with the inverse DFT basis instead of an
    FFT (no complex numbers, no FFT operator: what ONNX export needs); both agree to float32 rounding.
    """

    def __init__(self, config: VocosConfig):
        super().__init__()
        self.n_fft = config.n_fft
        self.hop_length = config.hop_length
        self.win_length = config.win_length
        self.trim = config.istft_trim
        # Derived from the config, so not saved; `_init_weights` refills it after a meta-device load.
        self.register_buffer("window", self.make_window(), persistent=False)
        self.dft_basis = None
        # Values derived from the config, made once per device by `_per_device` (None until then): the exact window
        # of a cast model (`_float_window`), the short envelope's parts (`_divide_unmasked_`).
        self._window_float32 = None
        self._edge_envelope = None

    @property
    def use_dft_matmul(self) -> bool:
        """Whether `frames` multiplies by the inverse DFT basis (kept as a buffer while on) instead of an FFT."""
        return self.dft_basis is not None

    @use_dft_matmul.setter
    def use_dft_matmul(self, enabled: bool) -> None:
        self.dft_basis = self.inverse_dft_basis() if enabled else None

    def make_window(self) -> torch.Tensor:
        """Periodic Hann window of `win_length`, zero-padded to `n_fft` on both sides (as `torch.istft` does)."""
        window = torch.hann_window(self.win_length, periodic=True)
        left = (self.n_fft - self.win_length) // 2
        return nn.functional.pad(window, (left, self.n_fft - self.win_length - left))

    def _per_device(self, name: str, device: torch.device, make):
        """`make()`, kept in attribute `name` as (device, value) and made again only for another device. Made outside
        inference mode, so that autograd may use it too; not kept while tracing (it would hold traced values)."""
        entry = getattr(self, name)
        if entry is not None and entry[0] == device:
            return entry[1]
        with torch.inference_mode(False), torch.no_grad():
            value = make()
        if not _tracing():
            setattr(self, name, (device, value))
        return value

    def _float_window(self) -> torch.Tensor:
        window = self.window
        if window.dtype == torch.float32:
            return window
        # The model was cast (e.g. to bfloat16), buffers included; the ISTFT runs in float32 with the exact window,
        # made once per device (CPU inference asks for it on every tile).
        return self._per_device("_window_float32", window.device, lambda: self.make_window().to(window.device))

    def inverse_dft_basis(self) -> torch.Tensor:
        """(2 * (n_fft // 2 + 1), n_fft) matrix B with `cat([real, imag], -1) @ B` = `irfft(real + i imag) * window`."""
        bins = self.n_fft // 2 + 1
        frequency = torch.arange(bins, dtype=torch.float64)[:, None]
        time = torch.arange(self.n_fft, dtype=torch.float64)[None, :]
        angle = 2 * math.pi * frequency * time / self.n_fft
        # A one-sided spectrum counts every bin twice but DC and (for even n_fft) Nyquist.
        weight = torch.full((bins, 1), 2.0, dtype=torch.float64)
        weight[0] = 1.0
        if self.n_fft % 2 == 0:
            weight[-1] = 1.0
        window = self._float_window().to(torch.float64).cpu()
        basis = torch.cat([weight * torch.cos(angle), -weight * torch.sin(angle)]) / self.n_fft * window
        return basis.to(dtype=torch.float32, device=self.window.device)

    def frames(self, real: torch.Tensor, imag: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """One-sided spectrum (batch, frames, n_fft // 2 + 1) as real and imaginary parts -> windowed time frames
        (batch, frames, n_fft), written into `out` when given."""
        if self.dft_basis is not None:
            frames = torch.cat([real, imag], dim=-1) @ self.dft_basis.to(real.device)
            return frames if out is None else out.copy_(frames)  # (matmul's out= refuses a strided slice)
        return self._inverse_fft(torch.complex(real, imag), out)

    def _inverse_fft(self, spectrum: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Complex one-sided spectrum -> windowed time frames, by the inverse real FFT (into `out` when given)."""
        # (Not irfft's own `out=`: it transforms into a temporary and copies that over, one more pass than the
        # window's product writing into `out`.)
        frames = torch.fft.irfft(spectrum, n=self.n_fft, dim=-1)
        return frames.mul_(self._float_window()) if out is None else torch.mul(frames, self._float_window(), out=out)

    def _frames_of_spectrum(self, spectrum: torch.Tensor, out: torch.Tensor) -> None:
        """`frames` into `out` for a spectrum given as one complex tensor (CPU inference's per-call buffer): the
        inverse FFT reads it as is (no complex tensor made per tile), and the window's product writes into `out`."""
        if self.dft_basis is None:
            self._inverse_fft(spectrum, out)
        else:
            parts = torch.view_as_real(spectrum)
            self.frames(parts[..., 0], parts[..., 1], out=out)

    def overlap_add(self, frames: torch.Tensor) -> torch.Tensor:
        """Sum frames (batch, frames, n_fft) placed `hop_length` apart: (batch, (frames - 1) * hop_length + n_fft)."""
        batch_size, num_frames, _ = frames.shape
        if self.n_fft % self.hop_length == 0 and not _accelerator_inference(frames):
            # Frame f's r-th hop-sized piece lands on output block f + r: R shifted additions of (batch, frames, hop).
            # (Eager inference on an accelerator folds instead: one kernel, not 2R - 1, for calls bound by kernel
            # launches; the sums then run in another order, equal to float32 rounding. Traced graphs keep the
            # additions, which ONNX export needs.)
            pieces = self.n_fft // self.hop_length
            split = frames.reshape(batch_size, num_frames, pieces, self.hop_length)
            total = None
            for r in range(pieces):
                shifted = nn.functional.pad(split[:, :, r], (0, 0, r, pieces - 1 - r))
                total = shifted if total is None else total + shifted
            return total.reshape(batch_size, -1)
        length = (num_frames - 1) * self.hop_length + self.n_fft
        return nn.functional.fold(
            frames.transpose(1, 2), output_size=(1, length), kernel_size=(1, self.n_fft), stride=(1, self.hop_length)
        ).reshape(batch_size, length)

    def window_envelope(self, frame_mask: torch.Tensor | None, num_frames: int) -> torch.Tensor:
        """The overlap-added squared window of the frames present: (batch or 1, (frames - 1) * hop_length + n_fft)."""
        square = self._float_window().square()
        presence = frame_mask if frame_mask is not None else square.new_ones(1, num_frames, 1)
        if self.n_fft % self.hop_length == 0:
            pieces = self.n_fft // self.hop_length
            split = square.view(pieces, self.hop_length)
            total = None
            for r in range(pieces):
                shifted = nn.functional.pad(presence * split[r], (0, 0, r, pieces - 1 - r))
                total = shifted if total is None else total + shifted
            return total.reshape(presence.shape[0], -1)
        return self.overlap_add(presence * square)

    def normalize(self, audio: torch.Tensor, envelope: torch.Tensor) -> torch.Tensor:
        """Divide by the window envelope; samples no frame covers (padding) become 0."""
        covered = envelope > _ENVELOPE_FLOOR
        return torch.where(covered, audio / torch.where(covered, envelope, 1.0), 0.0)

    def synthesize(self, frames: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Windowed frames (batch, frames, n_fft), zero where masked -> audio (batch, config.num_samples(frames)): overlap-add,
        trim, and divide by the window envelope of the frames present."""
        audio = self.overlap_add(frames)
        if frame_mask is None and self._periodic_envelope(frames.shape[1]) and _eager_inference():
            # Eager inference without a mask (the GPU's path): divided in place by the periodic envelope, a few
            # kernels instead of some twenty to build and apply a whole-length one; small inputs on a GPU are bound
            # by kernel launches. The same values as below (and, on the CPU, as `synthesize_tiles`), bit for bit.
            self._divide_unmasked_(audio.view(audio.shape[0], -1, self.hop_length), frames.shape[1])
            audio = audio[:, self.trim : audio.shape[-1] - self.trim]
            return audio.contiguous()
        envelope = self.window_envelope(frame_mask, frames.shape[1])
        end = audio.shape[-1] - self.trim
        return self.normalize(audio[:, self.trim : end], envelope[:, self.trim : end])

    def _periodic_envelope(self, num_frames: int) -> bool:
        """Whether an unmasked envelope of `num_frames` frames is periodic between its first and last `carry` blocks
        of `hop_length` samples (`carry = n_fft // hop_length - 1`, the frames' overlap)."""
        return self.n_fft % self.hop_length == 0 and num_frames >= 2 * (self.n_fft // self.hop_length - 1)

    def _divide_unmasked_(self, blocks: torch.Tensor, num_frames: int) -> None:
        """Divide the overlap-added audio of `num_frames` unmasked frames, as hop-sized blocks (batch, num_frames +
        carry, hop_length), by the window envelope, in place: its first and last `carry` blocks are those of a
        2 * carry-frame envelope, every block between is its middle block. That short envelope (with 1 where no frame
        covers a sample, which is then set to 0, as `normalize` does) is made once per device."""
        carry = self.n_fft // self.hop_length - 1

        def make_parts():
            short = self.window_envelope(None, 2 * carry).to(blocks.device).view(-1, self.hop_length)
            # Samples no frame covers but that the trim removes anyway (the edges' first and last) need no zeroing.
            trimmed = torch.zeros(short.shape, dtype=torch.bool, device=short.device)
            trimmed.view(-1)[: self.trim] = True
            trimmed.view(-1)[trimmed.numel() - self.trim :] = True
            parts = []
            for rows, cut in zip(
                (short[:carry], short[carry], short[2 * carry :]),  # first blocks, any middle one, last
                (trimmed[:carry], torch.zeros_like(trimmed[carry]), trimmed[2 * carry :]),
            ):
                covered = rows > _ENVELOPE_FLOOR
                parts.append((torch.where(covered, rows, 1.0), None if bool((covered | cut).all()) else ~covered))
            return parts

        parts = self._per_device("_edge_envelope", blocks.device, make_parts)
        for part, (divisor, uncovered) in zip(
            (blocks[:, :carry], blocks[:, carry:num_frames], blocks[:, num_frames:]), parts
        ):
            part.div_(divisor)
            if uncovered is not None:
                part.masked_fill_(uncovered, 0.0)

    def synthesize_tiles(
        self,
        make_frames,
        batch_size: int,
        num_frames: int,
        frame_mask: torch.Tensor | None = None,
        tile_frames: int | None = None,
    ) -> torch.Tensor:
        """`synthesize` for frames made a tile at a time: `make_frames(start, stop, out)` writes the windowed frames
        [start, stop) into `out` (batch, stop - start, n_fft). Each tile is overlap-added while it is in cache, from
        one tile-sized buffer, instead of a whole-sequence frames buffer; every sample sums its frames in the same
        order as `synthesize`, and is divided by the same envelope, so the audio is the same bit for bit. Needs a
        hop that divides n_fft (`synthesize` folds the other cases). `tile_frames` defaults to the model's tile."""
        tile_frames = _MLP_TILE_FRAMES if tile_frames is None else tile_frames
        if isinstance(tile_frames, bool) or not isinstance(tile_frames, numbers.Integral) or tile_frames < 1:
            raise ValueError(f"`tile_frames` must be a positive integer, got {tile_frames!r}.")
        if self.n_fft % self.hop_length:
            raise ValueError(
                f"synthesize_tiles needs hop_length ({self.hop_length}) to divide n_fft ({self.n_fft}); use synthesize."
            )
        device = self.window.device
        hop, pieces = self.hop_length, self.n_fft // self.hop_length
        carry = pieces - 1
        # Rows [0, carry) hold the previous tile's last frames (zeros before the first), then the tile's own frames.
        buffer = torch.zeros(batch_size, carry + max(min(tile_frames, num_frames), carry), self.n_fft, device=device)
        blocks = torch.empty(batch_size, num_frames + carry, hop, device=device)  # hop-sized blocks of the audio
        start = 0
        while start < num_frames + carry:
            # Past the last frame, one more step over `carry` zero frames completes the last blocks.
            stop = min(start + tile_frames, num_frames) if start < num_frames else start + carry
            count = stop - start
            tile = buffer[:, carry : carry + count]
            if start < num_frames:
                make_frames(start, stop, tile)
                if frame_mask is not None:
                    tile.mul_(frame_mask[:, start:stop])
            else:
                tile.zero_()
            # Block b sums piece r of frame b - r over r = 0 .. pieces - 1, in that order (as `overlap_add` does).
            # (hop_length < win_length <= n_fft, so there are at least two pieces.)
            target = blocks[:, start:stop]
            torch.add(tile[..., :hop], buffer[:, carry - 1 : carry - 1 + count, hop : 2 * hop], out=target)
            for r in range(2, pieces):
                target.add_(buffer[:, carry - r : carry - r + count, r * hop : (r + 1) * hop])
            buffer[:, :carry] = buffer[:, count : count + carry].clone()
            start = stop
        audio = blocks.view(batch_size, -1)
        if frame_mask is None and self._periodic_envelope(num_frames):
            # Without a mask the envelope is periodic between the first and last `carry` blocks.
            self._divide_unmasked_(blocks, num_frames)
        else:
            self._divide_(audio, self.window_envelope(frame_mask, num_frames))
        audio = audio[:, self.trim : audio.shape[-1] - self.trim]
        return audio if audio.is_contiguous() else audio.contiguous()

    @staticmethod
    def _divide_(audio: torch.Tensor, envelope: torch.Tensor) -> None:
        """`normalize` in place."""
        covered = envelope > _ENVELOPE_FLOOR
        audio.div_(torch.where(covered, envelope, 1.0))
        if not covered.all():
            audio.masked_fill_(~covered, 0.0)

    def forward(self, real: torch.Tensor, imag: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """real, imag: (batch, frames, n_fft // 2 + 1); frame_mask: (batch, frames, 1) or None.
        Returns (batch, config.num_samples(frames))."""
        frames = self.frames(real, imag)
        return self.synthesize(frames if frame_mask is None else frames * frame_mask, frame_mask)


class VocosISTFTHead(nn.Module):
    """Linear projection to log-magnitude and phase, then the inverse STFT."""

    def __init__(self, config: VocosConfig):
        super().__init__()
        self.max_magnitude = config.max_magnitude
        self.out = nn.Linear(config.hidden_size, config.n_fft + 2)
        self.istft = VocosISTFT(config)

    def spectrum(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, frames, hidden) -> real and imaginary parts (batch, frames, n_fft // 2 + 1), in float32 whatever
        the model's dtype: the ISTFT needs it and it is cheap."""
        return self._spectrum(hidden_states)

    def _spectrum(
        self, hidden_states: torch.Tensor, out: torch.Tensor | None = None, workspace: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`spectrum`; in CPU inference only, `out` (complex64, (batch, frames, bins)) takes it, with `workspace`
        (float32, the same shape) for a temporary, and the parts returned are its real and imaginary views."""
        tiled = _tiled_cpu_inference(hidden_states)
        packed = tiled and _uses_packed_linear(self, self.out.weight)
        log_magnitude, phase = (half.float() for half in self._projection_halves(hidden_states, packed))
        if tiled:
            # Inference: the same values computed in place (fewer temporaries; these are fresh tensors).
            magnitude = self._magnitude_(log_magnitude)
            if out is not None:  # (only CPU inference passes it)
                # The products made contiguous and then interleaved into `out` by one pass: writing them straight
                # into its strided real and imaginary halves took about 0.3 ms more per 1024-frame tile.
                real = torch.cos(phase, out=workspace).mul_(magnitude)
                torch.complex(real, phase.sin_().mul_(magnitude), out=out)
                parts = torch.view_as_real(out)
                return parts[..., 0], parts[..., 1]
            real = torch.cos(phase)
            return real.mul_(magnitude), phase.sin_().mul_(magnitude)
        magnitude = torch.exp(log_magnitude).clip(max=self.max_magnitude)
        return magnitude * torch.cos(phase), magnitude * torch.sin(phase)

    def _magnitude_(self, log_magnitude: torch.Tensor) -> torch.Tensor:
        """exp and the clamp to `max_magnitude`, in place on `log_magnitude` (a fresh tensor the caller owns)."""
        return log_magnitude.exp_().clamp_(max=self.max_magnitude)

    def _complex_spectrum(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`spectrum` as one complex64 tensor, for eager inference off the CPU (small calls on a GPU are bound by
        kernel launches): one product for both halves, exp and clamp in place, `torch.polar` for magnitude x (cos +
        i sin): five kernels instead of the nine of the parts then `torch.complex`. (On the CPU `torch.polar` is not
        vectorised; CPU inference makes its spectrum a tile at a time instead.) The same values to float32
        rounding."""
        log_magnitude, phase = self.out(hidden_states).float().chunk(2, dim=-1)
        return torch.polar(self._magnitude_(log_magnitude), phase)

    def _projection_halves(self, hidden_states: torch.Tensor, packed: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The projection's log-magnitude and phase halves, in the model's dtype: two products on row slices of the
        same weight, so each half comes out contiguous and exp/cos/sin run vectorised instead of on a strided half of
        one output. `packed` (CPU inference): on oneDNN's linear with packed copies of the halves, as the blocks'
        MLPs."""
        bins = self.out.out_features // 2
        weight, bias = self.out.weight, self.out.bias
        if packed:
            return tuple(
                torch.ops.mkldnn._linear_pointwise(hidden_states, half, part, "none", [], "")
                for half, part in zip(_packed_head_weights(self), (bias[:bins], bias[bins:]))
            )
        return (
            nn.functional.linear(hidden_states, weight[:bins], bias[:bins]),
            nn.functional.linear(hidden_states, weight[bins:], bias[bins:]),
        )

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """hidden_states: (batch, frames, hidden). Returns float32 audio (batch, samples)."""
        real, imag = self.spectrum(hidden_states)
        return self.istft(real, imag, frame_mask)


class VocosCodebookEmbedding(nn.Module):
    """The EnCodec codebooks, concatenated into one table: features are the sum over codebooks of the entries the
    codes pick (codebook k's entries start at row k * codebook_size)."""

    def __init__(self, config: VocosConfig):
        super().__init__()
        self.codebook_size = config.codebook_size
        self.weight = nn.Parameter(torch.empty(config.num_codebooks * config.codebook_size, config.codebook_dim))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: (num_quantizers, batch, frames) integers. Returns (batch, codebook_dim, frames)."""
        num_quantizers, batch_size, num_frames = codes.shape
        size = self.codebook_size
        offsets = torch.arange(0, num_quantizers * size, size, device=codes.device)
        # One bag of num_quantizers rows per frame, summed without materialising every embedding.
        rows = (codes + offsets[:, None, None]).permute(1, 2, 0).reshape(-1, num_quantizers)
        embeddings = nn.functional.embedding_bag(rows, self.weight, mode="sum")
        return embeddings.view(batch_size, num_frames, -1).transpose(1, 2)


class VocosPreTrainedModel(PreTrainedModel):
    config_class = VocosConfig
    base_model_prefix = "vocos"
    main_input_name = "input_features"
    supports_gradient_checkpointing = True
    _no_split_modules = ["VocosConvNeXtBlock"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            init.trunc_normal_(module.weight, std=self.config.initializer_range)
            init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, VocosAdaptiveLayerNorm):
            init.ones_(module.scale.weight)
            init.zeros_(module.shift.weight)
        elif isinstance(module, VocosConvNeXtBlock):
            init.constant_(module.gamma, self.config.layer_scale_init_value)
        elif isinstance(module, VocosISTFT):
            init.copy_(module.window, module.make_window())
        elif isinstance(module, VocosCodebookEmbedding):
            init.normal_(module.weight, std=1.0)


class VocosModel(VocosPreTrainedModel):
    r"""
    The Vocos vocoder: log-mel features (mel variant) or EnCodec codes (EnCodec variant) in, a waveform out, in one
    forward pass.

    Both variants share this class; the config decides. A codes model (`config.bandwidths` set) owns the codebook
    embedding table, so `model(codes=codes, bandwidth=6.0)` needs nothing else.
    """

    def __init__(self, config: VocosConfig):
        super().__init__(config)
        self.codebook_embedding = VocosCodebookEmbedding(config) if config.is_codes_model else None
        self.backbone = VocosBackbone(config)
        self.head = VocosISTFTHead(config)
        self.post_init()

    @property
    def pack_cpu_weights(self) -> bool:
        """Whether CPU inference multiplies by oneDNN-packed copies of the blocks' MLP weights and the head's
        projection (default `True`, where oneDNN offers it: faster, but the copies cost the size of those weights
        once more, 52 MB for the release mel model in float32). Setting `False` frees this model's copies at once and
        runs the plain products instead (the same audio to float32 rounding); `True` packs again on the next call.
        A runtime setting: not saved with the model."""
        return all(getattr(module, "_pack_cpu_weights", True) for module in self._packing_modules())

    @pack_cpu_weights.setter
    def pack_cpu_weights(self, enabled: bool) -> None:
        if not isinstance(enabled, bool):
            raise TypeError(f"`pack_cpu_weights` must be True or False, got {enabled!r}.")
        for module in self._packing_modules():
            module._pack_cpu_weights = enabled
            if not enabled:
                _PACKED_WEIGHTS.pop(module, None)

    def _packing_modules(self) -> list[nn.Module]:
        return [*self.backbone.convnext, self.head]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        r"""
        Load a model saved with `save_pretrained` (a folder or a Hub repository), as any transformers model.

        A folder or repository in the original `vocos` format (`config.yaml` + `pytorch_model.bin`, e.g.
        `charactr/vocos-mel-24khz`) is converted on the fly with `hf_vocos.conversion`, with a log line saying so;
        `dtype` and a single-device `device_map` are honoured then. Save the result with `save_pretrained` to skip
        the conversion next time.
        """
        from .conversion import convert_original_checkpoint, find_original_checkpoint

        original = None
        if pretrained_model_name_or_path is not None and not model_args:
            original = find_original_checkpoint(
                pretrained_model_name_or_path, **{key: kwargs[key] for key in _HUB_KWARGS if key in kwargs}
            )
        if original is None:
            return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        logger.warning(
            f"{pretrained_model_name_or_path} is an original Vocos checkpoint (config.yaml + pytorch_model.bin): "
            "converting it on the fly. model.save_pretrained(folder) keeps the converted model."
        )
        model, _ = convert_original_checkpoint(*original)
        dtype = kwargs.get("dtype", kwargs.get("torch_dtype"))
        if dtype not in (None, "auto"):
            model.to(getattr(torch, dtype) if isinstance(dtype, str) else dtype)
        device = kwargs.get("device_map")
        if isinstance(device, (str, torch.device, int)) and device != "auto":
            model.to(device)
        return model

    def forward(
        self,
        input_features: torch.Tensor | None = None,
        codes: torch.Tensor | None = None,
        bandwidth: float | torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> VocosOutput | tuple[torch.Tensor, torch.Tensor]:
        r"""
        Decode features or codes to audio.

        Args:
            input_features (`torch.FloatTensor` of shape `(batch_size, input_channels, frames)` or `(input_channels, frames)`):
                Log-mel features from [`VocosFeatureExtractor`] (mel variant), or codebook-embedding features
                (EnCodec variant, see [`~VocosModel.codes_to_features`]).
            codes (`torch.LongTensor` of shape `(num_quantizers, batch_size, frames)` or `(num_quantizers, frames)`):
                EnCodec codes (EnCodec variant only). `num_quantizers` must be the number `bandwidth` uses.
            bandwidth (`float`, *optional*):
                Bandwidth in kbps, one of `config.bandwidths`. Required with `codes`, and with `input_features` when
                the model conditions its norms on the bandwidth.
            attention_mask (`torch.Tensor` of shape `(batch_size, frames)`, *optional*):
                1 on valid frames, 0 on right padding. Each item then decodes exactly as it would alone.
            return_dict (`bool`, *optional*):
                Return a [`VocosOutput`] (default) or a tuple `(audio, attention_mask)`.

        Returns:
            [`VocosOutput`] with `audio` `(batch_size, samples)` and its sample-level `attention_mask`.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        features, frame_mask, bandwidth_id = self.prepare_inputs(input_features, codes, bandwidth, attention_mask)
        audio = self._decode_audio(features, frame_mask, bandwidth_id)

        mask = sample_mask(self.config, audio, None if frame_mask is None else frame_mask.sum(dim=(1, 2)))
        if frame_mask is not None:
            audio = audio * mask
        if not return_dict:
            return audio, mask
        return VocosOutput(audio=audio, attention_mask=mask)

    def prepare_inputs(
        self,
        input_features: torch.Tensor | None = None,
        codes: torch.Tensor | None = None,
        bandwidth: float | torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Validate `forward`'s inputs and turn them into what `decode_frames` takes: features (batch, channels,
        frames) in the model's dtype and device, a frame mask (batch, frames, 1) or None, and the bandwidth's norm
        row (or None). Raises `ValueError`/`TypeError` naming the argument for anything malformed."""
        if (input_features is None) == (codes is None):
            raise ValueError(
                "Pass exactly one of `input_features` (features of shape (batch, channels, frames)) and `codes` "
                f"(EnCodec codes of shape (num_quantizers, batch, frames)); got "
                f"{'both' if input_features is not None else 'neither'}."
            )
        if codes is not None:
            features = self.codes_to_features(codes, bandwidth)
        else:
            features = self._check_features(input_features)
        bandwidth_id = self.bandwidth_id(bandwidth)
        frame_mask = self._check_attention_mask(attention_mask, features)
        return features, frame_mask, bandwidth_id

    def decode_frames(
        self,
        features: torch.Tensor,
        frame_mask: torch.Tensor | None = None,
        bandwidth_id: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Backbone and head up to the inverse STFT's overlap-add: features (batch, channels, frames) -> windowed
        time frames (batch, frames, n_fft) in float32, zero on masked frames. `forward` overlap-adds them; the
        streaming decoder does so chunk by chunk."""
        return self.hidden_to_frames(self.backbone(features, frame_mask, bandwidth_id), frame_mask)

    def hidden_to_frames(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The head up to the inverse STFT's overlap-add: the backbone's output (batch, frames, hidden) -> windowed
        time frames (batch, frames, n_fft) in float32, zero on masked frames. Frame-wise: any run of frames gives
        those frames' values."""
        if _tiled_cpu_inference(hidden_states):
            # The projection, the spectrum and the inverse FFT are frame-wise: over tiles of frames their temporaries
            # stay in cache and are reused, instead of six whole-sequence buffers paged in afresh on every call.
            batch_size, num_frames, _ = hidden_states.shape
            frames = hidden_states.new_empty(batch_size, num_frames, self.head.istft.n_fft, dtype=torch.float32)
            make_frames = self._tile_frame_maker(hidden_states)
            for start in range(0, num_frames, _MLP_TILE_FRAMES):
                stop = min(start + _MLP_TILE_FRAMES, num_frames)
                make_frames(start, stop, frames[:, start:stop])
        elif _accelerator_inference(hidden_states) and not self.head.istft.use_dft_matmul:
            # The spectrum made complex in one step: fewer kernels (docs/benchmarks.md, "GPU").
            frames = self.head.istft._inverse_fft(self.head._complex_spectrum(hidden_states))
        else:
            real, imag = self.head.spectrum(hidden_states)
            frames = self.head.istft.frames(real, imag)
        return frames if frame_mask is None else frames * frame_mask

    def _tile_frame_maker(self, hidden_states: torch.Tensor):
        """CPU inference: `make_frames(start, stop, out)` writing the head's windowed frames for hidden states
        [start, stop) (at most one tile) into `out`. The tiles share one complex spectrum buffer and one float32
        workspace, so a tile's temporaries are just the projection's outputs and the inverse FFT's: the megabytes a
        tile would otherwise allocate and free could make glibc hand memory back and page it in again on every tile
        (docs/benchmarks.md, "Page faults")."""
        batch_size, num_frames, _ = hidden_states.shape
        shape = (batch_size, min(num_frames, _MLP_TILE_FRAMES), self.head.istft.n_fft // 2 + 1)
        spectrum = hidden_states.new_empty(shape, dtype=torch.complex64)
        workspace = hidden_states.new_empty(shape, dtype=torch.float32)

        def make_frames(start: int, stop: int, out: torch.Tensor) -> None:
            tile = spectrum[:, : stop - start]
            self.head._spectrum(hidden_states[:, start:stop], out=tile, workspace=workspace[:, : stop - start])
            self.head.istft._frames_of_spectrum(tile, out)

        return make_frames

    def _decode_audio(
        self, features: torch.Tensor, frame_mask: torch.Tensor | None, bandwidth_id: torch.Tensor | None
    ) -> torch.Tensor:
        """features -> float32 audio (batch, samples), zero-padded items' tails not yet zeroed."""
        istft = self.head.istft
        if not _tiled_cpu_inference(features) or istft.n_fft % istft.hop_length:
            return istft.synthesize(self.decode_frames(features, frame_mask, bandwidth_id), frame_mask)
        # CPU inference: the head makes frames a tile at a time and the inverse STFT overlap-adds each tile at once.
        hidden_states = self.backbone(features, frame_mask, bandwidth_id)
        batch_size, num_frames, _ = hidden_states.shape
        return istft.synthesize_tiles(self._tile_frame_maker(hidden_states), batch_size, num_frames, frame_mask)

    def decode_chunked(
        self,
        input_features: torch.Tensor | None = None,
        codes: torch.Tensor | None = None,
        bandwidth: float | torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        chunk_size: int = 512,
        context_frames: int | None = None,
        return_dict: bool | None = None,
    ) -> VocosOutput | tuple[torch.Tensor, torch.Tensor]:
        r"""
        Decode long inputs `chunk_size` frames at a time, with the same output as `forward` (to float32 rounding)
        and working memory that does not grow with the input: the chunks go through [`VocosStreamingDecoder`],
        which runs each backbone stage on a chunk's frames plus the few frames of context that stage reads, and
        overlap-adds across chunk edges exactly. Takes the same inputs as `forward`; in a ragged batch
        (`attention_mask`) the items of each length are decoded together, apart from the others.

        Args:
            chunk_size (`int`, *optional*, defaults to 512):
                Frames decoded per step (any size from 1).
            context_frames (`int`, *optional*):
                The streaming decoder's latency in frames; defaults to, and must be at least,
                `model.backbone.receptive_radius`. It does not change the output.
        """
        from .streaming_vocos import decode_chunked

        return decode_chunked(
            self, input_features, codes, bandwidth, attention_mask, chunk_size, context_frames, return_dict
        )

    def stream(self, chunks, bandwidth: float | torch.Tensor | None = None, context_frames: int | None = None):
        r"""
        A generator that takes input frames as they arrive and yields audio as soon as it is final.

        `chunks` is any iterable of feature chunks `(batch, channels, frames_i)` (or `(channels, frames_i)`), or of
        EnCodec code chunks `(num_quantizers, batch, frames_i)` (integer dtype), of any sizes. Each yielded piece is
        float32 audio `(batch, samples_i)`; their concatenation equals `forward` on the whole input. Audio for a
        frame comes out once `context_frames` more frames have arrived (the backbone's receptive field), the rest
        when `chunks` ends. Chunks may be numpy arrays, and may have 0 frames. Bad arguments (`chunks` not an
        iterable, or a single tensor; `bandwidth`; `context_frames`) raise at the call, a bad chunk when it is
        reached. See [`VocosStreamingDecoder`] to push chunks yourself.
        """
        from .streaming_vocos import stream

        return stream(self, chunks, bandwidth, context_frames)

    def codes_to_features(self, codes: torch.Tensor, bandwidth: float | torch.Tensor) -> torch.Tensor:
        """Embed EnCodec `codes` `(num_quantizers, batch, frames)` (or `(num_quantizers, frames)`) into backbone input
        features `(batch, codebook_dim, frames)`: the sum of each codebook's entry. Validates the codes against
        `bandwidth`."""
        codes = check_codes(self.config, codes, bandwidth)
        return self.codebook_embedding(codes.to(device=self.codebook_embedding.weight.device))

    def bandwidth_id(self, bandwidth: float | torch.Tensor | None) -> torch.Tensor | None:
        """The adaptive-norm row for `bandwidth` (kbps) as an int64 tensor `(1,)`, or None when the norms are not
        bandwidth-conditioned. Raises `ValueError` for a missing or unknown bandwidth. The tensor is on the CPU,
        whatever the model's device: the norms then take their rows as views (no lookup on the device); while
        torch.compile or export traces the model, it is on the model's device, an input of the graph."""
        index = check_bandwidth(self.config, bandwidth)
        if index is None:
            return None
        return torch.tensor([index], device=self.device if _tracing() else "cpu")

    def _check_features(self, input_features) -> torch.Tensor:
        return check_features(self.config, input_features).to(device=self.device, dtype=self.dtype)

    def _check_attention_mask(self, attention_mask, features: torch.Tensor) -> torch.Tensor | None:
        """Validate a right-padding frame mask; returns it as (batch, frames, 1) in the features' dtype."""
        mask = check_attention_mask(attention_mask, features.shape[0], features.shape[-1])
        return None if mask is None else mask[:, :, None].to(device=features.device, dtype=features.dtype)


# Input checks, shared by VocosModel and runtimes without one (the ONNX runner): each raises a ValueError/TypeError
# naming the argument, the value and what was expected.


def check_bandwidth(config: VocosConfig, bandwidth) -> int | None:
    """Validate `bandwidth` (kbps) for a model; returns its adaptive-norm row, or None where the norms are not
    bandwidth-conditioned (then `bandwidth` may be omitted, but must still be one of the model's if given)."""
    if bandwidth is None:
        if config.use_adaptive_norm:
            raise ValueError(
                f"`bandwidth` is required for this model: one of {config.bandwidths} kbps "
                "(it picks the codebook count and the bandwidth-conditioned norms)."
            )
        return None
    index = config.bandwidth_index(_bandwidth_value(bandwidth))
    return index if config.use_adaptive_norm else None


def check_codes(config: VocosConfig, codes, bandwidth) -> torch.Tensor:
    """Validate EnCodec codes for `bandwidth`; returns them as int64 (num_quantizers, batch, frames)."""
    if not config.is_codes_model:
        raise ValueError(
            "`codes` were given, but this is a mel model (config.bandwidths is None): pass `input_features` "
            "(log-mel from VocosFeatureExtractor) instead, or load an EnCodec Vocos checkpoint."
        )
    if bandwidth is None:
        raise ValueError(f"`bandwidth` is required with `codes`: one of {config.bandwidths} kbps.")
    # From here on, the model's own value for it (given within 1e-6).
    bandwidth = config.bandwidths[config.bandwidth_index(_bandwidth_value(bandwidth))]
    if isinstance(codes, np.ndarray):
        codes = torch.from_numpy(codes)
    if not isinstance(codes, torch.Tensor):
        raise TypeError(f"`codes` must be a torch.Tensor or numpy array of integers, got {type(codes).__name__}.")
    if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise TypeError(f"`codes` must have an integer dtype (codebook indices), got {codes.dtype}.")
    if codes.dim() == 2:
        codes = codes[:, None, :]
    if codes.dim() != 3:
        raise ValueError(
            f"`codes` must have shape (num_quantizers, batch, frames) or (num_quantizers, frames), got "
            f"{tuple(codes.shape)}."
        )
    expected = config.num_quantizers_for_bandwidth(bandwidth)
    if codes.shape[0] != expected:
        raise ValueError(
            f"`codes` has {codes.shape[0]} codebooks, but {bandwidth:g} kbps uses {expected}: codes shape must be "
            f"({expected}, batch, frames)."
        )
    if codes.shape[-1] == 0:
        raise ValueError("`codes` has 0 frames; expected at least one frame.")
    if codes.numel() and _value_checks_enabled():
        low, high = torch.stack(torch.aminmax(codes)).tolist()  # one pass, one copy to the host
        if low < 0 or high >= config.codebook_size:
            raise ValueError(f"`codes` values must lie in [0, {config.codebook_size}), got values in [{low}, {high}].")
    return codes.long()


def check_features(config: VocosConfig, input_features) -> torch.Tensor:
    """Validate input features; returns them as a floating-point tensor (batch, input_channels, frames)."""
    if isinstance(input_features, np.ndarray):
        input_features = torch.from_numpy(input_features)
    if not isinstance(input_features, torch.Tensor):
        raise TypeError(f"`input_features` must be a torch.Tensor, got {type(input_features).__name__}.")
    if not input_features.is_floating_point():
        raise TypeError(f"`input_features` must be a floating-point tensor, got dtype {input_features.dtype}.")
    if input_features.dim() == 2:
        input_features = input_features[None]
    channels = config.input_channels
    if input_features.dim() != 3 or input_features.shape[1] != channels:
        raise ValueError(
            f"`input_features` must have shape (batch, {channels}, frames) or ({channels}, frames), got "
            f"{tuple(input_features.shape)}."
        )
    if input_features.shape[-1] == 0:
        raise ValueError("`input_features` has 0 frames; expected at least one frame.")
    if _value_checks_enabled() and not torch.isfinite(input_features).all():
        raise ValueError("`input_features` contains NaN or infinite values; expected finite features.")
    return input_features


def check_attention_mask(attention_mask, batch_size: int, num_frames: int) -> torch.Tensor | None:
    """Validate a right-padding frame mask for (batch_size, num_frames) inputs; returns it as bool (batch, frames)."""
    if attention_mask is None:
        return None
    if isinstance(attention_mask, np.ndarray):
        attention_mask = torch.from_numpy(attention_mask)
    if not isinstance(attention_mask, torch.Tensor):
        raise TypeError(f"`attention_mask` must be a torch.Tensor, got {type(attention_mask).__name__}.")
    if attention_mask.dim() == 1 and batch_size == 1:
        attention_mask = attention_mask[None]
    if tuple(attention_mask.shape) != (batch_size, num_frames):
        raise ValueError(
            f"`attention_mask` must have shape (batch, frames) = ({batch_size}, {num_frames}), got "
            f"{tuple(attention_mask.shape)}."
        )
    lengths = (attention_mask != 0).sum(dim=1)
    prefix = torch.arange(num_frames, device=attention_mask.device)[None, :] < lengths[:, None]
    if not _value_checks_enabled():
        return prefix
    if not torch.equal(prefix, attention_mask != 0):
        raise ValueError(
            "`attention_mask` must mark each item's valid frames as a prefix of ones followed by zeros "
            "(right padding)."
        )
    if int(lengths.min()) == 0:
        raise ValueError("`attention_mask` has an item with no valid frame; every item needs at least one frame.")
    return prefix


def _bandwidth_value(bandwidth) -> float:
    """`bandwidth` as one finite number (whether the model has it is `config.bandwidth_index`'s check)."""
    if isinstance(bandwidth, (torch.Tensor, np.ndarray)):
        if bandwidth.size != 1 if isinstance(bandwidth, np.ndarray) else bandwidth.numel() != 1:
            raise ValueError(f"`bandwidth` must be a single number (kbps), got an array of shape {tuple(bandwidth.shape)}.")
        bandwidth = bandwidth.item()
    # `abs(x) < inf` rather than `math.isfinite`: under `torch.compile(dynamic=True)` a float argument is a symbol,
    # which comparisons take and `math.isfinite` does not.
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, numbers.Real) or not abs(bandwidth) < math.inf:
        raise TypeError(f"`bandwidth` must be a number in kbps (e.g. 6.0), got {bandwidth!r}.")
    return float(bandwidth)
