"""Vocos model configurations: `VocosConfig` (mel) and `VocosEncodecConfig` (EnCodec codes).

Field names are those of the checkpoints on the Hub (`hf-audio/vocos-mel-24khz`, `hf-audio/vocos-encodec-24khz`, written
by the Vocos integration proposed to transformers, its latest format). Configs written by older formats (earlier
generations of that integration, and hf_vocos before it adopted the Hub's names) are mapped on load by
`legacy_config_fields`, the one place that knows the old names.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from transformers import PreTrainedConfig
from transformers.activations import ACT2FN

__all__ = ["VocosConfig", "VocosEncodecConfig", "legacy_config_fields"]

ENCODEC_BANDWIDTHS = [1.5, 3.0, 6.0, 12.0]


class VocosConfig(PreTrainedConfig):
    r"""
    Configuration of a [`VocosModel`] that decodes log-mel features: the ConvNeXt backbone and the ISTFT head. Every
    architecture number lives here. The defaults reproduce
    [hf-audio/vocos-mel-24khz](https://huggingface.co/hf-audio/vocos-mel-24khz) (originally
    `charactr/vocos-mel-24khz`). The EnCodec variant is [`VocosEncodecConfig`].

    Args:
        n_mels (`int`, *optional*, defaults to 100):
            Number of mel bins of the input features.
        hidden_size (`int`, *optional*, defaults to 512):
            Width of the ConvNeXt backbone.
        intermediate_size (`int`, *optional*, defaults to 1536):
            Width of the pointwise layer inside each ConvNeXt block.
        num_layers (`int`, *optional*, defaults to 8):
            Number of ConvNeXt blocks (`num_hidden_layers` is an alias).
        kernel_size (`int`, *optional*, defaults to 7):
            Kernel size of the input convolution and of each block's depthwise convolution (odd).
        padding (`int`, *optional*):
            Padding of those convolutions; they are "same" convolutions, so it must be `kernel_size // 2` (the
            default).
        layer_scale_init_value (`float`, *optional*):
            Initial value of each block's per-channel layer scale. Defaults to `1 / num_layers`, as in the original.
        layer_norm_eps (`float`, *optional*, defaults to 1e-6):
            Epsilon of every layer norm.
        n_fft (`int`, *optional*, defaults to 1024):
            FFT size of the inverse STFT; the head predicts `n_fft // 2 + 1` magnitudes and phases per frame.
        hop_length (`int`, *optional*, defaults to 256):
            Hop between frames, in samples: one input frame becomes `hop_length` output samples.
        istft_padding (`str`, *optional*, defaults to `"center"`):
            `"center"` (as `torch.istft(center=True)`: `F` frames give `(F - 1) * hop_length` samples) or `"same"`
            (overlap-add trimmed by `(n_fft - hop_length) // 2` on each side: `F` frames give `F * hop_length`).
        sample_rate (`int`, *optional*, defaults to 24000):
            Sampling rate of the audio the model produces, in Hz (`sampling_rate` is an alias).
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation inside the ConvNeXt blocks (any key of `transformers.activations.ACT2FN`).
        win_length (`int`, *optional*):
            Length of the inverse STFT's periodic Hann window (zero-padded to `n_fft`). Defaults to `n_fft`.
        max_magnitude (`float`, *optional*, defaults to 100.0):
            The predicted STFT magnitudes are clipped to this value (the original's safeguard).
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the truncated normal used to initialise linear and convolution weights.

    Example:

    ```python
    >>> from hf_vocos import VocosConfig, VocosModel

    >>> model = VocosModel(VocosConfig())  # hf-audio/vocos-mel-24khz sizes, random weights
    ```
    """

    model_type = "vocos"
    attribute_map = {"num_hidden_layers": "num_layers", "sampling_rate": "sample_rate"}

    n_mels: int = 100
    hidden_size: int = 512
    intermediate_size: int = 1536
    num_layers: int = 8
    kernel_size: int = 7
    padding: int | None = None
    layer_scale_init_value: float | None = None
    layer_norm_eps: float = 1e-6
    n_fft: int = 1024
    hop_length: int = 256
    istft_padding: str = "center"
    sample_rate: int = 24000
    hidden_act: str = "gelu"
    win_length: int | None = None
    max_magnitude: float = 100.0
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        kwargs = self._take_legacy_fields(kwargs)
        for name in self._positive_ints():
            setattr(self, name, _positive_int(name, getattr(self, name)))
        if self.kernel_size % 2 == 0:
            raise ValueError(
                f"{type(self).__name__}: `kernel_size` must be odd (the convolutions are 'same' padded), got "
                f"{self.kernel_size}."
            )
        if self.padding is None:
            self.padding = self.kernel_size // 2
        if self.padding != self.kernel_size // 2:
            raise ValueError(
                f"{type(self).__name__}: `padding` must be kernel_size // 2 = {self.kernel_size // 2} (the "
                "convolutions "
                f"keep the frame count), got {self.padding!r}."
            )
        if self.n_fft % 2:
            raise ValueError(
                f"{type(self).__name__}: `n_fft` must be even (the head predicts n_fft // 2 + 1 bins), got "
                f"{self.n_fft}."
            )
        self.win_length = self.n_fft if self.win_length is None else _positive_int("win_length", self.win_length)
        if self.win_length > self.n_fft:
            raise ValueError(
                f"{type(self).__name__}: `win_length` ({self.win_length}) must not exceed `n_fft` ({self.n_fft})."
            )
        if self.hop_length >= self.win_length:
            raise ValueError(
                f"{type(self).__name__}: `hop_length` ({self.hop_length}) must be smaller than `win_length` "
                f"({self.win_length}), or the overlap-add leaves samples that no window covers."
            )
        if self.istft_padding not in ("center", "same"):
            raise ValueError(
                f"{type(self).__name__}: `istft_padding` must be 'center' or 'same', got {self.istft_padding!r}."
            )
        if self.hidden_act not in ACT2FN:
            raise ValueError(
                f"{type(self).__name__}: `hidden_act` {self.hidden_act!r} is not a known activation (see ACT2FN)."
            )
        for name in ("layer_norm_eps", "max_magnitude", "initializer_range"):
            setattr(self, name, _positive_float(name, getattr(self, name)))
        if self.layer_scale_init_value is None:
            self.layer_scale_init_value = 1.0 / self.num_layers
        self.layer_scale_init_value = _positive_float("layer_scale_init_value", self.layer_scale_init_value)
        super().__post_init__(**kwargs)

    def _positive_ints(self) -> tuple[str, ...]:
        return (
            "n_mels",
            "hidden_size",
            "intermediate_size",
            "num_layers",
            "kernel_size",
            "n_fft",
            "hop_length",
            "sample_rate",
        )

    def _take_legacy_fields(self, kwargs: dict) -> dict:
        """Older field names given at construction (`input_channels`, `hidden_dim`, `spec_padding`, ...) set the
        current fields; what describes another variant is refused with the class to use instead."""
        current, rest = legacy_config_fields(kwargs, encodec=self.is_codes_model)
        if not self.is_codes_model and current.pop("_encodec", False):
            raise ValueError(
                "VocosConfig: this describes an EnCodec model (bandwidth-conditioned norms or a codebook table); use "
                "VocosEncodecConfig, or VocosConfig.from_dict / from_pretrained, which pick the class."
            )
        current.pop("_encodec", None)
        for name, value in current.items():
            setattr(self, name, value)
        return rest

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """As `PreTrainedConfig.from_pretrained`, for a checkpoint of any format and either variant (the class
        follows the checkpoint, see `from_dict`)."""
        config_dict, kwargs = cls.get_config_dict(pretrained_model_name_or_path, **kwargs)
        return cls.from_dict(config_dict, **kwargs)

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs):
        """Build the config a dict describes, whatever format wrote it: an EnCodec model's dict gives a
        [`VocosEncodecConfig`] (so `VocosConfig.from_pretrained` and `AutoConfig` read every format)."""
        if not isinstance(config_dict, dict):
            raise ValueError(f"a Vocos config is a mapping of fields, got a {type(config_dict).__name__}.")
        if config_dict.get("model_type") not in (None, "vocos", "vocos_encodec", "vocos_with_encodec"):
            raise ValueError(
                f"model_type {config_dict.get('model_type')!r} is not a Vocos model (expected 'vocos' or "
                "'vocos_encodec')."
            )
        target = VocosEncodecConfig if describes_encodec_model(config_dict) else VocosConfig
        if cls in (VocosConfig, VocosEncodecConfig) and target is not cls:
            cls = target
        config_dict = {key: value for key, value in config_dict.items() if key != "model_type"}
        if issubclass(cls, VocosEncodecConfig) and "n_mels" in config_dict:
            # Generation D names the EnCodec model's input width n_mels too.
            config_dict.setdefault("codebook_dim", config_dict["n_mels"])
            del config_dict["n_mels"]
        return super(VocosConfig, cls).from_dict(config_dict, **kwargs)

    def to_dict(self) -> dict:
        output = super().to_dict()
        if type(self)._auto_class is None:
            # An auto_map left from a save with code (hf_vocos.with_remote_code) would point at files a save without
            # code does not write.
            output.pop("auto_map", None)
        return output

    # ---- derived values ------------------------------------------------------------------------------------------

    @property
    def input_channels(self) -> int:
        """Channels of the model's input features: `n_mels` (mel) or `codebook_dim` (EnCodec)."""
        return self.n_mels

    @property
    def is_codes_model(self) -> bool:
        """Whether the model takes EnCodec `codes` (it has the codebook table)."""
        return False

    @property
    def use_adaptive_norm(self) -> bool:
        """Whether the layer norms are conditioned on the bandwidth."""
        return False

    @property
    def bandwidths(self) -> list[float] | None:
        return None

    @property
    def frame_rate(self) -> float:
        """Frames per second of the model's input (features or codes)."""
        return self.sample_rate / self.hop_length

    @property
    def istft_trim(self) -> int:
        """Samples the inverse STFT trims from each end of the overlap-added signal."""
        return self.n_fft // 2 if self.istft_padding == "center" else (self.n_fft - self.hop_length) // 2

    def num_samples(self, num_frames):
        """Output samples for `num_frames` input frames (an int or an integer tensor)."""
        return (num_frames - 1) * self.hop_length + self.n_fft - 2 * self.istft_trim

    def bandwidth_index(self, bandwidth: float) -> int:
        raise ValueError("`bandwidth` was given, but this is a mel model: it takes no bandwidth.")


class VocosEncodecConfig(VocosConfig):
    r"""
    Configuration of a [`VocosEncodecModel`]: Vocos decoding EnCodec codes (or their embeddings), with layer norms
    conditioned on the bandwidth. The defaults reproduce
    [hf-audio/vocos-encodec-24khz](https://huggingface.co/hf-audio/vocos-encodec-24khz) (originally
    `charactr/vocos-encodec-24khz`). Takes the fields of [`VocosConfig`] (without `n_mels`) and:

    Args:
        codebook_dim (`int`, *optional*, defaults to 128):
            Dimension of an EnCodec codebook entry: the backbone's input channels.
        num_quantizers (`int`, *optional*, defaults to 16384):
            Rows of the codebook table `codebook_weights`: the first `num_quantizers / codebook_size` EnCodec
            codebooks, stacked (16 for the 24 kHz model at up to 12 kbps).
        bandwidths (`list[float]`, *optional*, defaults to `[1.5, 3.0, 6.0, 12.0]`):
            The bandwidths (kbps) the model was trained with, in the order of its adaptive layer-norm rows.
        codebook_size (`int`, *optional*, defaults to 1024):
            Entries per EnCodec codebook.
        use_adaptive_norm (`bool`, *optional*, defaults to `True`):
            Whether the layer norms are conditioned on the bandwidth (one learnt scale and shift per bandwidth). An
            original EnCodec Vocos trained without them has `False`.

    Example:

    ```python
    >>> from hf_vocos import VocosEncodecConfig, VocosEncodecModel

    >>> model = VocosEncodecModel(VocosEncodecConfig())  # hf-audio/vocos-encodec-24khz sizes, random weights
    ```
    """

    model_type = "vocos_encodec"

    codebook_dim: int = 128
    num_quantizers: int | None = None
    hidden_size: int = 384
    intermediate_size: int = 1152
    n_fft: int = 1280
    hop_length: int = 320
    istft_padding: str = "same"
    bandwidths: list[float] | None = None
    codebook_size: int = 1024
    use_adaptive_norm: bool = True

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        bandwidths = list(ENCODEC_BANDWIDTHS) if self.bandwidths is None else self.bandwidths
        if not isinstance(bandwidths, (list, tuple)) or len(bandwidths) == 0:
            raise ValueError(
                f"VocosEncodecConfig: `bandwidths` must be a non-empty list of kbps values, got {bandwidths!r}."
            )
        self.bandwidths = [_positive_float("bandwidths", value) for value in bandwidths]
        if len(set(self.bandwidths)) != len(self.bandwidths):
            raise ValueError(f"VocosEncodecConfig: `bandwidths` has repeated values: {self.bandwidths}.")
        if not isinstance(self.use_adaptive_norm, bool):
            raise ValueError(
                f"VocosEncodecConfig: `use_adaptive_norm` must be True or False, got {self.use_adaptive_norm!r}."
            )
        needed = max(self.num_quantizers_for_bandwidth(bandwidth) for bandwidth in self.bandwidths)
        if self.num_quantizers is None:
            self.num_quantizers = needed * self.codebook_size
        self.num_quantizers = _positive_int("num_quantizers", self.num_quantizers)
        if self.num_quantizers % self.codebook_size or self.num_quantizers < needed * self.codebook_size:
            raise ValueError(
                f"VocosEncodecConfig: `num_quantizers` ({self.num_quantizers}) must be whole codebooks of "
                f"{self.codebook_size} rows, at least the {needed} codebooks that {max(self.bandwidths):g} kbps needs "
                "at "
                f"{self.frame_rate:g} frames/s ({needed * self.codebook_size} rows)."
            )

    def _positive_ints(self) -> tuple[str, ...]:
        names = tuple(name for name in super()._positive_ints() if name != "n_mels")
        return (*names, "codebook_dim", "codebook_size")

    def to_dict(self) -> dict:
        output = super().to_dict()
        output.pop("n_mels", None)  # (a dataclass field of the parent; this variant has none)
        return output

    @property
    def input_channels(self) -> int:
        return self.codebook_dim

    @property
    def is_codes_model(self) -> bool:
        return True

    @property
    def num_codebooks(self) -> int:
        """EnCodec codebooks in the table (`num_quantizers` rows of `codebook_size`)."""
        return self.num_quantizers // self.codebook_size

    def num_quantizers_for_bandwidth(self, bandwidth: float) -> int:
        """Number of codebooks EnCodec uses at `bandwidth` kbps (at `frame_rate` frames/s, as the `encodec` package
        computes it: `floor(bandwidth / (log2(codebook_size) * frame_rate / 1000))`): 2, 4, 8, 16 at 1.5-12 kbps."""
        kbps_per_codebook = math.log2(self.codebook_size) * math.ceil(self.frame_rate) / 1000
        return int(max(1, math.floor(bandwidth / kbps_per_codebook)))

    def bandwidth_index(self, bandwidth: float) -> int:
        """Row of the adaptive layer norm for `bandwidth` (kbps). Raises `ValueError` for a bandwidth the model does
        not have."""
        if isinstance(bandwidth, bool) or not isinstance(bandwidth, numbers.Real):
            raise TypeError(f"`bandwidth` must be a number in kbps (e.g. 6.0), got {bandwidth!r}.")
        for index, known in enumerate(self.bandwidths):
            if abs(bandwidth - known) <= 1e-6:  # not math.isclose: this also takes torch.compile's symbolic floats
                return index
        raise ValueError(f"`bandwidth`={bandwidth!r} kbps is not one of this model's bandwidths {self.bandwidths}.")


# ---------------------------------------------------------------------------------------------------------------------
# Older config.json formats. The generations of the proposed transformers integration (A oldest to E, the format of
# record) and hf_vocos before it adopted E's names differ in these fields:
#   input width   A-C, hf_vocos: input_channels      D: n_mels (also for EnCodec)      E: n_mels / codebook_dim
#   width, FFN    A-B: hidden_dim, intermediate_dim  C-E, hf_vocos: hidden_size, intermediate_size
#   layers        hf_vocos: num_hidden_layers        A-E: num_layers
#   ISTFT padding A-B: spec_padding                  C-E, hf_vocos: istft_padding
#   rate          B-C, hf_vocos: sampling_rate       E: sample_rate
#   variant       A-D, hf_vocos: use_adaptive_norm (+ bandwidths)   E: model_type vocos_encodec
#   codebooks     hf_vocos: num_codebooks (codebooks)               E: num_quantizers (rows)
# B-D write `bandwidths` for mel models too, with use_adaptive_norm false: those are mel models.

_RENAMED_FIELDS = {
    "hidden_dim": "hidden_size",
    "intermediate_dim": "intermediate_size",
    "num_hidden_layers": "num_layers",
    "spec_padding": "istft_padding",
    "sampling_rate": "sample_rate",
}
# Fields of older formats with nothing to set: A's count of norm rows (= len(bandwidths)), its nested EnCodec config
# and training flag (the EnCodec model is the processor's), hf_vocos's `input_kernel_size` (checked below).
_DROPPED_FIELDS = ("num_bandwidths", "encodec_config", "train_codebooks", "input_kernel_size")


def describes_encodec_model(config: dict[str, Any]) -> bool:
    """Whether a config dict (any format) describes the EnCodec variant: E's model_type, or an older format's
    bandwidth-conditioned norms or codebook table."""
    if config.get("model_type") in ("vocos_encodec", "vocos_with_encodec"):
        return True
    if config.get("model_type") not in (None, "vocos"):
        return False
    if "use_adaptive_norm" in config:  # (B-D write bandwidths for mel models too, with use_adaptive_norm false)
        return bool(config["use_adaptive_norm"])
    return config.get("num_codebooks") is not None or config.get("bandwidths") is not None


def legacy_config_fields(fields: dict[str, Any], encodec: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split config fields into current ones mapped from older names, and the rest (passed on as given). An entry
    `_encodec: True` says the older fields describe an EnCodec model. Raises `ValueError` for older values that have
    no equivalent."""
    fields = dict(fields)
    current: dict[str, Any] = {}
    for old, new in _RENAMED_FIELDS.items():
        if old in fields:
            current[new] = fields.pop(old)
    input_kernel_size = fields.get("input_kernel_size")
    kernel_size = fields.get("kernel_size", 7)
    if input_kernel_size is not None and input_kernel_size != kernel_size:
        raise ValueError(
            f"`input_kernel_size` ({input_kernel_size}) differs from `kernel_size` ({kernel_size}): the Hub format has "
            "one kernel size for the input and the depthwise convolutions, and so does every released Vocos."
        )
    for name in _DROPPED_FIELDS:
        fields.pop(name, None)
    if "input_channels" in fields:
        current["codebook_dim" if encodec else "n_mels"] = fields.pop("input_channels")
    num_codebooks = fields.pop("num_codebooks", None)
    if encodec:
        if num_codebooks is not None:
            current["num_quantizers"] = num_codebooks * fields.get("codebook_size", 1024)
    else:
        if describes_encodec_model({**fields, "num_codebooks": num_codebooks}):
            current["_encodec"] = True
        fields.pop("use_adaptive_norm", None)
        # A mel model's config of B-D lists the bandwidths anyway; hf_vocos wrote `bandwidths: null` and codebook
        # fields with their defaults.
        for name in ("bandwidths", "codebook_size", "codebook_dim"):
            if name in fields and not current.get("_encodec"):
                fields.pop(name)
    return current, fields


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"Vocos config: `{name}` must be a positive integer, got {value!r}.")
    return int(value)


def _positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"Vocos config: `{name}` must be a positive finite number, got {value!r}.")
    return float(value)
