"""Implementations of Vocos inference, behind one switch (`VocosModel.inference_implementation`).

Every implementation has the same interface and gives the plain model's audio to float32 rounding (the tests check
each against `eager`):

- `eager`: the plain modules of `modeling_vocos.py`, whole sequences. Training, torch.compile and export always run
  it; it is the reference.
- `cpu_tiled`: CPU inference over tiles of frames. Each block's depthwise convolution, norm and MLP run on a tile
  while it is in cache, the MLP on oneDNN's linear with packed weights (GELU fused, layer scale folded, residual in
  the epilogue, packed by the call itself) where the CPU runs that in the dtype used; the head's spectrum and inverse
  FFT, and the overlap-add, run over the same tiles. No whole-sequence temporary is made per block.

Nothing derived from the weights is kept between calls: every implementation reads the model's tensors as they are
at the call (after `load_state_dict`, in-place edits, `to()`, copies, under `torch.inference_mode`), so a fast path
has no state that could disagree with the plain one. Only values derived from the ISTFT window (a few thousand
samples) are kept, checked against the window's contents at each use.
- `accelerator`: eager inference off the CPU: the fewest kernels (a GPU's small calls are bound by kernel launches):
  the adaptive norms take their rows as views picked on the host, the spectrum is made complex in one `torch.polar`,
  the unmasked envelope divides in place.
- `onnx`: the exportable graph: the inverse FFT as a matmul with the inverse DFT basis, the overlap-add as shifted
  additions (no complex numbers, no FFT or col2im operators).

`select_implementation` is the one place that picks: `"auto"` takes `cpu_tiled` on CPUs where it was measured faster
(`capabilities.tiled_cpu_path_preferred`: x86 with AVX-512), `accelerator` on other devices, `eager` otherwise; a
forced implementation that cannot run a call (autograd, tracing, another device type) steps aside to `eager`.

This module knows the model only through its attributes (`embed`, `norm`, `layers`, `final_layer_norm`, `decoder`):
it imports nothing of the model's code, so the model may import it.
"""

from __future__ import annotations

import math
import numbers
import weakref

import torch
from torch import nn

from .capabilities import onednn_packed_linear_available, tiled_cpu_path_preferred

__all__ = [
    "IMPLEMENTATIONS",
    "AcceleratorImplementation",
    "CPUTiledImplementation",
    "EagerImplementation",
    "InferenceImplementation",
    "OnnxImplementation",
    "check_finite_audio",
    "is_tracing",
    "sample_mask",
    "select_implementation",
]

# Window energy below which a sample counts as covered by no frame (it becomes 0 instead of being divided), as in
# `VocosISTFTHead.normalize`.
_ENVELOPE_FLOOR = 1e-11


