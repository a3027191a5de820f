"""A model + processor pair with the batch operations the command line and dataset tools run: resynthesis, analysis
(audio to log-mel or EnCodec codes), synthesis from features, decoding codes.

Short items are decoded in ragged batches sorted by length (each item gets exactly its solo output); items longer
than `long_seconds` are decoded chunk by chunk through the streaming decoder with a progress bar, so the decoder's
working memory stays bounded (the item and its audio are still held whole; `stream_decode` and `file_streaming` go
from file to file without holding them).
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Iterable, Iterator
from typing import Callable

import numpy as np
import torch

from .audio_io import resample, to_mono
from .capabilities import native_bfloat16_available
from .feature_extraction_vocos import usable_device
from .modeling_vocos import VocosModel
from .processing_vocos import VocosProcessor

__all__ = ["Vocoder", "each_or_alone", "resolve_dtype"]

logger = logging.getLogger("hf_vocos")

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DTYPE_CHOICES = (*_DTYPES, "auto")


def resolve_dtype(dtype: str, device: torch.device | str = "cpu") -> torch.dtype:
    """The torch dtype for a `--dtype` choice. `"auto"` is bfloat16 where `device` computes it natively (on a CPU:
    AVX512-BF16, AMX or ARM's BF16 extension; on CUDA: a GPU with native bf16) and float32 elsewhere: emulated
    bfloat16 runs about 13x slower than float32 (measured on an AVX2-only x86 CPU)."""
    if dtype not in DTYPE_CHOICES:
        raise ValueError(f"--dtype {dtype!r}: expected one of {list(DTYPE_CHOICES)}")
    if dtype != "auto":
        return _DTYPES[dtype]
    device = torch.device(device)
    if device.type == "cpu":
        native = native_bfloat16_available()
    elif device.type == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)
    else:
        native = False
    return torch.bfloat16 if native else torch.float32


class Vocoder:
    """Load `model` (a Hub id or a folder, hf_vocos or original format) on `device` in `dtype` (`"float32"`,
    `"bfloat16"`, `"float16"`, or `"auto"`: bfloat16 where the device computes it natively, float32 otherwise; see
    `resolve_dtype`).

    `bandwidth` (kbps) is required for EnCodec models and refused for mel models. `log_floor` replaces the mel
    feature extractor's log floor (and so its padding value), for a model trained with another floor than its
    checkpoint states.
    """

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        dtype: str = "float32",
        bandwidth: float | None = None,
        batch_size: int = 8,
        long_seconds: float = 60.0,
        chunk_frames: int = 512,
        log_floor: float | None = None,
    ):
        if dtype not in DTYPE_CHOICES:
            raise ValueError(f"--dtype {dtype!r}: expected one of {list(DTYPE_CHOICES)}")
        for flag, value in (("--batch-size", batch_size), ("--chunk-frames", chunk_frames)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{flag} {value!r}: expected a whole number >= 1")
        if isinstance(long_seconds, bool) or not isinstance(long_seconds, numbers.Real) or not long_seconds >= 0:
            raise ValueError(f"--long-seconds {long_seconds!r}: expected a number of seconds >= 0")  # NaN too
        self.device = usable_device(device, "--device")
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = VocosModel.from_pretrained(model, dtype=self.dtype).to(self.device).eval()
        config = self.model.config
        if log_floor is not None and config.is_codes_model:
            raise ValueError(f"--log-floor {log_floor!r}: this is an EnCodec model, it takes no log-mel features")
        self.processor = VocosProcessor.from_pretrained(
            model, **({} if log_floor is None else {"log_floor": log_floor})
        )
        try:
            self.processor.check_fits(config)
        except ValueError as error:
            raise ValueError(f"--model {model}: {error}") from None
        if config.is_codes_model and bandwidth is None:
            raise ValueError(f"--bandwidth is required for this EnCodec model: one of {config.bandwidths} kbps")
        if bandwidth is not None:
            config.bandwidth_index(bandwidth)  # raises for a bandwidth the model does not have
        self.bandwidth = bandwidth
        self.batch_size = batch_size
        self.long_frames = int(long_seconds * config.frame_rate)
        self.chunk_frames = chunk_frames
        if config.is_codes_model and self.processor.has_audio_tokenizer:
            self.processor.audio_tokenizer.to(self.device)

    @property
    def sampling_rate(self) -> int:
        return self.model.config.sampling_rate

    @property
    def is_codes_model(self) -> bool:
        return self.model.config.is_codes_model

    def prepare(self, audio: np.ndarray, sampling_rate: int, name: str = "") -> np.ndarray:
        """Mono float32 audio at the model's rate: mixes channels down and resamples, logging what it did."""
        audio, channels = to_mono(audio)
        self.describe_preparation(name, channels, sampling_rate)
        return resample(audio, sampling_rate, self.sampling_rate)

    def describe_preparation(self, name: str, channels: int, sampling_rate: int) -> None:
        """Log what `prepare` does to audio with this many channels at this rate."""
        if channels > 1:
            logger.info(f"{name}: {channels} channels mixed to mono")
        if sampling_rate != self.sampling_rate:
            logger.info(f"{name}: resampled {sampling_rate} Hz -> {self.sampling_rate} Hz")

    # ---- audio -> features or codes ----------------------------------------------------------------------------

    def analyze(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """Log-mel features (n_mels, frames) float32, or for EnCodec models codes (num_quantizers, frames) int64, of
        mono clips at the model's rate."""
        outputs: list[np.ndarray | None] = [None] * len(clips)
        for indices in self._batches([len(clip) for clip in clips]):
            batch = [clips[i] for i in indices]
            if self.is_codes_model:
                inputs = self.processor(audio=batch, bandwidth=self.bandwidth, sampling_rate=self.sampling_rate)
                values, mask = inputs["codes"].permute(1, 0, 2), inputs["attention_mask"]
            else:
                inputs = self.processor(audio=batch, sampling_rate=self.sampling_rate)
                values, mask = inputs["input_features"], inputs["attention_mask"]
            for position, index in enumerate(indices):
                outputs[index] = values[position, :, : int(mask[position].sum())].numpy()
        return outputs

    # ---- features or codes -> audio ------------------------------------------------------------------------------

    def resynthesize(self, clips: list[np.ndarray], progress: Callable | None = None) -> list[np.ndarray]:
        """Copy-synthesis of mono clips at the model's rate."""
        return self.decode(self.analyze(clips), progress)

    def decode(self, items: list[np.ndarray], progress: Callable | None = None) -> list[np.ndarray]:
        """Audio of log-mel features (channels, frames) or, for EnCodec models, codes (num_quantizers, frames).

        `progress(total_frames)`, if given, returns a callable that is told how many frames each streamed chunk
        decoded (for a progress bar over a long item)."""
        outputs: list[np.ndarray | None] = [None] * len(items)
        long_items = [i for i, item in enumerate(items) if item.shape[-1] > self.long_frames]
        short_items = [i for i, item in enumerate(items) if item.shape[-1] <= self.long_frames]
        lengths = [items[i].shape[-1] for i in short_items]
        with torch.inference_mode():
            for batch in self._batches(lengths):
                indices = [short_items[i] for i in batch]
                output = self.model(**self._model_inputs([items[i] for i in indices]))
                for index, waveform in zip(indices, self.processor.batch_decode(output)):
                    outputs[index] = waveform
            for index in long_items:
                outputs[index] = self._stream(items[index], progress)
        return outputs

    def _model_inputs(self, items: list[np.ndarray]) -> dict:
        codes = self.is_codes_model and np.issubdtype(items[0].dtype, np.integer)
        if not codes:
            for item in items:
                if not np.issubdtype(item.dtype, np.floating):
                    raise TypeError(f"features must be floating point, got {item.dtype}")
        lengths = [item.shape[-1] for item in items]
        batch = np.stack(
            [np.pad(item, [(0, 0)] * (item.ndim - 1) + [(0, max(lengths) - item.shape[-1])]) for item in items]
        )
        mask = torch.from_numpy(np.arange(max(lengths))[None, :] < np.array(lengths)[:, None]).int()
        if codes:
            return {
                "codes": torch.from_numpy(batch).permute(1, 0, 2),
                "bandwidth": self.bandwidth,
                "attention_mask": mask,
            }
        kwargs = {"bandwidth": self.bandwidth} if self.bandwidth is not None else {}
        return {"input_features": torch.from_numpy(batch), "attention_mask": mask, **kwargs}

    def _stream(self, item: np.ndarray, progress: Callable | None) -> np.ndarray:
        update = progress(item.shape[-1]) if progress is not None else None
        return np.concatenate([np.zeros(0, np.float32), *self.stream_decode([item], update)])

    def stream_decode(self, blocks: Iterable[np.ndarray], update: Callable | None = None) -> Iterator[np.ndarray]:
        """The audio of one item given as consecutive blocks of log-mel features `(channels, frames_i)` or, for EnCodec
        models, codes `(num_quantizers, frames_i)`: float32 pieces, yielded as they become final. The blocks go to
        the streaming decoder in chunks of exactly `chunk_frames` frames whatever their own sizes, the way `decode`
        streams a long item, so the audio is the same bit for bit; only a chunk and the decoder's context are held.
        `update(frames)`, if given, is told each chunk's frames."""

        def chunks():
            for chunk in _rechunk(blocks, self.chunk_frames):
                tensor = torch.from_numpy(chunk)
                if self.is_codes_model and not tensor.is_floating_point():
                    tensor = tensor[:, None, :]  # (num_quantizers, frames) -> (num_quantizers, 1, frames)
                yield tensor
                if update is not None:
                    update(chunk.shape[-1])

        kwargs = {"bandwidth": self.bandwidth} if self.bandwidth is not None else {}
        for piece in self.model.stream(chunks(), **kwargs):  # (the decoder runs without autograd)
            yield piece[0].float().cpu().numpy()

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices in batches of `batch_size`, sorted by length so that little padding is computed."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        return [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]


def _rechunk(blocks: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Consecutive blocks `(..., frames_i)` regrouped into contiguous chunks of exactly `size` frames (the last one
    shorter)."""
    held, first = None, None
    for index, block in enumerate(blocks):
        block = np.asarray(block)
        if first is None:
            first = block
        elif block.shape[:-1] != first.shape[:-1] or block.dtype.kind != first.dtype.kind:
            raise ValueError(
                f"`blocks[{index}]` has shape {block.shape} and dtype {block.dtype}, but `blocks[0]` has "
                f"{first.shape} and {first.dtype}: the blocks of one item must differ only in frames (the last axis)."
            )
        held = block if held is None else np.concatenate([held, block], axis=-1)
        while held.shape[-1] >= size:
            yield np.ascontiguousarray(held[..., :size])
            held = held[..., size:]
    if held is not None and held.shape[-1]:
        yield np.ascontiguousarray(held)


def each_or_alone(compute: Callable[[list], list], items: list) -> list[tuple[object, Exception | None]]:
    """`compute(items)` on the whole group; if it raises ValueError or TypeError, each item alone, so that a bad item
    fails by itself and the others still get their results. Returns `(result, None)` or `(None, error)` per item."""
    try:
        return [(result, None) for result in compute(items)]
    except (ValueError, TypeError) as error:
        if len(items) == 1:
            return [(None, error)]
    return [each_or_alone(compute, [item])[0] for item in items]
