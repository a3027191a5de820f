"""Vocos: a ConvNeXt backbone predicts STFT magnitude and phase, an inverse STFT makes the waveform.

The modules carry the names of the checkpoints on the Hub (`embed`, `norm`, `layers.N`, `final_layer_norm`,
`decoder.out`, `decoder.window`, and `codebook_weights` for the EnCodec variant). This file is the plain model: its
eager path is the training path and the reference for every faster one. Faster implementations of inference (tiled
CPU inference on packed weights, fewer kernels on accelerators, the ONNX-exportable graph) live in
`inference_vocos.py`, chosen in one place, `VocosModel.inference_implementation`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch
from safetensors import SafetensorError
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput, logging

from .checkpoint_formats import (
    HUB_KWARGS,
    KEY_MAPPING,
    check_checkpoint_location,
    check_loaded_weights,
    check_mel_buffers,
    configs_from_original,
    find_original_checkpoint,
    load_original_state_dict,
    loaded_keys,
    read_original_config,
    referenced_codebook_table,
    rename_weights,
)
from .configuration_vocos import VocosConfig, VocosEncodecConfig
from .feature_extraction_vocos import check_save_directory, no_data
from .inference_vocos import (
    IMPLEMENTATIONS,
    InferenceImplementation,
    check_finite_audio,
    is_tracing,
    sample_mask,
    select_implementation,
)
from .streaming_vocos import VocosStreamingDecoder, decode_chunked, stream

logger = logging.get_logger(__name__)

__all__ = [
    "VocosEncodecModel",
    "VocosEncodecOutput",
    "VocosEncodecPreTrainedModel",
    "VocosModel",
    "VocosOutput",
    "VocosPreTrainedModel",
    "VocosStreamingDecoder",
]


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


@dataclass
class VocosEncodecOutput(VocosOutput):
    """Output of [`VocosEncodecModel`]: as [`VocosOutput`]."""


def conv_time_major(hidden_states: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """Apply a "same"-padded `nn.Conv1d` to (batch, frames, channels), returning (batch, frames, out_channels).

    The input is viewed as a channels-last (batch, channels, 1, frames) image, so the convolution runs in that layout
    (oneDNN and cuDNN support it natively) and its channels-last output is the (batch, frames, channels) result: no
    transposing copies. The weights stay those of the `nn.Conv1d`."""
    image = hidden_states.transpose(1, 2).unsqueeze(2)
    output = nn.functional.conv2d(
        image, conv.weight.unsqueeze(2), conv.bias, padding=(0, conv.padding[0]), groups=conv.groups
    )
    return output.squeeze(2).transpose(1, 2)


class VocosLayerNorm(nn.LayerNorm):
    """A layer norm that takes (and ignores) a bandwidth row, so that a block calls either norm the same way."""

    def forward(self, hidden_states: torch.Tensor, bandwidth_id: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(hidden_states)


class VocosAdaptiveLayerNorm(nn.Module):
    """Layer norm whose weight and bias are rows of a table, picked by the bandwidth: `weight` and `bias` are
    `(num_bandwidths, hidden_size)`."""

    def __init__(self, config: VocosEncodecConfig):
        super().__init__()
        self.eps = config.layer_norm_eps
        self.hidden_size = config.hidden_size
        self.weight = nn.Parameter(torch.ones(len(config.bandwidths), config.hidden_size))
        self.bias = nn.Parameter(torch.zeros(len(config.bandwidths), config.hidden_size))

    def forward(self, hidden_states: torch.Tensor, bandwidth_id: torch.Tensor) -> torch.Tensor:
        # hidden_states: (batch, frames, hidden); bandwidth_id: (1,), one bandwidth for the call. Its rows are the
        # layer norm's affine weight and bias: one fused kernel instead of a norm, a product and a sum.
        row = bandwidth_id.to(self.weight.device)
        weight, bias = self.weight.index_select(0, row)[0], self.bias.index_select(0, row)[0]
        return nn.functional.layer_norm(hidden_states, (self.hidden_size,), weight=weight, bias=bias, eps=self.eps)


def make_norm(config: VocosConfig) -> nn.Module:
    if config.use_adaptive_norm:
        return VocosAdaptiveLayerNorm(config)
    return VocosLayerNorm(config.hidden_size, eps=config.layer_norm_eps)


class VocosConvNeXtBlock(GradientCheckpointingLayer):
    """ConvNeXt block on a 1-D sequence: depthwise convolution -> norm -> Linear -> activation -> Linear -> layer
    scale, plus the residual. Works on (batch, frames, hidden)."""

    def __init__(self, config: VocosConfig):
        super().__init__()
        self.dwconv = nn.Conv1d(
            config.hidden_size,
            config.hidden_size,
            kernel_size=config.kernel_size,
            padding=config.padding,
            groups=config.hidden_size,
        )
        self.norm = make_norm(config)
        self.pwconv1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act_fn = ACT2FN[config.hidden_act]
        self.pwconv2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.layer_scale_parameter = nn.Parameter(torch.full((config.hidden_size,), config.layer_scale_init_value))

    def forward(
        self,
        hidden_states: torch.Tensor,
        bandwidth_id: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """hidden_states (batch, frames, hidden) -> same shape. `frame_mask` (batch, frames, 1) zeroes padded frames
        first, so the convolution sees what a lone item sees: zeros past its end."""
        if frame_mask is not None:
            hidden_states = hidden_states * frame_mask
        residual = hidden_states
        hidden_states = conv_time_major(hidden_states, self.dwconv)
        hidden_states = self.norm(hidden_states, bandwidth_id)
        hidden_states = self.pwconv2(self.act_fn(self.pwconv1(hidden_states)))
        return torch.addcmul(residual, self.layer_scale_parameter, hidden_states)


# Window energy below which a sample counts as covered by no frame (it becomes 0 instead of being divided).
ENVELOPE_FLOOR = 1e-11


class VocosISTFTHead(nn.Module):
    """Linear projection to log-magnitude and phase, then the inverse STFT: irfft of each frame, the window, an
    overlap-add normalised by the summed squared window of the frames present, and a trim.

    `"center"` equals `torch.istft(center=True)`; `"same"` trims `(n_fft - hop_length) // 2` samples on each side
    (the original's custom ISTFT). With a frame mask, padded frames contribute neither signal nor window energy, so
    each item of a ragged batch gets the audio it gets alone. The steps are public for streaming and the faster
    implementations: `spectrum`, `frames`, `overlap_add`, `window_envelope`, `normalize`, `synthesize`."""

    def __init__(self, config: VocosConfig):
        super().__init__()
        self.n_fft = config.n_fft
        self.hop_length = config.hop_length
        self.win_length = config.win_length
        self.trim = config.istft_trim
        self.max_magnitude = config.max_magnitude
        self.out = nn.Linear(config.hidden_size, config.n_fft + 2)
        # The periodic Hann window of `win_length`, saved with the weights (the Hub's format) though derived from the
        # config: it is rebuilt on load.
        self.register_buffer("window", self.make_window(), persistent=True)

    def make_window(self) -> torch.Tensor:
        return torch.hann_window(self.win_length, periodic=True)

    def fft_window(self) -> torch.Tensor:
        """The float32 window zero-padded to `n_fft` on both sides (as `torch.istft` pads it); rebuilt exactly if the
        model was cast to a half-precision dtype (the inverse STFT runs in float32)."""
        window = self.window if self.window.dtype == torch.float32 else self.make_window().to(self.window.device)
        left = (self.n_fft - self.win_length) // 2
        return nn.functional.pad(window, (left, self.n_fft - self.win_length - left))

    def spectrum(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, frames, hidden) -> real and imaginary parts (batch, frames, n_fft // 2 + 1), in float32 whatever
        the model's dtype: the inverse STFT needs it and it is cheap."""
        log_magnitude, phase = self.out(hidden_states).float().chunk(2, dim=-1)
        magnitude = torch.exp(log_magnitude).clip(max=self.max_magnitude)
        return magnitude * torch.cos(phase), magnitude * torch.sin(phase)

    def frames(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, frames, hidden) -> windowed time frames (batch, frames, n_fft), float32, zero on masked frames."""
        real, imag = self.spectrum(hidden_states)
        frames = torch.fft.irfft(torch.complex(real, imag), n=self.n_fft, dim=-1) * self.fft_window()
        return frames if frame_mask is None else frames * frame_mask

    def overlap_add(self, frames: torch.Tensor) -> torch.Tensor:
        """Sum frames (batch, frames, n_fft) placed `hop_length` apart: (batch, (frames - 1) * hop_length + n_fft)."""
        batch_size, num_frames, _ = frames.shape
        length = (num_frames - 1) * self.hop_length + self.n_fft
        folded = nn.functional.fold(
            frames.transpose(1, 2), output_size=(1, length), kernel_size=(1, self.n_fft), stride=(1, self.hop_length)
        )
        return folded.reshape(batch_size, length)

    def window_envelope(self, frame_mask: torch.Tensor | None, num_frames: int) -> torch.Tensor:
        """The overlap-added squared window of the frames present: (batch or 1, (frames - 1) * hop_length + n_fft)."""
        square = self.fft_window().square()
        presence = frame_mask if frame_mask is not None else square.new_ones(1, num_frames, 1)
        return self.overlap_add(presence.float() * square)

    @staticmethod
    def normalize(audio: torch.Tensor, envelope: torch.Tensor) -> torch.Tensor:
        """Divide by the window envelope; samples no frame covers (padding) become 0."""
        covered = envelope > ENVELOPE_FLOOR
        return torch.where(covered, audio / torch.where(covered, envelope, 1.0), 0.0)

    def synthesize(self, frames: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Windowed frames (batch, frames, n_fft), zero where masked -> audio (batch, config.num_samples(frames)):
        overlap-add, trim, and divide by the window envelope of the frames present."""
        audio = self.overlap_add(frames)
        envelope = self.window_envelope(frame_mask, frames.shape[1])
        end = audio.shape[-1] - self.trim
        return self.normalize(audio[:, self.trim : end], envelope[:, self.trim : end])

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """hidden_states: (batch, frames, hidden); frame_mask: (batch, frames, 1) or None. Returns float32 audio
        (batch, samples)."""
        return self.synthesize(self.frames(hidden_states, frame_mask), frame_mask)


class VocosPreTrainedModel(PreTrainedModel):
    config_class = VocosConfig
    base_model_prefix = "vocos"
    main_input_name = "input_features"
    supports_gradient_checkpointing = True
    _no_split_modules = ["VocosConvNeXtBlock"]
    # Rebuilt from the config on load (older formats saved it at other lengths, or not at all); written on save.
    _keys_to_ignore_on_load_missing = [r"^decoder\.window$"]

    def save_pretrained(self, save_directory, *args, **kwargs):
        check_save_directory(save_directory)
        return super().save_pretrained(save_directory, *args, **kwargs)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            init.trunc_normal_(module.weight, std=self.config.initializer_range)
            init.zeros_(module.bias)
        elif isinstance(module, (nn.LayerNorm, VocosAdaptiveLayerNorm)):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, VocosConvNeXtBlock):
            init.constant_(module.layer_scale_parameter, self.config.layer_scale_init_value)
        elif isinstance(module, VocosISTFTHead):
            init.copy_(module.window, module.make_window())
        elif isinstance(module, VocosEncodecModel):
            init.normal_(module.codebook_weights, std=1.0)