def is_tracing() -> bool:
    """Whether torch.compile, export or the JIT tracer is tracing the model (rather than running it eagerly)."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def check_finite_audio(audio: torch.Tensor, features: torch.Tensor | None = None) -> None:
    """Never return NaN/Inf audio silently: features far outside what a vocoder is trained on (finite, but e.g.
    -1e30 or near the float32 maximum) overflow inside the backbone."""
    if is_tracing() or bool(torch.isfinite(audio).all()):
        return
    where = "the input features are"
    if features is not None:
        low, high = torch.stack(torch.aminmax(features.float())).tolist()
        where = f"the input features lie in [{low:.3g}, {high:.3g}],"
    raise ValueError(
        f"the decoded audio is not finite: {where} outside what the model "
        "can decode (log-mel features of audio in [-1, 1] lie within about [-20, 10]). Check the features' scale "
        "(natural log of a magnitude mel) and units."
    )


def eager_inference() -> bool:
    """Eager inference: not tracing, no autograd. Only then may results be computed in place or from cached values."""
    return not (is_tracing() or torch.is_grad_enabled())


def sample_mask(config, audio: torch.Tensor, frame_lengths: torch.Tensor | None = None) -> torch.Tensor:
    """The output's sample-level `attention_mask` (int32, `audio`'s shape): 1 on the samples of each item's
    `frame_lengths` valid frames, 0 after. Without lengths (no padding) all ones, as a broadcast view of one element:
    a real tensor would take as much memory as the audio (58 MB for 10 minutes at 24 kHz). Reading it works as usual;
    writing to it needs a `.clone()` first."""
    if frame_lengths is None:
        return torch.ones((), dtype=torch.int32, device=audio.device).expand(audio.shape)
    num_samples = config.num_samples(frame_lengths.to(device=audio.device, dtype=torch.long))
    return (torch.arange(audio.shape[-1], device=audio.device)[None, :] < num_samples[:, None]).int()


class InferenceImplementation:
    """One way to run inference. `decode` is a whole forward; `stage` and `frames` are the pieces the streaming
    decoder runs (a backbone stage on new frames, the head up to the overlap-add)."""

    name = "base"

    def applies(self, tensor: torch.Tensor) -> bool:
        """Whether this implementation can run a call on `tensor` now (device, autograd, tracing)."""
        return True

    def decode(self, model, features, frame_mask, bandwidth_id) -> torch.Tensor:
        """features (batch, channels, frames) -> float32 audio (batch, samples); padded items' tails not zeroed."""
        raise NotImplementedError

    def stage(self, model, index, hidden_states, bandwidth_id, own_input: bool = False) -> torch.Tensor:
        """Backbone stage `index` on time-major frames; `own_input` lets it write over `hidden_states`."""
        return model.stage(index, hidden_states, bandwidth_id)

    def frames(self, model, hidden_states) -> torch.Tensor:
        """The head up to the overlap-add: (batch, frames, hidden) -> windowed time frames (batch, frames, n_fft)."""
        return model.decoder.frames(hidden_states)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class EagerImplementation(InferenceImplementation):
    """The plain modules (`VocosModel.decode_eager`)."""

    name = "eager"

    def decode(self, model, features, frame_mask, bandwidth_id):
        return model.decode_eager(features, frame_mask, bandwidth_id)


def _norm_rows(norm: nn.Module, bandwidth_id: torch.Tensor | None):
    """`norm` as a function of rows (…, hidden): a layer norm with its weight and bias. An adaptive norm's rows for
    the bandwidth are picked on the host, as views of its tables: no lookup kernels, and the same layer norm."""
    if norm.weight.dim() == 2:  # adaptive: (bandwidths, hidden)
        index = int(bandwidth_id)  # (a CPU tensor: `VocosModel.bandwidth_id` makes it there, so no device sync)
        weight, bias, shape = norm.weight[index], norm.bias[index], (norm.hidden_size,)
    else:
        weight, bias, shape = norm.weight, norm.bias, norm.normalized_shape
    eps = norm.eps

    def apply(rows: torch.Tensor) -> torch.Tensor:
        return nn.functional.layer_norm(rows, shape, weight=weight, bias=bias, eps=eps)

    return apply


