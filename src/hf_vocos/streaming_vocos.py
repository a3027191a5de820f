"""Streaming and chunked decoding for `VocosModel`: long or live inputs with bounded memory, same audio as `forward`.

Why it is exact. Only the convolutions mix frames: the backbone is a chain of stages (`VocosModel.stage_radii`: the
input convolution, the blocks, the final norm), each of which reads `kernel_size // 2` frames on each side of a frame.
So each stage can turn its input frames into output frames as soon as it holds that many frames past them, and a
frame's hidden state is final once `model.receptive_radius` later frames have arrived (27 for the released models).
The decoder keeps, per stage, only the few input frames the next output frames still read, and runs each stage on its
new frames (plus that context): each frame goes through the backbone once, whatever the chunk size. At the true start
and end the stages see the zero padding of a full decode. The inverse STFT is an overlap-add: a sample is final once
every frame overlapping it has been added, so each step emits the samples before its last frame's start and carries
the rest (`n_fft - hop_length` samples of signal and window energy) into the next step.

The stages and the head run through the model's inference implementation (`VocosModel.inference_implementation`), as
`forward` does. This module knows the model only through its methods: it imports nothing of the model's code.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from .inference_vocos import check_finite_audio, sample_mask, select_implementation

__all__ = ["VocosStreamingDecoder", "decode_chunked", "stream"]


class VocosStreamingDecoder:
    r"""
    Decodes input frames that arrive in pieces: `push` each piece, get back the audio that is final so far; `flush`
    at the end for the rest. The concatenated audio equals [`VocosModel`]'s `forward` on the whole input (to
    float32 rounding). Each frame goes through the network once: a push costs what its own frames cost, plus a few
    frames of context per stage.

    Args:
        model ([`VocosModel`]): the vocoder (in eval mode).
        bandwidth (`float`, *optional*): kbps, for EnCodec models (as in `forward`).
        context_frames (`int`, *optional*): the latency in frames: audio for a frame comes out once this many later
            frames have been pushed. Defaults to, and must be at least, `model.receptive_radius` (the
            frames that still change a frame's output); more only delays the audio.

    The batch dimension is fixed by the first push (all items advance together; decode ragged batches with
    `VocosModel.decode_chunked`, which runs one stream per distinct length).
    """

    def __init__(self, model, bandwidth: float | torch.Tensor | None = None, context_frames: int | None = None):
        if not (isinstance(model, torch.nn.Module) and hasattr(model, "receptive_radius")):
            raise TypeError(
                f"`model` must be a VocosModel (e.g. VocosModel.from_pretrained(...)), got {type(model).__name__}."
            )
        radius = model.receptive_radius
        if context_frames is None:
            context_frames = radius
        if isinstance(context_frames, bool) or not isinstance(context_frames, numbers.Integral):
            raise TypeError(f"`context_frames` must be an integer, got {context_frames!r}.")
        if context_frames < radius:
            raise ValueError(
                f"`context_frames`={context_frames} is too small: the backbone's receptive field reaches {radius} "
                "frames "
                f"on each side, so a frame's audio is final only after at least {radius} frames of context."
            )
        self.model = model
        self.context_frames = int(context_frames)
        self.bandwidth = bandwidth
        head = model.decoder
        self._hop = head.hop_length
        self._trim = head.trim
        self._carried = head.n_fft - head.hop_length
        self._radii = model.stage_radii
        # Validates `bandwidth` against the model before any frame arrives.
        self._bandwidth_id = model.bandwidth_id(bandwidth)
        self.reset()

    def reset(self) -> None:
        """Forget all input and start a new stream."""
        stages = len(self._radii)
        self._batch_size = None
        self._inputs = [None] * stages  # per stage: input frames (batch, frames, channels) still to be read
        self._done = [0] * stages  # per stage: frames it has output
        self._hidden = None  # (batch, frames, hidden) final hidden states not yet through the head
        self._received = 0  # frames pushed so far
        self._decoded = 0  # frames whose windowed time frames have been overlap-added
        self._signal = None  # (batch, n_fft - hop) overlap-added signal not final yet
        self._energy = None  # (1, n_fft - hop) the window energy under it
        self._finished = False

    @property
    def latency_frames(self) -> int:
        """Frames that must follow a frame before its audio is emitted."""
        return self.context_frames

    def push(self, chunk: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Add input frames: features `(batch, channels, frames)` / `(channels, frames)`, or integer EnCodec codes
        `(num_quantizers, batch, frames)` / `(num_quantizers, frames)`, as a tensor or numpy array. Returns the float32
        audio `(batch, samples)` that became final (possibly 0 samples). A chunk of 0 frames is allowed and adds
        nothing."""
        if self._finished:
            raise RuntimeError("This stream was flushed; call reset() to start a new one.")
        if isinstance(chunk, np.ndarray):
            chunk = torch.from_numpy(chunk)
        if not isinstance(chunk, torch.Tensor):
            raise TypeError(
                f"`chunk` must be a torch.Tensor or numpy array of features or codes, got {type(chunk).__name__}."
            )
        is_codes = not (chunk.is_floating_point() or chunk.is_complex())
        # A chunk of 0 frames (a producer's step may yield none) adds nothing, but its shape and dtype are checked as
        # any chunk's: on one frame of zeros in its place.
        empty = chunk.dim() > 0 and chunk.shape[-1] == 0
        checked = chunk.new_zeros(*chunk.shape[:-1], 1) if empty else chunk
        try:
            features, _, _ = self.model.prepare_inputs(
                input_features=None if is_codes else checked,
                codes=checked if is_codes else None,
                bandwidth=self.bandwidth,
            )
        except (TypeError, ValueError) as error:  # the model's message names `input_features`/`codes`: say which push
            kind = "codes" if is_codes else "features"
            where = f"{kind} of shape {tuple(chunk.shape)}, pushed after {self._received} frames"
            hint = ""
            if not is_codes and self.model.config.is_codes_model:
                hint = (
                    f" (a {chunk.dtype} chunk is read as codebook-embedding features; push EnCodec codes as an "
                    "integer tensor (num_quantizers, batch, frames))"
                )
            raise type(error)(f"`chunk` ({where}): {error}{hint}") from None
        self._check_batch_size(features.shape[0])
        if empty:
            return torch.zeros(self._batch_size, 0, device=self.model.device)
        self._received += features.shape[-1]
        self._run_stages(features.transpose(1, 2), final=False)
        audio = self._advance(self._received - self.context_frames, final=False)
        check_finite_audio(audio, features)
        return audio

    def _check_batch_size(self, batch_size: int) -> None:
        if self._batch_size is None:
            self._batch_size = batch_size
        elif batch_size != self._batch_size:
            raise ValueError(f"`chunk` has batch size {batch_size}, but this stream started with {self._batch_size}.")

    def flush(self) -> torch.Tensor:
        """End the stream: decode the remaining frames and return the rest of the audio."""
        if self._finished:
            raise RuntimeError("This stream was already flushed; call reset() to start a new one.")
        self._finished = True
        if self._received == 0:
            return torch.zeros(self._batch_size or 0, 0, device=self.model.device)
        self._run_stages(None, final=True)
        audio = self._advance(self._received, final=True)
        check_finite_audio(audio)
        return audio

    @torch.no_grad()
    def _run_stages(self, new: torch.Tensor | None, final: bool) -> None:
        """Feed new input frames (batch, frames, channels) through the backbone's stages, each computing the frames
        whose context it now holds (all of them when `final`: the sequence's end pads with zeros)."""
        for index, radius in enumerate(self._radii):
            kept, done = self._inputs[index], self._done[index]
            if new is None:
                inputs = kept
            else:
                inputs = new if kept is None else torch.cat([kept, new], dim=1)
            if inputs is None:
                return
            # The kept frames start `radius` before the first frame this stage has still to output (or at the
            # sequence's start): exactly the left context that frame reads.
            start = max(done - radius, 0)
            available = start + inputs.shape[1]
            end = available if final else available - radius
            new = None
            if end > done:
                # (not written over: the frames kept below for the next push are this stage's input)
                implementation = select_implementation(self.model, inputs)
                new = implementation.stage(self.model, index, inputs, self._bandwidth_id)[:, done - start : end - start]
                self._done[index] = done = end
            # A copy of the few frames kept, not a view: a view would keep this push's whole input tensor alive
            # until the next push (with the release mel model and 256-frame pushes, ~9 MB more peak memory).
            self._inputs[index] = inputs[:, max(done - radius, 0) - start :].clone()
            if new is None and not final:
                return
        if new is not None:
            self._hidden = new if self._hidden is None else torch.cat([self._hidden, new], dim=1)

    @torch.no_grad()
    def _advance(self, end: int, final: bool) -> torch.Tensor:
        start = self._decoded
        batch_size = self._batch_size
        head = self.model.decoder
        if end > start:
            hidden_states = self._hidden[:, : end - start]
            frames = select_implementation(self.model, hidden_states).frames(self.model, hidden_states)
            self._hidden = self._hidden[:, end - start :].clone()
            signal = head.overlap_add(frames)
            energy = head.window_envelope(None, frames.shape[1])
            if self._signal is not None:
                signal[:, : self._carried] += self._signal
                energy[:, : self._carried] += self._energy
        elif final and self._signal is not None:
            signal, energy = self._signal, self._energy
        else:
            return torch.zeros(batch_size, 0, device=self.model.device)

        # Samples before the start of frame `end` have all their frames; at the end of the stream, all have.
        ready = signal.shape[-1] if final else (end - start) * self._hop
        first = start * self._hop  # position of signal[:, 0] in the untrimmed overlap-added stream
        self._signal, self._energy = signal[:, ready:], energy[:, ready:]
        self._decoded = max(end, start)

        low = max(first, self._trim)
        high = first + ready - (self._trim if final else 0)
        if high <= low:
            return signal.new_zeros(batch_size, 0)
        return head.normalize(signal[:, low - first : high - first], energy[:, low - first : high - first])


def stream(model, chunks, bandwidth, context_frames) -> Iterator[torch.Tensor]:
    """`VocosModel.stream`: see its docstring. Checks its arguments at the call, not at the first `next()`."""
    if isinstance(chunks, (torch.Tensor, np.ndarray)):
        raise TypeError(
            f"`chunks` must be an iterable of chunks (a list or generator of (batch, channels, frames_i) features or "
            f"(num_quantizers, batch, frames_i) codes), got a single {type(chunks).__name__} of shape "
            f"{tuple(chunks.shape)}; iterating over it would split its first axis. Wrap it in a list, or decode a "
            "whole input with `decode_chunked`."
        )
    if not isinstance(chunks, Iterable):
        raise TypeError(f"`chunks` must be an iterable of feature or code chunks, got {type(chunks).__name__}.")
    decoder = VocosStreamingDecoder(model, bandwidth=bandwidth, context_frames=context_frames)
    return _stream_pieces(decoder, chunks)


def _stream_pieces(decoder: VocosStreamingDecoder, chunks: Iterable) -> Iterator[torch.Tensor]:
    for chunk in chunks:
        audio = decoder.push(chunk)
        if audio.shape[-1]:
            yield audio
    audio = decoder.flush()
    if audio.shape[-1]:
        yield audio


def decode_chunked(model, input_features, codes, bandwidth, attention_mask, chunk_size, context_frames):
    """`VocosModel.decode_chunked`: see its docstring. Returns `(audio, attention_mask)`."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral):
        raise TypeError(f"`chunk_size` must be an integer number of frames, got {chunk_size!r}.")
    if chunk_size < 1:
        raise ValueError(f"`chunk_size` must be at least 1 frame, got {chunk_size}.")
    features, frame_mask, _ = model.prepare_inputs(input_features, codes, bandwidth, attention_mask)
    batch_size, _, num_frames = features.shape
    lengths = [num_frames] * batch_size if frame_mask is None else frame_mask.sum(dim=(1, 2)).long().tolist()
    audio = torch.zeros(batch_size, model.config.num_samples(num_frames), device=features.device)
    # Items of equal length advance together, through one decoder: each decodes exactly as alone (no padding frame
    # reaches it), and a ragged batch costs one stream per distinct length.
    groups: dict[int, list[int]] = {}
    for index, length in enumerate(lengths):
        groups.setdefault(length, []).append(index)
    for length, items in groups.items():
        decoder = VocosStreamingDecoder(model, bandwidth=bandwidth, context_frames=context_frames)
        position = 0
        for start in range(0, length, chunk_size):
            piece = decoder.push(features[items, :, start : min(start + chunk_size, length)])
            audio[items, position : position + piece.shape[-1]] = piece
            position += piece.shape[-1]
        piece = decoder.flush()
        audio[items, position : position + piece.shape[-1]] = piece
    return audio, sample_mask(model.config, audio, None if frame_mask is None else torch.tensor(lengths))