class VocosModel(VocosPreTrainedModel):
    r"""
    The Vocos vocoder: log-mel features in, a waveform out, in one forward pass. [`VocosEncodecModel`] is the variant
    that decodes EnCodec codes; `VocosModel.from_pretrained` on an EnCodec checkpoint returns one.

    Inference runs through one switch, [`~VocosModel.inference_implementation`]: `"auto"` (the default) picks the
    fastest implementation that is correct for the call (docs/index.md, "Performance"); `"eager"` is this file's
    plain path.
    """

    def __init__(self, config: VocosConfig):
        super().__init__(config)
        self.embed = nn.Conv1d(
            config.input_channels, config.hidden_size, kernel_size=config.kernel_size, padding=config.padding
        )
        self.norm = make_norm(config)
        self.layers = nn.ModuleList([VocosConvNeXtBlock(config) for _ in range(config.num_layers)])
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = VocosISTFTHead(config)
        self._inference_implementation = "auto"
        self.post_init()

    # ---- the one switch -------------------------------------------------------------------------------------------

    @property
    def inference_implementation(self) -> str:
        """Which implementation runs inference: `"auto"` (default: the fastest one that is correct on the device at
        hand, see `inference_vocos.select_implementation`), `"eager"` (the plain modules of this file), `"cpu_tiled"`
        (tiles of frames, packed oneDNN weights where the CPU runs them), `"accelerator"` (fewest kernels, for GPUs) or
        `"onnx"` (the exportable graph). A runtime setting: not saved with the model. A forced fast path still steps
        aside to eager where it cannot run: with autograd, under torch.compile or export, or on another device type.
        Every implementation gives the eager audio to float32 rounding."""
        return self._inference_implementation

    @inference_implementation.setter
    def inference_implementation(self, name: str | InferenceImplementation) -> None:
        if not isinstance(name, InferenceImplementation) and (
            not isinstance(name, str) or name not in ("auto", *IMPLEMENTATIONS)
        ):
            raise ValueError(
                f"`inference_implementation` must be one of {['auto', *IMPLEMENTATIONS]} (or an "
                "InferenceImplementation "
                f"instance, e.g. CPUTiledImplementation(tile_frames=512)), got {name!r}."
            )
        self._inference_implementation = name

    def implementation_for(self, tensor: torch.Tensor):
        """The implementation that runs inference on `tensor` (features or hidden states) now."""
        return select_implementation(self, tensor)

    # ---- loading --------------------------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        r"""
        Load a model from a folder or Hub repository, in any format a Vocos checkpoint has been published in:

        - the Hub's current format (what `save_pretrained` writes), model type `vocos` or `vocos_encodec`;
        - the earlier formats of the proposed transformers integration and of hf_vocos before it: their weights are
          renamed at load time (`KEY_MAPPING`, with transformers' key renaming), their config
          fields mapped; an EnCodec checkpoint without a codebook table takes it from the EnCodec model it names;
        - the original `vocos` format (`config.yaml` + `pytorch_model.bin`), converted on the fly with a log line.

        An EnCodec checkpoint gives a [`VocosEncodecModel`], whichever class is asked. Weights that are missing,
        unexpected or of the wrong shape raise a `ValueError` naming them (random weights would make noise).
        `inference_implementation=...` sets [`~VocosModel.inference_implementation`].
        """
        implementation = kwargs.pop("inference_implementation", "auto")
        if not (pretrained_model_name_or_path is None and "config" in kwargs):
            check_checkpoint_location(pretrained_model_name_or_path, kwargs.get("subfolder"))
        if pretrained_model_name_or_path is None or model_args:
            model = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
            model.inference_implementation = implementation
            return model
        hub_kwargs = {key: kwargs[key] for key in HUB_KWARGS if key in kwargs}
        original = find_original_checkpoint(pretrained_model_name_or_path, **hub_kwargs)
        if original is not None:
            model = cls._from_original(pretrained_model_name_or_path, *original, **kwargs)
        else:
            model = cls._from_hub_format(pretrained_model_name_or_path, hub_kwargs, **kwargs)
        (model[0] if isinstance(model, tuple) else model).inference_implementation = implementation
        return model

    @classmethod
    def _from_hub_format(cls, name_or_path, hub_kwargs: dict, **kwargs):
        config = kwargs.pop("config", None)
        if isinstance(config, PreTrainedConfig):
            # (e.g. AutoModel's; for a checkpoint loaded with its code, another copy of this class)
            config_dict = config.to_dict()
            if not isinstance(config, VocosConfig):
                config = VocosConfig.from_dict(dict(config_dict))
        else:
            config_kwargs = {key: kwargs[key] for key in HUB_KWARGS if key in kwargs}
            config_dict, _ = VocosConfig.get_config_dict(config or name_or_path, **config_kwargs)
            config = VocosConfig.from_dict(dict(config_dict))
        model_class = VocosEncodecModel if config.is_codes_model else VocosModel
        if cls not in (VocosModel, VocosEncodecModel) and issubclass(cls, model_class):
            model_class = cls  # a user's subclass
        output_loading_info = kwargs.pop("output_loading_info", False)
        # (mismatched shapes are collected rather than raised, so that the refusal names every problem at once)
        kwargs.setdefault("ignore_mismatched_sizes", True)
        try:
            model, info = super(VocosModel, model_class).from_pretrained(
                name_or_path, config=config, key_mapping=KEY_MAPPING, output_loading_info=True, **kwargs
            )
        except SafetensorError as error:
            raise ValueError(
                f"{name_or_path}: its weights file (model.safetensors) is corrupt or truncated ({error}). Download "
                "it again: from_pretrained(..., force_download=True), or delete it from the Hub cache."
            ) from None
        checkpoint_keys = loaded_keys(info, model)
        if config.is_codes_model and "codebook_weights" in info.get("missing_keys", ()):
            # Any other misfit first: a mel checkpoint under an EnCodec model type is not a missing codebook table.
            others = {**info, "missing_keys": [key for key in info["missing_keys"] if key != "codebook_weights"]}
            check_loaded_weights(model, others, str(name_or_path), checkpoint_keys, config_dict)
            # Generations B-D kept no codebook table: it is the referenced EnCodec model's codebooks.
            table = referenced_codebook_table(config, name_or_path, hub_kwargs)
            with torch.no_grad():
                model.codebook_weights.copy_(table.to(model.codebook_weights.dtype))
            info["missing_keys"] = [key for key in info["missing_keys"] if key != "codebook_weights"]
        check_loaded_weights(model, info, str(name_or_path), checkpoint_keys, config_dict)
        model._finish_loading(str(name_or_path))
        return (model, info) if output_loading_info else model

    @classmethod
    def _from_original(cls, name_or_path, config_path, weights_path, **kwargs):
        logger.warning(
            f"{name_or_path} is an original Vocos checkpoint (config.yaml + pytorch_model.bin): converting it on the "
            "fly. model.save_pretrained(folder) keeps the converted model."
        )
        config, extractor = configs_from_original(read_original_config(config_path))
        state_dict = load_original_state_dict(weights_path)
        check_mel_buffers(state_dict, extractor, str(weights_path))
        model = (VocosEncodecModel if config.is_codes_model else VocosModel)(config)
        model.load_checked(rename_weights(state_dict), str(weights_path), state_dict.keys())
        dtype = kwargs.get("dtype", kwargs.get("torch_dtype"))
        if dtype not in (None, "auto"):
            model.to(getattr(torch, dtype) if isinstance(dtype, str) else dtype)
        device = kwargs.get("device_map")
        if isinstance(device, (str, torch.device, int)) and device != "auto":
            model.to(device)
        return model.eval()

    def load_checked(self, weights: dict[str, torch.Tensor], source: str, checkpoint_keys=None) -> None:
        """Load a state dict under the current names (`rename_weights`), refusing missing,
        unexpected or wrong-shaped weights with a ValueError that names them; the window is rebuilt."""
        expected = self.state_dict()
        mismatched = [
            (key, tuple(value.shape), tuple(expected[key].shape))
            for key, value in weights.items()
            if key in expected and tuple(value.shape) != tuple(expected[key].shape)
        ]
        info = {
            "missing_keys": sorted(set(expected) - set(weights)),
            "unexpected_keys": sorted(set(weights) - set(expected)),
            "mismatched_keys": mismatched,
        }
        check_loaded_weights(self, info, source, checkpoint_keys or weights.keys())
        fitting = {key: value for key, value in weights.items() if key not in {m[0] for m in mismatched}}
        self.load_state_dict({key: value.to(expected[key].dtype) for key, value in fitting.items()}, strict=False)
        self._finish_loading(source)

    def _finish_loading(self, source: str) -> None:
        """Refuse weights that hold NaN or infinite values (a corrupt file: the audio would be garbage). What an older
        format may have saved differently, or not at all, is rebuilt from the config; and saving writes the current
        names: transformers would otherwise undo the load's renaming on save (it keeps a loaded checkpoint's layout),
        writing the older format back."""
        corrupt = [
            name
            for name, tensor in self.state_dict().items()
            if tensor.is_floating_point() and not tensor.is_meta and not bool(torch.isfinite(tensor).all())
        ]
        if corrupt:
            raise ValueError(
                f"{source}: the checkpoint is corrupt: {len(corrupt)} weight tensors hold NaN or infinite values "
                f"({', '.join(corrupt[:6])}{' ...' if len(corrupt) > 6 else ''}). Download or export it again."
            )
        self._weight_conversions = None
        with torch.no_grad():
            window = self.decoder.make_window()
            if tuple(self.decoder.window.shape) != tuple(window.shape):
                self.decoder.window = window.to(self.decoder.window.device)
            else:
                self.decoder.window.copy_(window)
        self.eval()

    # ---- forward --------------------------------------------------------------------------------------------------

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
            input_features (`torch.FloatTensor` of shape `(batch_size, input_channels, frames)`):
                Log-mel features from [`VocosFeatureExtractor`] (mel model), or codebook-embedding features (EnCodec
                model, see [`~VocosEncodecModel.codes_to_features`]); `(input_channels, frames)` is one item.
            codes (`torch.LongTensor` of shape `(num_quantizers, batch_size, frames)` or `(num_quantizers, frames)`):
                EnCodec codes ([`VocosEncodecModel`] only). `num_quantizers` must be the number `bandwidth` uses.
            bandwidth (`float`, *optional*):
                Bandwidth in kbps, one of `config.bandwidths`: required by [`VocosEncodecModel`].
            attention_mask (`torch.Tensor` of shape `(batch_size, frames)`, *optional*):
                1 on valid frames, 0 on right padding. Each item then decodes exactly as it would alone.
            return_dict (`bool`, *optional*):
                Return a [`VocosOutput`] (default) or a tuple `(audio, attention_mask)`.

        Returns:
            [`VocosOutput`] with `audio` `(batch_size, samples)` and its sample-level `attention_mask`.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        features, frame_mask, bandwidth_id = self.prepare_inputs(input_features, codes, bandwidth, attention_mask)
        audio = self.implementation_for(features).decode(self, features, frame_mask, bandwidth_id)
        check_finite_audio(audio, features)
        mask = sample_mask(self.config, audio, None if frame_mask is None else frame_mask.sum(dim=(1, 2)))
        if frame_mask is not None:
            audio = audio * mask
        if not return_dict:
            return audio, mask
        return self._output_class(audio=audio, attention_mask=mask)

    _output_class = VocosOutput

    def decode_eager(
        self, features: torch.Tensor, frame_mask: torch.Tensor | None = None, bandwidth_id: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The plain path: features (batch, channels, frames) -> float32 audio (batch, samples)."""
        hidden_states = self.backbone(features, frame_mask, bandwidth_id)
        return self.decoder(hidden_states, frame_mask)

    def backbone(
        self, features: torch.Tensor, frame_mask: torch.Tensor | None = None, bandwidth_id: torch.Tensor | None = None
    ) -> torch.Tensor:
        """features (batch, channels, frames) -> hidden states (batch, frames, hidden): the input convolution and norm,
        the ConvNeXt blocks, the final norm (`stage` 0 to `num_layers + 1` in order)."""
        hidden_states = features.transpose(1, 2)  # (batch, channels, frames) -> (batch, frames, channels)
        for index in range(self.num_stages):
            hidden_states = self.stage(index, hidden_states, bandwidth_id, frame_mask)
        return hidden_states

    @property
    def num_stages(self) -> int:
        return len(self.layers) + 2

    def stage(
        self,
        index: int,
        hidden_states: torch.Tensor,
        bandwidth_id: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Stage `index` of the backbone on time-major frames (batch, frames, channels), zero-padded at their edges:
        0 is the input convolution and norm (input_channels -> hidden), 1 to `num_layers` the blocks, the last the
        final norm. The streaming decoder runs each on the new frames only."""
        if index == 0:
            if frame_mask is not None:
                hidden_states = hidden_states * frame_mask
            return self.norm(conv_time_major(hidden_states, self.embed), bandwidth_id)
        if index <= len(self.layers):
            return self.layers[index - 1](hidden_states, bandwidth_id, frame_mask)
        return self.final_layer_norm(hidden_states)

    @property
    def stage_radii(self) -> list[int]:
        """Frames of context each stage reads on each side of a frame: the input convolution, each block, then the
        final norm (0)."""
        return [self.embed.padding[0]] + [layer.dwconv.padding[0] for layer in self.layers] + [0]

    @property
    def receptive_radius(self) -> int:
        """Frames on each side that influence a frame: every convolution reaches `kernel_size // 2` further."""
        return sum(self.stage_radii)

    # ---- long and live inputs --------------------------------------------------------------------------------------

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
                `model.receptive_radius`. It does not change the output.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        audio, mask = decode_chunked(self, input_features, codes, bandwidth, attention_mask, chunk_size, context_frames)
        return self._output_class(audio=audio, attention_mask=mask) if return_dict else (audio, mask)

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
        return stream(self, chunks, bandwidth, context_frames)

    # ---- inputs ---------------------------------------------------------------------------------------------------

    def prepare_inputs(
        self,
        input_features: torch.Tensor | None = None,
        codes: torch.Tensor | None = None,
        bandwidth: float | torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Validate `forward`'s inputs and turn them into what the implementations take: features (batch, channels,
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
            features = check_features(self.config, input_features).to(device=self.device, dtype=self.dtype)
        bandwidth_id = self.bandwidth_id(bandwidth)
        mask = check_attention_mask(attention_mask, features.shape[0], features.shape[-1])
        frame_mask = None if mask is None else mask[:, :, None].to(device=features.device, dtype=features.dtype)
        return features, frame_mask, bandwidth_id

    def codes_to_features(self, codes: torch.Tensor, bandwidth: float | torch.Tensor) -> torch.Tensor:
        raise ValueError(
            "`codes` were given, but this is a mel model: pass `input_features` (log-mel from VocosFeatureExtractor) "
            "instead, or load an EnCodec Vocos checkpoint (VocosEncodecModel)."
        )

    def bandwidth_id(self, bandwidth: float | torch.Tensor | None) -> torch.Tensor | None:
        """The adaptive-norm row for `bandwidth` (kbps) as an int64 tensor `(1,)`, or None when the norms are not
        bandwidth-conditioned. Raises `ValueError` for a missing or unknown bandwidth. The tensor is on the CPU,
        whatever the model's device (reading it costs no device sync); while torch.compile or export traces the
        model, it is on the model's device, an input of the graph."""
        index = check_bandwidth(self.config, bandwidth)
        if index is None:
            return None
        return torch.tensor([index], device=self.device if is_tracing() else "cpu")


class VocosEncodecPreTrainedModel(VocosPreTrainedModel):
    config_class = VocosEncodecConfig
    base_model_prefix = "vocos_encodec"


class VocosEncodecModel(VocosModel, VocosEncodecPreTrainedModel):
    r"""
    Vocos decoding EnCodec codes: `model(codes=codes, bandwidth=6.0)`, or `model(input_features=embeddings,
    bandwidth=6.0)` with the codes' embeddings (what the Hub format's processor makes). The layer norms are
    conditioned on the bandwidth, and the model holds the codebook table `codebook_weights`: the first
    `config.num_codebooks` EnCodec codebooks, stacked.
    """

    config_class = VocosEncodecConfig
    base_model_prefix = "vocos_encodec"
    _output_class = VocosEncodecOutput

    def __init__(self, config: VocosEncodecConfig):
        super().__init__(config)
        # (registered after the parent's post_init, as the Hub format's own class does; random codebooks come from
        # `_init_weights` when a checkpoint lacks them, and `from_pretrained` fills them from EnCodec then)
        self.register_buffer(
            "codebook_weights", torch.zeros(config.num_quantizers, config.codebook_dim), persistent=True
        )

    def codes_to_features(self, codes: torch.Tensor, bandwidth: float | torch.Tensor) -> torch.Tensor:
        """Embed EnCodec `codes` `(num_quantizers, batch, frames)` (or `(num_quantizers, frames)`) into backbone input
        features `(batch, codebook_dim, frames)`: the sum of each codebook's entry. Validates the codes against
        `bandwidth`."""
        return self.embed_codes(check_codes(self.config, codes, bandwidth))

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """`codes_to_features` without the checks: int64 codes (num_quantizers, batch, frames) -> (batch,
        codebook_dim, frames) in the model's dtype."""
        codes = codes.to(self.codebook_weights.device)
        num_quantizers, batch_size, num_frames = codes.shape
        size = self.config.codebook_size
        offsets = torch.arange(0, num_quantizers * size, size, device=codes.device)
        # One bag of num_quantizers rows per frame, summed without materialising every embedding.
        rows = (codes + offsets[:, None, None]).permute(1, 2, 0).reshape(-1, num_quantizers)
        embeddings = nn.functional.embedding_bag(rows, self.codebook_weights, mode="sum")
        return embeddings.view(batch_size, num_frames, -1).transpose(1, 2).to(self.dtype)


# ---------------------------------------------------------------------------------------------------------------------
# Input checks, shared by the models and runtimes without one (the ONNX runner): each raises a ValueError/TypeError
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
    if not config.is_codes_model:
        raise ValueError("`bandwidth` was given, but this is a mel model (it takes no bandwidth); leave it out.")
    index = config.bandwidth_index(_bandwidth_value(bandwidth))
    return index if config.use_adaptive_norm else None


def check_codes(config: VocosConfig, codes, bandwidth) -> torch.Tensor:
    """Validate EnCodec codes for `bandwidth`; returns them as int64 (num_quantizers, batch, frames)."""
    if not config.is_codes_model:
        raise ValueError(
            "`codes` were given, but this is a mel model: pass `input_features` (log-mel from VocosFeatureExtractor) "
            "instead, or load an EnCodec Vocos checkpoint."
        )
    if bandwidth is None:
        raise ValueError(f"`bandwidth` is required with `codes`: one of {config.bandwidths} kbps.")
    # From here on, the model's own value for it (given within 1e-6).
    bandwidth = config.bandwidths[config.bandwidth_index(_bandwidth_value(bandwidth))]
    if isinstance(codes, np.ndarray):
        codes = torch.from_numpy(codes)
    if not isinstance(codes, torch.Tensor):
        raise TypeError(f"`codes` must be a torch.Tensor or numpy array of integers, got {type(codes).__name__}.")
    no_data(codes, "codes")
    if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise TypeError(f"`codes` must have an integer dtype (codebook indices), got {codes.dtype}.")
    if codes.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        # (uint16/32/64 hold codebook indices just as well, but few torch kernels take them)
        if codes.dtype == torch.uint64 and codes.numel() and not is_tracing():
            if int(codes.view(torch.int64).min()) < 0:  # a value at or above 2**63
                raise ValueError(f"`codes` values must lie in [0, {config.codebook_size}), got values above 2**63.")
        codes = codes.to(torch.int64)
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
    if codes.shape[1] == 0:
        raise ValueError(f"`codes` has a batch of 0 items (shape {tuple(codes.shape)}); expected at least one item.")
    if codes.numel() and not is_tracing():
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
    no_data(input_features, "input_features")
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
    if input_features.shape[0] == 0:
        raise ValueError(
            f"`input_features` has a batch of 0 items (shape {tuple(input_features.shape)}); expected at least one "
            "item."
        )
    # (Reading values is skipped while torch.compile or export traces the model: it would break the graph.)
    if not is_tracing() and not torch.isfinite(input_features).all():
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
    no_data(attention_mask, "attention_mask")
    if attention_mask.dim() == 1 and batch_size == 1:
        attention_mask = attention_mask[None]
    if tuple(attention_mask.shape) != (batch_size, num_frames):
        raise ValueError(
            f"`attention_mask` must have shape (batch, frames) = ({batch_size}, {num_frames}), got "
            f"{tuple(attention_mask.shape)}."
        )
    if attention_mask.is_floating_point() or attention_mask.is_complex():
        raise TypeError(
            f"`attention_mask` must hold 0/1 as a bool or integer tensor (1 on valid frames, 0 on right padding), "
            f"got dtype {attention_mask.dtype}."
        )
    lengths = (attention_mask != 0).sum(dim=1)
    prefix = torch.arange(num_frames, device=attention_mask.device)[None, :] < lengths[:, None]
    if is_tracing():
        return prefix
    if attention_mask.dtype != torch.bool:
        low, high = torch.stack(torch.aminmax(attention_mask.long())).tolist()
        if low < 0 or high > 1:
            raise ValueError(
                f"`attention_mask` must hold only 0 and 1 (1 on valid frames, 0 on right padding), got values in "
                f"[{low}, {high}]."
            )
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
            raise ValueError(
                f"`bandwidth` must be a single number (kbps), got an array of shape {tuple(bandwidth.shape)}."
            )
        bandwidth = bandwidth.item()
    # `abs(x) < inf` rather than `math.isfinite`: under `torch.compile(dynamic=True)` a float argument is a symbol,
    # which comparisons take and `math.isfinite` does not.
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, numbers.Real) or not abs(bandwidth) < math.inf:
        raise TypeError(f"`bandwidth` must be a number in kbps (e.g. 6.0), got {bandwidth!r}.")
    return float(bandwidth)
