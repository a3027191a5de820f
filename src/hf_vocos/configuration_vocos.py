"""Vocos model configuration."""

from __future__ import annotations

import math
import numbers

from transformers import PreTrainedConfig
from transformers.activations import ACT2FN

__all__ = ["VocosConfig"]


class VocosConfig(PreTrainedConfig):
    r"""
    Configuration of a [`VocosModel`]: the ConvNeXt backbone, the ISTFT head and, for the EnCodec variant, the codebook
    embedding that turns EnCodec codes into backbone inputs. Every architecture number lives here.

    The defaults reproduce [charactr/vocos-mel-24khz](https://huggingface.co/charactr/vocos-mel-24khz). The EnCodec
    variant, [charactr/vocos-encodec-24khz](https://huggingface.co/charactr/vocos-encodec-24khz), is

    ```python
    VocosConfig(
        input_channels=128, hidden_size=384, intermediate_size=1152, num_hidden_layers=8,
        n_fft=1280, hop_length=320, istft_padding="same", bandwidths=[1.5, 3.0, 6.0, 12.0],
    )
    ```

    Args:
        input_channels (`int`, *optional*, defaults to 100):
            Number of input feature channels: mel bins for the mel variant, `codebook_dim` for the EnCodec variant.
        hidden_size (`int`, *optional*, defaults to 512):
            Width of the ConvNeXt backbone.
        intermediate_size (`int`, *optional*, defaults to 1536):
            Width of the pointwise layer inside each ConvNeXt block.
        num_hidden_layers (`int`, *optional*, defaults to 8):
            Number of ConvNeXt blocks.
        kernel_size (`int`, *optional*, defaults to 7):
            Kernel size of the depthwise convolution in each ConvNeXt block (odd, "same" padded).
        input_kernel_size (`int`, *optional*, defaults to 7):
            Kernel size of the convolution that embeds the input features (odd, "same" padded).
        layer_scale_init_value (`float`, *optional*):
            Initial value of the per-channel layer scale of each block. Defaults to `1 / num_hidden_layers`, as in the
            original.
        layer_norm_eps (`float`, *optional*, defaults to 1e-6):
            Epsilon of every layer norm.
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation inside the ConvNeXt blocks (any key of `transformers.activations.ACT2FN`).
        n_fft (`int`, *optional*, defaults to 1024):
            FFT size of the inverse STFT; the head predicts `n_fft // 2 + 1` magnitudes and phases per frame.
        hop_length (`int`, *optional*, defaults to 256):
            Hop between frames, in samples: one input frame becomes `hop_length` output samples.
        win_length (`int`, *optional*):
            Length of the Hann window of the inverse STFT (zero-padded to `n_fft`). Defaults to `n_fft`.
        istft_padding (`str`, *optional*, defaults to `"center"`):
            `"center"` (as `torch.istft(center=True)`: `F` frames give `(F - 1) * hop_length` samples) or `"same"`
            (overlap-add trimmed by `(n_fft - hop_length) // 2` on each side: `F` frames give `F * hop_length`
            samples).
        sampling_rate (`int`, *optional*, defaults to 24000):
            Sampling rate of the audio the model produces, in Hz.
        max_magnitude (`float`, *optional*, defaults to 100.0):
            The predicted STFT magnitudes are clipped to this value (the original's safeguard).
        bandwidths (`list[float]`, *optional*):
            EnCodec variant only: the bandwidths (kbps) the model was trained with, in the order of its adaptive
            layer-norm rows. `None` makes a mel (features-only) model.
        codebook_size (`int`, *optional*, defaults to 1024):
            EnCodec variant: entries per codebook.
        num_codebooks (`int`, *optional*):
            EnCodec variant: codebooks in the embedding table. Defaults to the number the highest bandwidth uses.
        codebook_dim (`int`, *optional*, defaults to 128):
            EnCodec variant: dimension of a codebook entry (the backbone's `input_channels`).
        use_adaptive_norm (`bool`, *optional*):
            Whether the layer norms are conditioned on the bandwidth (one learnt scale and shift per bandwidth).
            Defaults to `True` exactly when `bandwidths` is set.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the truncated normal used to initialise linear and convolution weights.

    Example:

    ```python
    >>> from hf_vocos import VocosConfig, VocosModel

    >>> configuration = VocosConfig()  # charactr/vocos-mel-24khz sizes
    >>> model = VocosModel(configuration)  # random weights
    ```
    """

    model_type = "vocos"

    input_channels: int = 100
    hidden_size: int = 512
    intermediate_size: int = 1536
    num_hidden_layers: int = 8
    kernel_size: int = 7
    input_kernel_size: int = 7
    layer_scale_init_value: float | None = None
    layer_norm_eps: float = 1e-6
    hidden_act: str = "gelu"
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int | None = None
    istft_padding: str = "center"
    sampling_rate: int = 24000
    max_magnitude: float = 100.0
    bandwidths: list[float] | None = None
    codebook_size: int = 1024
    num_codebooks: int | None = None
    codebook_dim: int = 128
    use_adaptive_norm: bool | None = None
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        for name in (
            "input_channels",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "kernel_size",
            "input_kernel_size",
            "n_fft",
            "hop_length",
            "sampling_rate",
            "codebook_size",
            "codebook_dim",
        ):
            setattr(self, name, _positive_int(name, getattr(self, name)))
        for name in ("kernel_size", "input_kernel_size"):
            if getattr(self, name) % 2 == 0:
                raise ValueError(f"VocosConfig: `{name}` must be odd (the convolutions are 'same' padded), got {getattr(self, name)}.")

        self.win_length = self.n_fft if self.win_length is None else _positive_int("win_length", self.win_length)
        if self.win_length > self.n_fft:
            raise ValueError(f"VocosConfig: `win_length` ({self.win_length}) must not exceed `n_fft` ({self.n_fft}).")
        if self.hop_length >= self.win_length:
            raise ValueError(
                f"VocosConfig: `hop_length` ({self.hop_length}) must be smaller than `win_length` ({self.win_length}), "
                "or the overlap-add leaves samples that no window covers."
            )
        if self.istft_padding not in ("center", "same"):
            raise ValueError(f"VocosConfig: `istft_padding` must be 'center' or 'same', got {self.istft_padding!r}.")
        if self.hidden_act not in ACT2FN:
            raise ValueError(f"VocosConfig: `hidden_act` {self.hidden_act!r} is not a known activation (see ACT2FN).")

        self.layer_norm_eps = _positive_float("layer_norm_eps", self.layer_norm_eps)
        self.max_magnitude = _positive_float("max_magnitude", self.max_magnitude)
        self.initializer_range = _positive_float("initializer_range", self.initializer_range)
        if self.layer_scale_init_value is None:
            self.layer_scale_init_value = 1.0 / self.num_hidden_layers
        self.layer_scale_init_value = _positive_float("layer_scale_init_value", self.layer_scale_init_value)

        if self.bandwidths is not None:
            self._post_init_codebooks()
        else:
            if self.num_codebooks is not None:
                raise ValueError("VocosConfig: `num_codebooks` is set but `bandwidths` is not; a codes model needs both.")
            if self.use_adaptive_norm:
                raise ValueError(
                    "VocosConfig: `use_adaptive_norm` is True but `bandwidths` is not set; the adaptive norm has one row per bandwidth."
                )
            self.use_adaptive_norm = False

        super().__post_init__(**kwargs)

    def _post_init_codebooks(self):
        bandwidths = self.bandwidths
        if not isinstance(bandwidths, (list, tuple)) or len(bandwidths) == 0:
            raise ValueError(f"VocosConfig: `bandwidths` must be a non-empty list of kbps values, got {bandwidths!r}.")
        self.bandwidths = [_positive_float("bandwidths", value) for value in bandwidths]
        if len(set(self.bandwidths)) != len(self.bandwidths):
            raise ValueError(f"VocosConfig: `bandwidths` has repeated values: {self.bandwidths}.")
        if self.input_channels != self.codebook_dim:
            raise ValueError(
                f"VocosConfig: a codes model embeds codes into `codebook_dim` ({self.codebook_dim}) channels, so "
                f"`input_channels` must equal it, got {self.input_channels}."
            )
        needed = max(self.num_quantizers_for_bandwidth(bandwidth) for bandwidth in self.bandwidths)
        if self.num_codebooks is None:
            self.num_codebooks = needed
        self.num_codebooks = _positive_int("num_codebooks", self.num_codebooks)
        if self.num_codebooks < needed:
            raise ValueError(
                f"VocosConfig: `num_codebooks` ({self.num_codebooks}) is fewer than the {needed} codebooks that "
                f"{max(self.bandwidths)} kbps needs at {self.frame_rate:g} frames/s."
            )
        if self.use_adaptive_norm is None:
            self.use_adaptive_norm = True

    def to_dict(self) -> dict:
        output = super().to_dict()
        if type(self)._auto_class is None:
            # An auto_map left from a save with code (hf_vocos.with_remote_code) would point at files a save without
            # code does not write.
            output.pop("auto_map", None)
        return output

    @property
    def frame_rate(self) -> float:
        """Frames per second of the model's input (features or codes)."""
        return self.sampling_rate / self.hop_length

    @property
    def istft_trim(self) -> int:
        """Samples the inverse STFT trims from each end of the overlap-added signal."""
        return self.n_fft // 2 if self.istft_padding == "center" else (self.n_fft - self.hop_length) // 2

    def num_samples(self, num_frames):
        """Output samples for `num_frames` input frames (an int or an integer tensor)."""
        return (num_frames - 1) * self.hop_length + self.n_fft - 2 * self.istft_trim

    @property
    def is_codes_model(self) -> bool:
        """Whether the model has a codebook embedding table and takes EnCodec `codes`."""
        return self.bandwidths is not None

    def num_quantizers_for_bandwidth(self, bandwidth: float) -> int:
        """Number of codebooks EnCodec uses at `bandwidth` kbps (at `frame_rate` frames/s, as the `encodec` package
        computes it: `floor(bandwidth / (log2(codebook_size) * frame_rate / 1000))`)."""
        kbps_per_codebook = math.log2(self.codebook_size) * math.ceil(self.frame_rate) / 1000
        return int(max(1, math.floor(bandwidth / kbps_per_codebook)))

    def bandwidth_index(self, bandwidth: float) -> int:
        """Row of the adaptive layer norm for `bandwidth` (kbps). Raises `ValueError` for a bandwidth the model does
        not have."""
        if self.bandwidths is None:
            raise ValueError("`bandwidth` was given, but this is a mel model (config.bandwidths is None).")
        if isinstance(bandwidth, bool) or not isinstance(bandwidth, numbers.Real):
            raise TypeError(f"`bandwidth` must be a number in kbps (e.g. 6.0), got {bandwidth!r}.")
        for index, known in enumerate(self.bandwidths):
            if abs(bandwidth - known) <= 1e-6:  # not math.isclose: this also takes torch.compile's symbolic floats
                return index
        raise ValueError(f"`bandwidth`={bandwidth!r} kbps is not one of this model's bandwidths {self.bandwidths}.")


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"VocosConfig: `{name}` must be a positive integer, got {value!r}.")
    return int(value)


def _positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"VocosConfig: `{name}` must be a positive finite number, got {value!r}.")
    return float(value)
