"""Log-mel feature extractor for Vocos, computed with `torch.fft.rfft` over reflect-padded frames (no torchaudio)."""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.audio_utils import mel_filter_bank
from transformers.utils import logging

logger = logging.get_logger(__name__)

__all__ = ["FEATURE_EXTRACTOR_ARGUMENTS", "VocosFeatureExtractor", "no_data"]

# Integer PCM is scaled to [-1, 1) the way soundfile reads it as float: divide by 2**(bits - 1); unsigned 8-bit
# audio is offset-binary (128 is silence).
_PCM_SCALE = {np.dtype(np.int8): 2.0**7, np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31}


def audio_to_float_list(raw_audio: Any, argument_name: str = "raw_speech") -> list[np.ndarray]:
    """Validate mono audio, single or batched, and return it as a list of 1-D float32 arrays.

    Accepts a 1-D numpy array / torch tensor / list of numbers (one clip), a 2-D array or tensor `(batch, samples)`,
    or a list of 1-D clips of any lengths. Integer PCM is converted with the rule in `_PCM_SCALE`. Raises
    `TypeError`/`ValueError` naming `argument_name` for anything else: multi-channel audio, NaN/Inf, empty clips.
    """
    if isinstance(raw_audio, (np.ndarray, torch.Tensor)):
        array = _to_numpy(raw_audio, argument_name)
        if array.ndim == 1:
            clips = [array]
        elif array.ndim == 2:
            rows, columns = array.shape
            if columns <= 8 and rows > columns:
                raise ValueError(
                    f"`{argument_name}` has shape {tuple(array.shape)}, which looks like (samples, channels) "
                    "multi-channel audio; Vocos takes mono audio: mix it down first, e.g. `audio.mean(axis=-1)`. "
                    "A 2-D input is read as a batch of shape (batch, samples)."
                )
            clips = list(array)
        else:
            raise ValueError(
                f"`{argument_name}` must be mono audio of shape (samples,) or a batch of shape (batch, samples), got "
                f"an array of shape {tuple(array.shape)}; mix multi-channel audio down to mono first."
            )
    elif isinstance(raw_audio, (list, tuple)):
        if len(raw_audio) == 0:
            raise ValueError(f"`{argument_name}` is an empty list; expected audio samples or a list of clips.")
        if all(isinstance(value, numbers.Real) for value in raw_audio):
            clips = [_to_numpy(np.asarray(raw_audio), argument_name)]
        else:
            clips = []
            for index, clip in enumerate(raw_audio):
                name = f"{argument_name}[{index}]"
                if isinstance(clip, (list, tuple)):
                    clip = np.asarray(clip)
                if not isinstance(clip, (np.ndarray, torch.Tensor)):
                    raise TypeError(
                        f"`{name}` is a {type(clip).__name__}; expected a 1-D numpy array, torch tensor or list of "
                        "samples."
                    )
                clip = _to_numpy(clip, name)
                if clip.ndim != 1:
                    raise ValueError(
                        f"`{name}` has shape {tuple(clip.shape)}; each clip must be mono audio of shape (samples,). "
                        "Mix multi-channel audio down to mono first, e.g. `audio.mean(axis=-1)`."
                    )
                clips.append(clip)
    else:
        raise TypeError(
            f"`{argument_name}` is a {type(raw_audio).__name__}; expected a numpy array, a torch tensor, a list of "
            "samples or a list of clips."
        )

    for index, clip in enumerate(clips):
        name = argument_name if len(clips) == 1 else f"{argument_name}[{index}]"
        if clip.size == 0:
            raise ValueError(f"`{name}` is empty (0 samples); expected at least one sample of audio.")
        if not np.isfinite(clip).all():
            raise ValueError(f"`{name}` contains NaN or infinite samples; expected finite audio.")
    return clips


def check_sampling_rate(sampling_rate: int | None, expected: int, owner: str) -> None:
    """Raise if `sampling_rate` differs from `expected`; warn once if it was not given."""
    if sampling_rate is None:
        logger.warning_once(
            f"`sampling_rate` was not passed to {owner}; pass it to catch audio at the wrong rate (this model "
            f"expects {expected} Hz)."
        )
    elif sampling_rate != expected:
        raise ValueError(
            f"`sampling_rate`={sampling_rate!r} Hz, but this model works at {expected} Hz: resample the audio first "
            "(e.g. `librosa.resample` or `scipy.signal.resample_poly`)."
        )