def _conv_time_major(hidden_states: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """As `modeling_vocos.conv_time_major`: a "same" Conv1d on (batch, frames, channels), run channels-last."""
    image = hidden_states.transpose(1, 2).unsqueeze(2)
    output = nn.functional.conv2d(
        image, conv.weight.unsqueeze(2), conv.bias, padding=(0, conv.padding[0]), groups=conv.groups
    )
    return output.squeeze(2).transpose(1, 2)


class _WindowDerived:
    """Values derived from an ISTFT head's window (its few thousand samples) and made again when the window's
    contents, dtype or device change: each use compares the window with the copy it was made from (exact, and
    microseconds for a window). Held here, off the module, keyed weakly: copies, pickles and state dicts never see
    it, and threads at worst make a value twice. Weights are never cached across calls (`CPUTiledImplementation`)."""

    def __init__(self, make):
        self._make = make
        self._entries: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __call__(self, head, device: torch.device):
        if is_tracing():  # a graph computes it from the window itself
            return self._make(head, device)
        window = head.window
        entry = self._entries.get(head)
        if entry is not None:
            source, made_on, value = entry
            if made_on == device and source.dtype == window.dtype and source.device == window.device:
                if source.shape == window.shape and torch.equal(source, window):
                    return value
        with torch.inference_mode(False), torch.no_grad():
            value = self._make(head, device)
            source = window.detach().clone()
        if not window.is_meta:
            self._entries[head] = (source, device, value)
        return value


# ---------------------------------------------------------------------------------------------------------------------
# shared by the tiled CPU and the accelerator paths: dividing an unmasked overlap-add by its periodic envelope


def _periodic_envelope(head, num_frames: int) -> bool:
    """Whether an unmasked envelope of `num_frames` frames is periodic between its first and last `carry` blocks of
    `hop_length` samples (`carry = n_fft // hop_length - 1`, the frames' overlap)."""
    return head.n_fft % head.hop_length == 0 and num_frames >= 2 * (head.n_fft // head.hop_length - 1)


def _edge_envelope_parts(head, device: torch.device) -> list:
    """The envelope divisors of `_divide_unmasked_`: the first `carry` blocks, any middle block, the last `carry`
    blocks of a 2 * carry-frame envelope (1 where no frame covers a sample), each with the mask of samples to zero
    (None where the trim removes every such sample anyway)."""
    carry = head.n_fft // head.hop_length - 1
    short = head.window_envelope(None, 2 * carry).to(device).view(-1, head.hop_length)
    # Samples no frame covers but that the trim removes anyway (the edges' first and last) need no zeroing.
    trimmed = torch.zeros(short.shape, dtype=torch.bool, device=short.device)
    trimmed.view(-1)[: head.trim] = True
    trimmed.view(-1)[trimmed.numel() - head.trim :] = True
    parts = []
    for rows, cut in zip(
        (short[:carry], short[carry], short[2 * carry :]),  # first blocks, any middle one, last
        (trimmed[:carry], torch.zeros_like(trimmed[carry]), trimmed[2 * carry :]),
    ):
        covered = rows > _ENVELOPE_FLOOR
        parts.append((torch.where(covered, rows, 1.0), None if bool((covered | cut).all()) else ~covered))
    return parts


edge_envelope_parts = _WindowDerived(_edge_envelope_parts)


def _divide_unmasked_(head, blocks: torch.Tensor, num_frames: int, parts: list | None = None) -> None:
    """Divide the overlap-added audio of `num_frames` unmasked frames, as hop-sized blocks (batch, num_frames + carry,
    hop_length), by the window envelope, in place: its first and last `carry` blocks are those of a 2 * carry-frame
    envelope, every block between is its middle block (`edge_envelope_parts`, made once per window and device;
    callers on a GPU pass them, fetched before the call's first kernel, so the window's check waits for nothing)."""
    carry = head.n_fft // head.hop_length - 1
    parts = edge_envelope_parts(head, blocks.device) if parts is None else parts
    for part, (divisor, uncovered) in zip(
        (blocks[:, :carry], blocks[:, carry:num_frames], blocks[:, num_frames:]), parts
    ):
        part.div_(divisor)
        if uncovered is not None:
            part.masked_fill_(uncovered, 0.0)


def _divide_(audio: torch.Tensor, envelope: torch.Tensor) -> None:
    """`VocosISTFTHead.normalize` in place."""
    covered = envelope > _ENVELOPE_FLOOR
    audio.div_(torch.where(covered, envelope, 1.0))
    if not covered.all():
        audio.masked_fill_(~covered, 0.0)


# ---------------------------------------------------------------------------------------------------------------------
# tiled CPU inference


class CPUTiledImplementation(InferenceImplementation):
    """CPU inference over tiles of `tile_frames` frames (default 1024: the (tile, intermediate_size) activation stays
    in cache; measured 14% faster per block than whole sequences on 60 s, and no whole-sequence temporary is paged
    in per block). Products on oneDNN-packed weights where `capabilities.onednn_packed_linear_available` says the CPU
    runs them in the weights' dtype, and no CPU autocast region is active (the packed products would bypass it); the
    plain products otherwise.

    The packed weights are made by each call that uses them and dropped when it returns: nothing derived from the
    weights outlives a call, so the output follows every change to the model (`load_state_dict`, in-place edits such
    as an optimizer's step, `to()`, copies, inference tensors) with nothing to invalidate, threads share nothing, and
    no second copy of the weights is held between calls. Packing the release mel model's weights takes about as long
    as a 1 s forward (15-60 ms in float32 on a 2-core AVX2 x86), and paid for itself from about one tile of rows, so
    a call packs only when it has at least `pack_min_rows` rows (batch x frames, default 1024: 11 s of audio at
    93.75 frames/s) to multiply; shorter calls take the plain products (docs/benchmarks.md, "Packed weights")."""

    name = "cpu_tiled"

    def __init__(self, tile_frames: int = 1024, pack_min_rows: int = 1024):
        for name, value, least in (("tile_frames", tile_frames, 1), ("pack_min_rows", pack_min_rows, 0)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
                kind = "a positive integer" if least else "an integer >= 0"
                raise ValueError(f"`{name}` must be {kind}, got {value!r}.")
        self.tile_frames = int(tile_frames)
        self.pack_min_rows = int(pack_min_rows)

    def __repr__(self) -> str:
        return f"CPUTiledImplementation(tile_frames={self.tile_frames}, pack_min_rows={self.pack_min_rows})"

    def applies(self, tensor: torch.Tensor) -> bool:
        return eager_inference() and tensor.device.type == "cpu"

    def packs(self, weight: torch.Tensor, rows: int) -> bool:
        """Whether a call with `rows` rows (batch x frames) multiplies by packed copies of `weight`."""
        return (
            rows >= self.pack_min_rows
            and not torch.is_autocast_enabled("cpu")
            and onednn_packed_linear_available(weight.dtype)
        )

    # ---- the whole forward ----

    def decode(self, model, features, frame_mask, bandwidth_id):
        head = model.decoder
        hidden_states = features.transpose(1, 2)
        for index in range(model.num_stages):
            # Past the first stage the input is a tensor made here, which may be overwritten.
            hidden_states = self._stage(model, index, hidden_states, bandwidth_id, frame_mask, own_input=index > 0)
        batch_size, num_frames, _ = hidden_states.shape
        make_frames = self._frame_maker(head, hidden_states)
        if head.n_fft % head.hop_length:
            frames = hidden_states.new_empty(batch_size, num_frames, head.n_fft, dtype=torch.float32)
            for start in range(0, num_frames, self.tile_frames):
                stop = min(start + self.tile_frames, num_frames)
                make_frames(start, stop, frames[:, start:stop])
            return head.synthesize(frames if frame_mask is None else frames * frame_mask, frame_mask)
        return self.synthesize_tiles(head, make_frames, batch_size, num_frames, frame_mask)

    def stage(self, model, index, hidden_states, bandwidth_id, own_input: bool = False):
        return self._stage(model, index, hidden_states, bandwidth_id, None, own_input)

    def frames(self, model, hidden_states):
        batch_size, num_frames, _ = hidden_states.shape
        frames = hidden_states.new_empty(batch_size, num_frames, model.decoder.n_fft, dtype=torch.float32)
        make_frames = self._frame_maker(model.decoder, hidden_states)
        for start in range(0, num_frames, self.tile_frames):
            stop = min(start + self.tile_frames, num_frames)
            make_frames(start, stop, frames[:, start:stop])
        return frames

    def _stage(self, model, index, hidden_states, bandwidth_id, frame_mask, own_input):
        if index == 0:
            if frame_mask is not None:
                hidden_states = hidden_states * frame_mask
            convolved = _conv_time_major(hidden_states.contiguous(), model.embed)
            # (the convolution's output is a fresh tensor: its norm goes in place)
            return self._norm_in_place(_norm_rows(model.norm, bandwidth_id), convolved)
        if index <= len(model.layers):
            return self.block(model.layers[index - 1], hidden_states, bandwidth_id, frame_mask, own_input)
        norm = _norm_rows(model.final_layer_norm, None)
        return self._norm_in_place(norm, hidden_states) if own_input else norm(hidden_states)

    def _norm_in_place(self, norm, hidden_states: torch.Tensor) -> torch.Tensor:
        """A row-wise norm written over its input a tile at a time: no whole-sequence output is allocated (which glibc
        may page in anew on every call)."""
        rows = hidden_states.view(-1, hidden_states.shape[-1])
        for start in range(0, rows.shape[0], self.tile_frames):
            tile = rows[start : start + self.tile_frames]
            tile.copy_(norm(tile))
        return hidden_states

    def block(self, block, hidden_states, bandwidth_id=None, frame_mask=None, reuse_input: bool = False):
        """A ConvNeXt block over tiles of frames. Each tile's depthwise convolution reads its frames plus
        `kernel_size // 2` on each side (zeros only at the sequence's own edges, so its values are the whole
        sequence's); the norm, the MLP, the layer scale and the residual then run on that tile while it is in cache.
        With `reuse_input` the output goes over `hidden_states`: a tile's result is held back until the next tile's
        convolution has read the input frames it overlaps, and written after."""
        if frame_mask is not None:
            # Zero the padded frames so the convolution sees what a lone item sees: zeros past its end.
            hidden_states = hidden_states * frame_mask
            reuse_input = True  # the product is this block's own
        batch_size, num_frames, hidden_size = hidden_states.shape
        radius = block.dwconv.padding[0]
        output = hidden_states if reuse_input else torch.empty_like(hidden_states)
        tile_frames = max(self.tile_frames, radius)  # a held-back tile must not reach past the next one's left edge
        tile_mlp = self._tile_mlp(block, bandwidth_id, packed=self.packs(block.pwconv1.weight, batch_size * num_frames))
        held = None
        for start in range(0, num_frames, tile_frames):
            stop = min(start + tile_frames, num_frames)
            low, high = max(start - radius, 0), min(stop + radius, num_frames)
            convolved = _conv_time_major(hidden_states[:, low:high], block.dwconv)[:, start - low : stop - low]
            if held is not None:
                output[:, held[0] : held[1]] = held[2]
            residual = hidden_states[:, start:stop].reshape(-1, hidden_size)
            product = tile_mlp(convolved.reshape(-1, hidden_size), residual)
            held = (start, stop, product.view(batch_size, stop - start, hidden_size))
        if held is not None:
            output[:, held[0] : held[1]] = held[2]
        return output

    def _tile_mlp(self, block, bandwidth_id, packed: bool):
        """`(convolved, residual) -> residual + layer scale x MLP(norm(convolved))` for one tile's rows (frames,
        hidden), a fresh result; with `packed`, on weights packed now for this call's tiles (the GELU fused into the
        first product for exact GELU, the layer scale folded into the second, whose epilogue adds the residual)."""
        norm = _norm_rows(block.norm, bandwidth_id)
        if not packed:
            return lambda convolved, residual: torch.addcmul(
                residual, block.layer_scale_parameter, block.pwconv2(block.act_fn(block.pwconv1(norm(convolved))))
            )
        first, second, second_bias = self._pack_mlp(block)
        fused_gelu = isinstance(block.act_fn, nn.GELU) or type(block.act_fn).__name__ == "GELUActivation"
        fused_gelu = fused_gelu and getattr(block.act_fn, "approximate", "none") == "none"

        def packed(convolved: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
            rows = norm(convolved)
            if fused_gelu:
                inner = torch.ops.mkldnn._linear_pointwise(rows, first, block.pwconv1.bias, "gelu", [], "none")
            else:
                inner = block.act_fn(
                    torch.ops.mkldnn._linear_pointwise(rows, first, block.pwconv1.bias, "none", [], "")
                )
            return torch.ops.mkldnn._linear_pointwise.binary(inner, residual, second, second_bias, "add")

        return packed

    def _pack_mlp(self, block):
        """(first weight, second weight x layer scale, second bias x layer scale), packed for oneDNN, for this call."""
        # Folded in float32 and rounded once: gamma * (W x + b) = (gamma W) x + gamma b.
        dtype, gamma = block.pwconv2.weight.dtype, block.layer_scale_parameter.detach().float()
        second = (block.pwconv2.weight.detach().float() * gamma[:, None]).to(dtype)
        return (
            torch.ops.mkldnn._reorder_linear_weight(block.pwconv1.weight.detach(), self.tile_frames),
            torch.ops.mkldnn._reorder_linear_weight(second, self.tile_frames),
            (block.pwconv2.bias.detach().float() * gamma).to(dtype),
        )

    def _pack_head(self, head):
        """The head projection's log-magnitude and phase halves of the weight, each packed for oneDNN, for this call."""
        weight, bins = head.out.weight.detach(), head.out.out_features // 2
        return tuple(
            torch.ops.mkldnn._reorder_linear_weight(half.contiguous(), self.tile_frames)
            for half in (weight[:bins], weight[bins:])
        )

    # ---- the head, a tile at a time ----

    def _frame_maker(self, head, hidden_states):
        """`make_frames(start, stop, out)` writing the head's windowed frames for hidden states [start, stop) (at most
        one tile) into `out`. The tiles share one complex spectrum buffer and one float32 workspace, so a tile's
        temporaries are just the projection's outputs and the inverse FFT's."""
        batch_size, num_frames, _ = hidden_states.shape
        shape = (batch_size, min(num_frames, self.tile_frames), head.n_fft // 2 + 1)
        spectrum = hidden_states.new_empty(shape, dtype=torch.complex64)
        workspace = hidden_states.new_empty(shape, dtype=torch.float32)
        window = head.fft_window()
        bins = head.out.out_features // 2
        weight, bias = head.out.weight, head.out.bias
        packed = self._pack_head(head) if self.packs(weight, batch_size * num_frames) else None

        def make_frames(start: int, stop: int, out: torch.Tensor) -> None:
            rows = hidden_states[:, start:stop]
            if packed is not None:
                halves = [
                    torch.ops.mkldnn._linear_pointwise(rows, half, part, "none", [], "")
                    for half, part in zip(packed, (bias[:bins], bias[bins:]))
                ]
            else:  # two products on row slices of the weight: each half comes out contiguous
                halves = [
                    nn.functional.linear(rows, weight[:bins], bias[:bins]),
                    nn.functional.linear(rows, weight[bins:], bias[bins:]),
                ]
            log_magnitude, phase = (half.float() for half in halves)
            magnitude = log_magnitude.exp_().clamp_(max=head.max_magnitude)
            tile = spectrum[:, : stop - start]
            # The products made contiguous and then interleaved into the buffer by one pass: writing them straight
            # into its strided real and imaginary halves took about 0.3 ms more per 1024-frame tile.
            real = torch.cos(phase, out=workspace[:, : stop - start]).mul_(magnitude)
            torch.complex(real, phase.sin_().mul_(magnitude), out=tile)
            # (Not irfft's own `out=`: it transforms into a temporary and copies that over, one more pass than the
            # window's product writing into `out`.)
            torch.mul(torch.fft.irfft(tile, n=head.n_fft, dim=-1), window, out=out)

        return make_frames

    def synthesize_tiles(self, head, make_frames, batch_size: int, num_frames: int, frame_mask=None) -> torch.Tensor:
        """`head.synthesize` for frames made a tile at a time (`make_frames(start, stop, out)`): each tile is
        overlap-added while it is in cache, from one tile-sized buffer; every sample sums its frames in the same order
        as the shifted additions of the whole-sequence overlap-add, and is divided by the same envelope. Needs a hop
        that divides n_fft."""
        tile_frames = self.tile_frames
        device = head.out.weight.device
        hop, pieces = head.hop_length, head.n_fft // head.hop_length
        carry = pieces - 1
        # Rows [0, carry) hold the previous tile's last frames (zeros before the first), then the tile's own frames.
        buffer = torch.zeros(batch_size, carry + max(min(tile_frames, num_frames), carry), head.n_fft, device=device)
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
            # Block b sums piece r of frame b - r over r = 0 .. pieces - 1, in that order.
            target = blocks[:, start:stop]
            torch.add(tile[..., :hop], buffer[:, carry - 1 : carry - 1 + count, hop : 2 * hop], out=target)
            for r in range(2, pieces):
                target.add_(buffer[:, carry - r : carry - r + count, r * hop : (r + 1) * hop])
            buffer[:, :carry] = buffer[:, count : count + carry].clone()
            start = stop
        audio = blocks.view(batch_size, -1)
        if frame_mask is None and _periodic_envelope(head, num_frames):
            _divide_unmasked_(head, blocks, num_frames)
        else:
            _divide_(audio, head.window_envelope(frame_mask, num_frames))
        audio = audio[:, head.trim : audio.shape[-1] - head.trim]
        return audio if audio.is_contiguous() else audio.contiguous()


# ---------------------------------------------------------------------------------------------------------------------
# accelerators


class AcceleratorImplementation(InferenceImplementation):
    """Eager inference with the fewest kernels, for devices whose small calls are bound by kernel launches (GPUs):
    the adaptive norms' rows picked on the host as views (no lookups), the spectrum made complex in one product and
    `torch.polar` (five kernels instead of nine), the unmasked envelope divided in place (a few kernels instead of
    some twenty to build and apply a whole-length one). Also runs on a CPU (the tests do), slower there."""

    name = "accelerator"

    def applies(self, tensor: torch.Tensor) -> bool:
        return eager_inference()

    def decode(self, model, features, frame_mask, bandwidth_id):
        head = model.decoder
        unmasked = frame_mask is None and _periodic_envelope(head, features.shape[-1])
        # (fetched before the first kernel: checking the window reads it on the host, which then waits for nothing)
        parts = edge_envelope_parts(head, features.device) if unmasked else None
        hidden_states = features.transpose(1, 2)
        for index in range(model.num_stages):
            hidden_states = self.stage(model, index, hidden_states, bandwidth_id, frame_mask=frame_mask)
        frames = self.frames(model, hidden_states)
        if not unmasked:
            return head.synthesize(frames if frame_mask is None else frames * frame_mask, frame_mask)
        audio = head.overlap_add(frames)
        _divide_unmasked_(head, audio.view(audio.shape[0], -1, head.hop_length), frames.shape[1], parts)
        return audio[:, head.trim : audio.shape[-1] - head.trim].contiguous()

    def stage(self, model, index, hidden_states, bandwidth_id, own_input: bool = False, frame_mask=None):
        if index == 0:
            if frame_mask is not None:
                hidden_states = hidden_states * frame_mask
            return _norm_rows(model.norm, bandwidth_id)(_conv_time_major(hidden_states, model.embed))
        if index <= len(model.layers):
            block = model.layers[index - 1]
            if frame_mask is not None:
                hidden_states = hidden_states * frame_mask
            convolved = _norm_rows(block.norm, bandwidth_id)(_conv_time_major(hidden_states, block.dwconv))
            product = block.pwconv2(block.act_fn(block.pwconv1(convolved)))
            return torch.addcmul(hidden_states, block.layer_scale_parameter, product)
        return model.final_layer_norm(hidden_states)

    def frames(self, model, hidden_states):
        head = model.decoder
        log_magnitude, phase = head.out(hidden_states).float().chunk(2, dim=-1)
        spectrum = torch.polar(log_magnitude.exp_().clamp_(max=head.max_magnitude), phase)
        return torch.fft.irfft(spectrum, n=head.n_fft, dim=-1).mul_(head.fft_window())


# ---------------------------------------------------------------------------------------------------------------------
# ONNX export


class OnnxImplementation(InferenceImplementation):
    """The graph ONNX export traces (`hf_vocos.onnx_export`): `torch.istft` and complex tensors do not export
    (gemelo-ai/vocos#38), so the inverse FFT is a matmul with the inverse DFT basis (window folded in) and the
    overlap-add and its envelope are shifted additions (a fold when the hop does not divide n_fft)."""

    name = "onnx"

    def decode(self, model, features, frame_mask, bandwidth_id):
        frames = self.frames(model, model.backbone(features, frame_mask, bandwidth_id))
        if frame_mask is not None:
            frames = frames * frame_mask
        head = model.decoder
        audio = self.overlap_add(head, frames)
        envelope = self.window_envelope(head, frame_mask, frames.shape[1])
        end = audio.shape[-1] - head.trim
        return head.normalize(audio[:, head.trim : end], envelope[:, head.trim : end])

    def frames(self, model, hidden_states):
        head = model.decoder
        real, imag = head.spectrum(hidden_states)
        return torch.cat([real, imag], dim=-1) @ self.inverse_dft_basis(head).to(real.device)

    @staticmethod
    def inverse_dft_basis(head) -> torch.Tensor:
        """(2 * (n_fft // 2 + 1), n_fft) matrix B with `cat([real, imag], -1) @ B` = `irfft(real + i imag) * window`,
        made once per window (its contents) and device."""
        return _inverse_dft_bases(head, head.window.device)

    @staticmethod
    def _shifted_sum(head, pieces_of) -> torch.Tensor:
        pieces = head.n_fft // head.hop_length
        total = None
        for r in range(pieces):
            shifted = nn.functional.pad(pieces_of(r), (0, 0, r, pieces - 1 - r))
            total = shifted if total is None else total + shifted
        return total

    def overlap_add(self, head, frames: torch.Tensor) -> torch.Tensor:
        if head.n_fft % head.hop_length:
            return head.overlap_add(frames)
        # Frame f's r-th hop-sized piece lands on output block f + r: shifted additions of (batch, frames, hop).
        batch_size, num_frames, _ = frames.shape
        split = frames.reshape(batch_size, num_frames, head.n_fft // head.hop_length, head.hop_length)
        return self._shifted_sum(head, lambda r: split[:, :, r]).reshape(batch_size, -1)

    def window_envelope(self, head, frame_mask, num_frames: int) -> torch.Tensor:
        if head.n_fft % head.hop_length:
            return head.window_envelope(frame_mask, num_frames)
        square = head.fft_window().square()
        presence = frame_mask if frame_mask is not None else square.new_ones(1, num_frames, 1)
        split = square.view(head.n_fft // head.hop_length, head.hop_length)
        return self._shifted_sum(head, lambda r: presence * split[r]).reshape(presence.shape[0], -1)


def _inverse_dft_basis(head, device: torch.device) -> torch.Tensor:
    bins = head.n_fft // 2 + 1
    frequency = torch.arange(bins, dtype=torch.float64)[:, None]
    time = torch.arange(head.n_fft, dtype=torch.float64)[None, :]
    angle = 2 * math.pi * frequency * time / head.n_fft
    # A one-sided spectrum counts every bin twice but DC and (for even n_fft) Nyquist.
    weight = torch.full((bins, 1), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    if head.n_fft % 2 == 0:
        weight[-1] = 1.0
    window = head.fft_window().to(torch.float64).cpu()
    basis = torch.cat([weight * torch.cos(angle), -weight * torch.sin(angle)]) / head.n_fft * window
    return basis.to(dtype=torch.float32, device=device)


_inverse_dft_bases = _WindowDerived(_inverse_dft_basis)


IMPLEMENTATIONS: dict[str, InferenceImplementation] = {
    implementation.name: implementation
    for implementation in (
        EagerImplementation(),
        CPUTiledImplementation(),
        AcceleratorImplementation(),
        OnnxImplementation(),
    )
}


def automatic_choice(tensor: torch.Tensor) -> str:
    """What `"auto"` picks for a call on `tensor`: eager while tracing or with autograd, `cpu_tiled` on CPUs where
    it was measured faster, `accelerator` on other devices, eager on the remaining CPUs."""
    if not eager_inference():
        return "eager"
    if tensor.device.type == "cpu":
        return "cpu_tiled" if tiled_cpu_path_preferred() else "eager"
    return "accelerator"


def select_implementation(model, tensor: torch.Tensor) -> InferenceImplementation:
    """The one place that picks the implementation for a call of `model` on `tensor`."""
    chosen = model.inference_implementation
    if isinstance(chosen, InferenceImplementation):
        implementation = chosen
    else:
        implementation = IMPLEMENTATIONS[automatic_choice(tensor) if chosen == "auto" else chosen]
    return implementation if implementation.applies(tensor) else IMPLEMENTATIONS["eager"]