def no_data(tensor, name: str) -> None:
    """A tensor on the meta device has a shape but no values: say so before anything tries to read them."""
    if isinstance(tensor, torch.Tensor) and tensor.is_meta:
        raise ValueError(
            f"`{name}` is on the meta device: it has a shape {tuple(tensor.shape)} but no data. Pass a tensor with "
            "values (e.g. move it with .to('cpu') after filling it)."
        )


def check_save_directory(save_directory) -> None:
    """`save_pretrained` writes a folder: refuse a path that is an existing file (transformers would log an error and
    save nothing) or no path at all, naming it."""
    if not isinstance(save_directory, (str, os.PathLike)):
        raise TypeError(f"`save_directory` must be a folder path, got {type(save_directory).__name__}.")
    if os.path.exists(save_directory) and not os.path.isdir(save_directory):
        raise ValueError(
            f"`save_directory` {os.fspath(save_directory)!r} is a file; save_pretrained writes a folder (config, "
            "weights, processor files). Pass the folder's path, e.g. its parent."
        )


def usable_device(value: str | torch.device, label: str) -> torch.device:
    """`value` as a torch device this process can allocate on; otherwise a ValueError that starts with `label` and
    names the value (instead of torch's AssertionError from deep inside the first allocation, for "cuda" on a CPU
    build, or "invalid device ordinal" for a GPU that is not there)."""
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        raise ValueError(f"{label} {value!r}: not a torch device (e.g. 'cpu', 'cuda', 'cuda:1', 'mps')") from None
    if device.type not in ("cpu", "meta"):
        try:
            torch.empty(0, device=device)
        except (AssertionError, RuntimeError, NotImplementedError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(
                f"{label} {value!r}: this torch ({torch.__version__}) cannot use it here ({reason})"
            ) from None
    return device


def _to_numpy(array: np.ndarray | torch.Tensor, argument_name: str) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        no_data(array, argument_name)
        if array.is_complex() or array.dtype == torch.bool:
            raise TypeError(f"`{argument_name}` has dtype {array.dtype}; expected real-valued audio samples.")
        if array.is_floating_point():
            array = array.detach().to("cpu", torch.float32)
        array = array.detach().cpu().numpy()
    if array.dtype.kind == "f":
        return array.astype(np.float32, copy=False)
    if array.dtype in _PCM_SCALE:
        return (array.astype(np.float32) / np.float32(_PCM_SCALE[array.dtype])).astype(np.float32)
    if array.dtype == np.uint8:
        return ((array.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    if array.dtype.kind in "iu":
        raise TypeError(
            f"`{argument_name}` has integer dtype {array.dtype}, whose full scale is ambiguous; pass float audio in "
            "[-1, 1], or int8/uint8/int16/int32 PCM (divided by 2**(bits-1), uint8 offset by 128)."
        )
    raise TypeError(f"`{argument_name}` has dtype {array.dtype}; expected real-valued audio samples.")


class VocosFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Computes the log-mel spectrogram that Vocos is conditioned on, exactly as the original `vocos` package does
    (torchaudio's `MelSpectrogram(power=1)`, then `log(clamp(mel, min=1e-7))`), with `torch.fft.rfft` and
    `transformers.audio_utils.mel_filter_bank` instead of torchaudio.

    Each clip is padded at its own edges (reflect), transformed, and only then are the feature frames of a batch
    padded to a common length, so every item of a ragged batch gets exactly the features it gets alone; the returned
    `attention_mask` marks its valid frames.

    Args:
        feature_size (`int`, *optional*, defaults to 100):
            Number of mel bins.
        sampling_rate (`int`, *optional*, defaults to 24000):
            Sampling rate the audio must have, in Hz.
        n_fft (`int`, *optional*, defaults to 1024):
            FFT size.
        hop_length (`int`, *optional*, defaults to 256):
            Hop between frames, in samples.
        win_length (`int`, *optional*):
            Length of the periodic Hann window (zero-padded to `n_fft` on both sides). Defaults to `n_fft`.
        f_min (`float`, *optional*, defaults to 0.0):
            Lowest frequency of the mel filters, in Hz.
        f_max (`float`, *optional*):
            Highest frequency of the mel filters, in Hz. Defaults to `sampling_rate / 2`.
        mel_scale (`str`, *optional*, defaults to `"htk"`):
            Mel scale of the filters: `"htk"`, `"slaney"` or `"kaldi"`.
        mel_norm (`str`, *optional*):
            `None` (triangles of height 1, as the original) or `"slaney"` (area normalisation, as librosa's default
            and HiFi-GAN).
        padding (`str`, *optional*, defaults to `"center"`):
            `"center"`: reflect-pad `n_fft // 2` samples on each side (T samples give `1 + T // hop_length` frames).
            `"same"`: reflect-pad `(n_fft - hop_length) // 2` on each side, no centring (the original's "same", which
            pairs with an ISTFT head with "same" padding). (`stft_padding`, its name before hf_vocos adopted the Hub's
            format, is still read.)
        log_floor (`float`, *optional*, defaults to 1e-7):
            Mel magnitudes are clamped to at least this value before the natural log (the original's `safe_log`;
            1e-5 for HiFi-GAN/Matcha-style front-ends and the `matcha` fork of vocos).
        padding_value (`float`, *optional*):
            Value of the padded feature frames of a ragged batch. Defaults to `log(log_floor)`, the features of silence.
        power (`float`, *optional*, defaults to 1.0):
            Exponent of the STFT magnitude before the mel filters: 1 (magnitude, as Vocos) or 2 (power).
        magnitude_epsilon (`float`, *optional*, defaults to 0.0):
            Added under the square root of the magnitude, `sqrt(re^2 + im^2 + magnitude_epsilon)` (HiFi-GAN and
            Matcha-TTS use 1e-9); 0 is the plain `|X|` of the original.
        return_attention_mask (`bool`, *optional*, defaults to `True`):
            Whether `__call__` returns the frame-level `attention_mask` by default.
    """

    model_input_names = ["input_features", "attention_mask"]

    def __init__(
        self,
        feature_size: int = 100,
        sampling_rate: int = 24000,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int | None = None,
        f_min: float = 0.0,
        f_max: float | None = None,
        mel_scale: str = "htk",
        mel_norm: str | None = None,
        padding: str = "center",
        log_floor: float = 1e-7,
        padding_value: float | None = None,
        return_attention_mask: bool = True,
        power: float = 1.0,
        magnitude_epsilon: float = 0.0,
        **kwargs,
    ):
        # Older names: `stft_padding` (hf_vocos before the Hub format); `num_mel_bins` is written beside
        # `feature_size` by the Hub format (the same number).
        padding = kwargs.pop("stft_padding", padding)
        num_mel_bins = kwargs.pop("num_mel_bins", feature_size)
        if num_mel_bins != feature_size:
            raise ValueError(
                f"`num_mel_bins` ({num_mel_bins}) and `feature_size` ({feature_size}) must agree: both are the mel "
                "bins."
            )
        for name, value in (
            ("feature_size", feature_size),
            ("sampling_rate", sampling_rate),
            ("n_fft", n_fft),
            ("hop_length", hop_length),
        ):
            _check_positive_int(name, value)
        win_length = n_fft if win_length is None else win_length
        _check_positive_int("win_length", win_length)
        if win_length > n_fft:
            raise ValueError(f"`win_length` ({win_length}) must not exceed `n_fft` ({n_fft}).")
        if hop_length > win_length:
            raise ValueError(f"`hop_length` ({hop_length}) must not exceed `win_length` ({win_length}).")
        if padding not in ("center", "same"):
            raise ValueError(f"`padding` must be 'center' or 'same', got {padding!r}.")
        if mel_scale not in ("htk", "slaney", "kaldi"):
            raise ValueError(f"`mel_scale` must be 'htk', 'slaney' or 'kaldi', got {mel_scale!r}.")
        if mel_norm not in (None, "slaney"):
            raise ValueError(f"`mel_norm` must be None or 'slaney', got {mel_norm!r}.")
        f_max = sampling_rate / 2 if f_max is None else f_max
        if not (0 <= f_min < f_max <= sampling_rate / 2):
            raise ValueError(
                f"Mel filter edges must satisfy 0 <= f_min < f_max <= sampling_rate / 2 ({sampling_rate / 2:g} Hz), "
                f"got f_min={f_min!r}, f_max={f_max!r}."
            )
        if isinstance(log_floor, bool) or not (isinstance(log_floor, numbers.Real) and 0 < log_floor < math.inf):
            raise ValueError(f"`log_floor` must be a positive number, got {log_floor!r}.")
        if padding_value is None:
            padding_value = math.log(log_floor)
        if isinstance(power, bool) or power not in (1, 2):
            raise ValueError(f"`power` must be 1 (magnitude) or 2 (power spectrum), got {power!r}.")
        if not (isinstance(magnitude_epsilon, numbers.Real) and 0 <= magnitude_epsilon < 1):
            raise ValueError(f"`magnitude_epsilon` must be a number in [0, 1), got {magnitude_epsilon!r}.")

        super().__init__(
            feature_size=feature_size,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            return_attention_mask=return_attention_mask,
            **kwargs,
        )
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.f_min = f_min
        self.f_max = f_max
        self.mel_scale = mel_scale
        self.mel_norm = mel_norm
        self.padding = padding
        self.num_mel_bins = feature_size
        self.log_floor = log_floor
        self.power = float(power)
        self.magnitude_epsilon = float(magnitude_epsilon)
        # `mel_filters` and `window` are derived state: `FeatureExtractionMixin.to_dict` leaves both out of the JSON.
        self.mel_filters = mel_filter_bank(
            num_frequency_bins=n_fft // 2 + 1,
            num_mel_filters=feature_size,
            min_frequency=f_min,
            max_frequency=f_max,
            sampling_rate=sampling_rate,
            norm=mel_norm,
            mel_scale=mel_scale,
        ).astype(np.float32)
        self.window = torch.hann_window(win_length, periodic=True).numpy()
        # The window zero-padded to n_fft on both sides, as torch.stft pads it; and the sparse mel product's blocks.
        left = (n_fft - win_length) // 2
        self._fft_window = torch.nn.functional.pad(torch.from_numpy(self.window), (left, n_fft - win_length - left))
        self._mel_blocks = _mel_blocks(self.mel_filters)
        # Copies of the window and the filter blocks on each device the STFT has run on, made once per device.
        self._device_constants = {}

    @classmethod
    def from_dict(cls, feature_extractor_dict: dict[str, Any], **kwargs):
        """Build from a saved dict; keyword arguments that are constructor arguments (`log_floor=1e-5`, `n_fft=...`)
        go through the constructor, so what derives from them follows: the filters, and the padding value, which
        stays `log(log_floor)` unless it was set to something else."""
        saved = dict(feature_extractor_dict)
        overrides = {key: kwargs.pop(key) for key in list(kwargs) if key in FEATURE_EXTRACTOR_ARGUMENTS}
        if "log_floor" in overrides and "padding_value" not in overrides:
            floor, padding_value = saved.get("log_floor", 1e-7), saved.get("padding_value")
            if padding_value is None or math.isclose(padding_value, math.log(floor), rel_tol=1e-6):
                saved.pop("padding_value", None)
        if "feature_size" in overrides:
            saved.pop("num_mel_bins", None)
        saved.update(overrides)
        return super().from_dict(saved, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output.pop("_mel_blocks", None)  # derived from the filters and window, like them not saved
        output.pop("_fft_window", None)
        output.pop("_device_constants", None)
        if type(self)._auto_class is None:
            output.pop("auto_map", None)  # only a save with code (hf_vocos.with_remote_code) writes the files it names
        return output

    @property
    def edge_padding(self) -> int:
        """Samples of reflect padding added at each edge of a clip."""
        if self.padding == "center":
            return self.n_fft // 2
        return (self.n_fft - self.hop_length) // 2

    @property
    def min_num_samples(self) -> int:
        """Shortest clip that can be transformed: reflect padding needs more samples than it pads, and the padded clip
        must hold one FFT frame."""
        return max(self.edge_padding + 1, self.n_fft - 2 * self.edge_padding)

    def num_frames(self, num_samples: int) -> int:
        """Number of feature frames a clip of `num_samples` samples gives."""
        return (num_samples + 2 * self.edge_padding - self.n_fft) // self.hop_length + 1

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        check_save_directory(save_directory)
        return super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)

    def __call__(
        self,
        raw_speech: np.ndarray | torch.Tensor | list,
        sampling_rate: int | None = None,
        return_tensors: str | None = None,
        return_attention_mask: bool | None = None,
        pad_to_multiple_of: int | None = None,
        device: str | torch.device = "cpu",
        **kwargs,
    ) -> BatchFeature:
        """
        Compute log-mel features of one clip or a batch of clips.

        Args:
            raw_speech (`np.ndarray`, `torch.Tensor`, `list[float]` or a list of those):
                Mono audio: one clip of shape `(samples,)`, a batch `(batch, samples)`, or a list of clips of any
                lengths. Float audio is used as is; int8/int16/int32 PCM is divided by `2**(bits - 1)` and uint8 PCM
                is mapped with `(x - 128) / 128`.
            sampling_rate (`int`, *optional*):
                Sampling rate of `raw_speech`. Strongly recommended: a rate other than `self.sampling_rate` raises.
            return_tensors (`str`, *optional*):
                `"pt"` for torch tensors, `"np"` (or `None`) for numpy arrays.
            return_attention_mask (`bool`, *optional*):
                Whether to return the frame-level `attention_mask` (defaults to `self.return_attention_mask`).
            pad_to_multiple_of (`int`, *optional*):
                Pad the frame axis of the batch to a multiple of this (handy for static shapes).
            device (`str` or `torch.device`, *optional*, defaults to `"cpu"`):
                Device the STFT runs on.

        Returns:
            [`BatchFeature`] with `input_features` of shape `(batch, feature_size, frames)` (always batched) and
            `attention_mask` of shape `(batch, frames)` (1 on valid frames).
        """
        if kwargs:
            raise TypeError(f"VocosFeatureExtractor got unexpected keyword arguments: {sorted(kwargs)}.")
        check_sampling_rate(sampling_rate, self.sampling_rate, type(self).__name__)
        if pad_to_multiple_of is not None:
            _check_positive_int("pad_to_multiple_of", pad_to_multiple_of)
        device = usable_device(device, "`device`")
        clips = audio_to_float_list(raw_speech, "raw_speech")
        if not clips:
            raise ValueError("`raw_speech` is a batch of 0 clips; expected at least one clip.")
        for index, clip in enumerate(clips):
            if clip.shape[0] < self.min_num_samples:
                name = "raw_speech" if len(clips) == 1 else f"raw_speech[{index}]"
                raise ValueError(
                    f"`{name}` has {clip.shape[0]} samples; with padding={self.padding!r} and "
                    f"n_fft={self.n_fft} the reflect padding needs at least {self.min_num_samples} samples "
                    f"({self.min_num_samples / self.sampling_rate * 1000:.1f} ms). Pad the clip (e.g. with zeros) "
                    "first."
                )

        frame_counts = [self.num_frames(clip.shape[0]) for clip in clips]
        total_frames = max(frame_counts)
        if pad_to_multiple_of is not None:
            total_frames = -(-total_frames // pad_to_multiple_of) * pad_to_multiple_of
        features = self._log_mel(clips, frame_counts, total_frames, device)
        finite = torch.isfinite(features).flatten(1).all(dim=1)
        if not features.is_meta and not bool(finite.all()):
            index = int((~finite).nonzero()[0, 0])
            name = "raw_speech" if len(clips) == 1 else f"raw_speech[{index}]"
            peak = float(np.abs(np.asarray(clips[index], dtype=np.float64)).max())
            raise ValueError(
                f"`{name}`: its log-mel features are not finite (its peak magnitude is {peak:.3g}, too large for "
                "float32 spectra); expected audio in [-1, 1]. Scale it first (e.g. divide integer PCM by 32768)."
            )

        data = {"input_features": features}
        if return_attention_mask if return_attention_mask is not None else self.return_attention_mask:
            if min(frame_counts) == total_frames:
                attention_mask = torch.ones(len(clips), total_frames, dtype=torch.int32, device=device)
            else:
                counts = torch.tensor(frame_counts, device=device)
                attention_mask = (torch.arange(total_frames, device=device)[None, :] < counts[:, None]).to(torch.int32)
            data["attention_mask"] = attention_mask
        if return_tensors not in ("pt", "pytorch"):
            if return_tensors not in (None, "np", "numpy"):
                raise ValueError(f"`return_tensors` must be 'pt', 'np' or None, got {return_tensors!r}.")
            data = {key: value.cpu().numpy() for key, value in data.items()}
            return BatchFeature(data)
        return BatchFeature(data, tensor_type="pt")

    def _stft_constants(self, device: torch.device) -> tuple[torch.Tensor, list[tuple[int, int, torch.Tensor]]]:
        """The FFT window and the mel filter blocks on `device`, copied there on the first call for that device only
        (an accelerator would otherwise receive six small host-to-device copies per call)."""
        if device.type == "cpu":
            return self._fft_window, self._mel_blocks
        if device not in self._device_constants:
            blocks = [(first, last, weights.to(device)) for first, last, weights in self._mel_blocks]
            self._device_constants[device] = (self._fft_window.to(device), blocks)
        return self._device_constants[device]

    def _log_mel(
        self,
        clips: list[np.ndarray],
        frame_counts: list[int],
        total_frames: int,
        device: torch.device,
        reuse_buffers: bool | None = None,
    ) -> torch.Tensor:
        """Log-mel of each clip (`frame_counts[i]` frames), padded at its own edges: (batch, n_mels, total_frames),
        frames past a clip's own filled with `padding_value`.

        Each clip goes through the STFT in blocks of at most `_FRAMES_PER_BLOCK` frames, so the working memory is
        bounded whatever the audio's length. On CPU the blocks' buffers are kept per thread and reused
        (`reuse_buffers`): allocating them afresh costs more than the transform itself (glibc hands the freed
        megabytes back to the kernel and every call page-faults them in again).
        """
        reuse_buffers = device.type == "cpu" if reuse_buffers is None else reuse_buffers
        make = (
            torch.empty
            if min(frame_counts) == total_frames
            else functools.partial(torch.full, fill_value=self.padding_value)
        )
        # Frames-major output, returned transposed (batch, mels, frames) like torchaudio's.
        features = make((len(clips), total_frames, self.feature_size), dtype=torch.float32, device=device)
        block_frames = min(max(frame_counts), _FRAMES_PER_BLOCK)
        if reuse_buffers:
            frames, magnitude = _thread_buffers(block_frames, self.n_fft)
        else:
            frames = torch.empty(block_frames, self.n_fft, device=device)
            magnitude = torch.empty(block_frames, self.n_fft // 2 + 1, device=device)
        window, mel_blocks = self._stft_constants(device)
        for index, clip in enumerate(clips):
            samples = _as_tensor(clip).to(device)
            for start_frame in range(0, frame_counts[index], block_frames):
                count = min(block_frames, frame_counts[index] - start_frame)
                self._windowed_frames(clip, samples, start_frame, frames[:count], window)
                rows = features[index, start_frame : start_frame + count]
                self._frames_log_mel(frames[:count], magnitude[:count], mel_blocks, reuse_buffers, out=rows)
        return features.transpose(1, 2)

    def _frames_log_mel(
        self, frames: torch.Tensor, magnitude: torch.Tensor, mel_blocks: list, numpy_abs: bool, out: torch.Tensor
    ) -> None:
        """`out` (frames, mels) = the log-mel of windowed `frames` (frames, n_fft); `magnitude` is working space."""
        spectrum = torch.fft.rfft(frames, dim=-1)  # (rfft's out= would add a copy)
        if self.power != 1 or self.magnitude_epsilon:
            self._powered_magnitude(spectrum, magnitude)
        elif numpy_abs:
            # numpy's complex abs (a vectorised hypot) is 5x faster than torch's on CPU and as accurate (the two
            # differ by at most an ulp, where the original's torchaudio Spectrogram(power=1) uses torch's).
            np.abs(spectrum.numpy(), out=magnitude.numpy())
        else:
            torch.abs(spectrum, out=magnitude)
        _mel_product(magnitude, mel_blocks, out=out)
        out.clamp_(min=self.log_floor).log_()

    def stream(self, audio_blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Log-mel features of one long clip given as consecutive blocks of samples (1-D float32 arrays at
        `self.sampling_rate`, of any sizes), as float32 blocks `(feature_size, frames)`, on the CPU. Concatenated,
        they equal `self(clip)["input_features"][0]` bit for bit (the same blocks of frames through the same
        arithmetic), while only about one block of samples and features (11 s at 24 kHz) is held at a time, whatever
        the clip's length. Raises ValueError when the whole clip is shorter than `min_num_samples`."""
        hop, n_fft, pad = self.hop_length, self.n_fft, self.edge_padding
        block = _FRAMES_PER_BLOCK
        frames, magnitude = _thread_buffers(block, n_fft)
        buffer, offset, next_frame = np.empty(0, np.float32), 0, 0  # buffer[0] is sample `offset` of the clip

        def compute(count: int, length: int | None) -> np.ndarray:
            # Frames next_frame ... + count cover samples [start, stop), reflect-padded past the clip's edges.
            start = next_frame * hop - pad
            stop = (next_frame + count - 1) * hop - pad + n_fft
            segment = np.empty(stop - start, np.float32)
            _reflect_segment(buffer, start, segment, offset=offset, length=length)
            torch.mul(torch.from_numpy(segment).unfold(0, n_fft, hop), self._fft_window, out=frames[:count])
            rows = torch.empty(count, self.feature_size)
            self._frames_log_mel(frames[:count], magnitude[:count], self._mel_blocks, True, out=rows)
            return rows.T.numpy()

        for index, piece in enumerate(audio_blocks):
            piece = _to_numpy(piece if isinstance(piece, torch.Tensor) else np.asarray(piece), f"audio_blocks[{index}]")
            if piece.ndim != 1:
                raise ValueError(f"`audio_blocks[{index}]` must be 1-D mono samples, got shape {piece.shape}.")
            if not np.isfinite(piece).all():
                where = f"after {offset + buffer.shape[0]} samples"
                raise ValueError(f"`audio_blocks[{index}]` ({where}) contains NaN or infinite samples.")
            buffer = np.concatenate([buffer, piece])
            # A whole block whose samples all lie inside the clip is a whole block of the full transform as well.
            while (next_frame + block - 1) * hop - pad + n_fft <= offset + buffer.shape[0]:
                yield compute(block, None)
                next_frame += block
                # Keep the next block's samples, and `pad + 1` before them for a reflection at the clip's end.
                keep_from = max(next_frame * hop - 2 * pad - 1, 0)
                buffer, offset = buffer[keep_from - offset :], keep_from
        length = offset + buffer.shape[0]
        if length < self.min_num_samples:
            raise ValueError(
                f"`audio_blocks` hold {length} samples in all; with padding={self.padding!r} and n_fft={n_fft} the "
                f"reflect padding needs at least {self.min_num_samples} samples."
            )
        total = self.num_frames(length)
        while next_frame < total:
            count = min(block, total - next_frame)
            yield compute(count, length)
            next_frame += count

    def _powered_magnitude(self, spectrum: torch.Tensor, out: torch.Tensor) -> None:
        """`out` = (re^2 + im^2 + magnitude_epsilon) ** (power / 2) of `spectrum`."""
        torch.sum(torch.view_as_real(spectrum).square(), dim=-1, out=out)
        if self.magnitude_epsilon:
            out.add_(self.magnitude_epsilon)
        if self.power == 1:
            out.sqrt_()

    def _windowed_frames(
        self, clip: np.ndarray, samples: torch.Tensor, first_frame: int, out: torch.Tensor, window: torch.Tensor
    ) -> None:
        """Write frames `first_frame : first_frame + len(out)` of `clip` (also given as the tensor `samples`, on the
        STFT's device), times the window, into `out`. Frames that lie wholly inside the clip are read from `samples`
        in place; only the few that reach into the reflect padding at either edge go through a padded copy."""
        hop, n_fft, pad = self.hop_length, self.n_fft, self.edge_padding
        last_frame = first_frame + out.shape[0]
        # Frame f covers samples [f * hop - pad, f * hop - pad + n_fft): inside the clip from frame ceil(pad / hop)
        # up to, not including, frame (length + pad - n_fft) // hop + 1.
        inner_start = min(max(-(-pad // hop), first_frame), last_frame)
        inner_stop = max(min((clip.shape[0] + pad - n_fft) // hop + 1, last_frame), inner_start)
        for begin, end in ((first_frame, inner_start), (inner_start, inner_stop), (inner_stop, last_frame)):
            if begin == end:
                continue
            start, stop = begin * hop - pad, (end - 1) * hop - pad + n_fft
            if begin == inner_start and end == inner_stop:
                segment = samples[start:stop]
            else:
                padded = np.empty(stop - start, np.float32)
                _reflect_segment(clip, start, padded)
                segment = torch.from_numpy(padded).to(samples.device)
            torch.mul(segment.unfold(0, n_fft, hop), window, out=out[begin - first_frame : end - first_frame])


# The constructor's arguments: what `from_pretrained(..., name=value)` passes through the constructor.
FEATURE_EXTRACTOR_ARGUMENTS = frozenset(inspect.signature(VocosFeatureExtractor.__init__).parameters) - {
    "self",
    "kwargs",
}

# Frames per STFT block: 1024 frames are 11 s of audio at 24 kHz and hop 256 (about 6 MB of buffers per thread).
_FRAMES_PER_BLOCK = 1024
_buffers = threading.local()


def _thread_buffers(frames: int, n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
    """This thread's STFT buffers (windowed frames, magnitude) as views of the size asked for; reallocated only when
    a call needs more frames than the ones held (or another n_fft)."""
    held = getattr(_buffers, "tensors", None)
    if held is None or held[0].shape[0] < frames or held[0].shape[1] != n_fft:
        held = (torch.empty(frames, n_fft), torch.empty(frames, n_fft // 2 + 1))
        _buffers.tensors = held
    frame_buffer, magnitude = held
    return frame_buffer[:frames], magnitude[:frames]


def _as_tensor(clip: np.ndarray) -> torch.Tensor:
    """`clip` as a CPU tensor sharing its memory; a copy only where torch cannot share it (a read-only array, which
    `torch.from_numpy` warns about, or negative strides)."""
    if not clip.flags.writeable or clip.strides[0] <= 0:
        clip = np.array(clip)
    return torch.from_numpy(clip)


def _reflect_segment(clip: np.ndarray, start: int, out: np.ndarray, offset: int = 0, length: int | None = None) -> None:
    """Write samples `start : start + len(out)` of a clip into `out`, reflect-padded (numpy's "reflect": the edge
    sample is not repeated) where the range runs past either edge, which must be by less than the clip's length.
    `clip` holds the clip's samples from `offset` on (all of it by default); `length` is the clip's whole length
    (None: not known yet, and the range must not run past the samples held)."""
    held_end = offset + clip.shape[0]
    length = held_end if length is None else length
    stop = start + out.shape[0]
    inner_start, inner_stop = max(start, 0), min(stop, length)
    out[inner_start - start : inner_stop - start] = clip[inner_start - offset : inner_stop - offset]
    if start < 0:
        out[:-start] = clip[1 - offset : 1 - start - offset][::-1]
    if stop > length:
        out[length - start :] = clip[2 * length - 1 - stop - offset : length - 1 - offset][::-1]


def _mel_product(magnitude: torch.Tensor, mel_blocks: list[tuple[int, int, torch.Tensor]], out: torch.Tensor) -> None:
    """`out` (frames, mels) = `magnitude` (frames, bins) @ the filterbank, given as `_mel_blocks`. Each mel filter is
    nonzero on a few FFT bins only (2% of the matrix for the original's filters): each group of consecutive filters
    multiplies just the bins its filters span."""
    column = 0
    for first, last, weights in mel_blocks:
        torch.matmul(magnitude[:, first:last], weights, out=out[:, column : column + weights.shape[1]])
        column += weights.shape[1]


def _mel_blocks(mel_filters: np.ndarray, filters_per_block: int = 20) -> list[tuple[int, int, torch.Tensor]]:
    """Split the (freq, mels) filterbank into blocks of consecutive filters: (first bin, last bin + 1, the block's
    (bins, filters) weights). Bins outside a block's span hold zeros for all its filters, so the sums are unchanged."""
    nonzero = mel_filters != 0
    blocks = []
    for start in range(0, mel_filters.shape[1], filters_per_block):
        columns = nonzero[:, start : start + filters_per_block]
        rows = np.flatnonzero(columns.any(axis=1))
        first, last = (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 1)
        weights = torch.from_numpy(np.ascontiguousarray(mel_filters[first:last, start : start + filters_per_block]))
        blocks.append((first, last, weights))
    return blocks


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
