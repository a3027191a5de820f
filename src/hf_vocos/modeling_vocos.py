"""Vocos: a ConvNeXt backbone predicts STFT magnitude and phase, an inverse STFT makes the waveform."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput, logging

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
            1 on the valid samples of each item, 0 on padding. [`VocosProcessor.batch_decode`] trims with it.
    """

    audio: torch.FloatTensor | None = None
    attention_mask: torch.Tensor | None = None


class VocosAdaptiveLayerNorm(nn.Module):
    """Layer norm without affine parameters followed by a scale and shift looked up by bandwidth index."""

    def __init__(self, num_embeddings: int, hidden_size: int, eps: float):
        super().__init__()
        self.eps = eps
        self.hidden_size = hidden_size
        self.scale = nn.Embedding(num_embeddings, hidden_size)
        self.shift = nn.Embedding(num_embeddings, hidden_size)

    def forward(self, hidden_states: torch.Tensor, bandwidth_id: torch.Tensor) -> torch.Tensor:
        # hidden_states: (batch, frames, hidden); bandwidth_id: (1,) -> scale and shift (1, hidden) broadcast.
        hidden_states = nn.functional.layer_norm(hidden_states, (self.hidden_size,), eps=self.eps)
        return hidden_states * self.scale(bandwidth_id) + self.shift(bandwidth_id)


def _make_norm(config: VocosConfig) -> nn.Module:
    if config.use_adaptive_norm:
        return VocosAdaptiveLayerNorm(len(config.bandwidths), config.hidden_size, eps=config.layer_norm_eps)
    return nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


def _apply_norm(norm: nn.Module, hidden_states: torch.Tensor, bandwidth_id: torch.Tensor | None) -> torch.Tensor:
    if isinstance(norm, VocosAdaptiveLayerNorm):
        return norm(hidden_states, bandwidth_id)
    return norm(hidden_states)


class VocosConvNeXtBlock(GradientCheckpointingLayer):
    """ConvNeXt block on a 1-D sequence: depthwise conv -> norm -> Linear -> activation -> Linear -> layer scale,
    plus the residual."""

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
        self.pwconv2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.gamma = nn.Parameter(torch.full((config.hidden_size,), config.layer_scale_init_value))

    def forward(
        self,
        hidden_states: torch.Tensor,
        frame_mask: torch.Tensor | None = None,
        bandwidth_id: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if frame_mask is not None:
            # Zero the padded frames so the convolution sees what a solo item sees: zero padding past its end.
            hidden_states = hidden_states * frame_mask
        residual = hidden_states
        hidden_states = self.dwconv(hidden_states)
        hidden_states = hidden_states.transpose(1, 2)  # (batch, hidden, frames) -> (batch, frames, hidden)
        hidden_states = _apply_norm(self.norm, hidden_states, bandwidth_id)
        hidden_states = self.pwconv2(self.act(self.pwconv1(hidden_states)))
        hidden_states = self.gamma * hidden_states
        hidden_states = hidden_states.transpose(1, 2)  # (batch, frames, hidden) -> (batch, hidden, frames)
        return residual + hidden_states


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
        """features: (batch, channels, frames); frame_mask: (batch, 1, frames) or None. Returns (batch, frames,
        hidden)."""
        if frame_mask is not None:
            features = features * frame_mask
        hidden_states = self.embed(features)
        hidden_states = _apply_norm(self.norm, hidden_states.transpose(1, 2), bandwidth_id).transpose(1, 2)
        for block in self.convnext:
            hidden_states = block(hidden_states, frame_mask, bandwidth_id)
        return self.final_layer_norm(hidden_states.transpose(1, 2))


class VocosISTFT(nn.Module):
    """Inverse STFT by overlap-add, normalised per item by the summed squared window of that item's own frames.

    `"center"` equals `torch.istft(center=True)`; `"same"` trims `(n_fft - hop_length) // 2` samples on each side
    (the original's custom ISTFT). With a frame mask, padded frames contribute neither signal nor window energy,
    so each item of a ragged batch gets the audio it gets alone.
    """

    def __init__(self, config: VocosConfig):
        super().__init__()
        self.n_fft = config.n_fft
        self.hop_length = config.hop_length
        self.win_length = config.win_length
        self.padding = config.istft_padding
        # Derived from the config, so not saved; `_init_weights` refills it after a meta-device load.
        self.register_buffer("window", self.make_window(), persistent=False)

    def make_window(self) -> torch.Tensor:
        """Periodic Hann window of `win_length`, zero-padded to `n_fft` on both sides (as `torch.istft` does)."""
        window = torch.hann_window(self.win_length, periodic=True)
        left = (self.n_fft - self.win_length) // 2
        return nn.functional.pad(window, (left, self.n_fft - self.win_length - left))

    @property
    def trim(self) -> int:
        """Samples removed at the start (and end) of the overlap-added signal."""
        return self.n_fft // 2 if self.padding == "center" else (self.n_fft - self.hop_length) // 2

    def num_samples(self, num_frames: int | torch.Tensor) -> int | torch.Tensor:
        """Output samples for `num_frames` frames."""
        return (num_frames - 1) * self.hop_length + self.n_fft - 2 * self.trim

    def forward(self, spectrum: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """spectrum: complex (batch, n_fft // 2 + 1, frames); frame_mask: (batch, 1, frames) or None.
        Returns (batch, num_samples(frames))."""
        num_frames = spectrum.shape[-1]
        window = self.window
        if window.dtype != torch.float32:
            # The model was cast (e.g. to bfloat16), buffers included; the ISTFT runs in float32 with the exact window.
            window = self.make_window().to(window.device)
        frames = torch.fft.irfft(spectrum, n=self.n_fft, dim=1) * window[None, :, None]  # (batch, n_fft, frames)
        window_energy = window.square()[None, :, None].expand(1, -1, num_frames)
        if frame_mask is not None:
            frames = frames * frame_mask
            window_energy = window_energy * frame_mask  # (batch, n_fft, frames)
        full_length = (num_frames - 1) * self.hop_length + self.n_fft

        def overlap_add(columns: torch.Tensor) -> torch.Tensor:
            return nn.functional.fold(
                columns, output_size=(1, full_length), kernel_size=(1, self.n_fft), stride=(1, self.hop_length)
            )[:, 0, 0, self.trim : full_length - self.trim]

        audio = overlap_add(frames)
        envelope = overlap_add(window_energy)
        # Outside every item's valid span the envelope can be 0; those samples are padding and set to 0.
        covered = envelope > 1e-11
        return torch.where(covered, audio / torch.where(covered, envelope, 1.0), 0.0)


class VocosISTFTHead(nn.Module):
    """Linear projection to log-magnitude and phase, then the inverse STFT."""

    def __init__(self, config: VocosConfig):
        super().__init__()
        self.max_magnitude = config.max_magnitude
        self.out = nn.Linear(config.hidden_size, config.n_fft + 2)
        self.istft = VocosISTFT(config)

    def forward(self, hidden_states: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """hidden_states: (batch, frames, hidden). Returns float32 audio (batch, samples)."""
        # The spectrum and the ISTFT run in float32 whatever the model's dtype: the FFTs need it and it is cheap.
        projected = self.out(hidden_states).transpose(1, 2).float()  # (batch, n_fft + 2, frames)
        log_magnitude, phase = projected.chunk(2, dim=1)
        magnitude = torch.exp(log_magnitude).clip(max=self.max_magnitude)
        spectrum = torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
        return self.istft(spectrum, frame_mask)


class VocosCodebookEmbedding(nn.Module):
    """The EnCodec codebooks, concatenated into one table: features are the sum over codebooks of the entries the
    codes pick (codebook k's entries start at row k * codebook_size)."""

    def __init__(self, config: VocosConfig):
        super().__init__()
        self.codebook_size = config.codebook_size
        self.weight = nn.Parameter(torch.empty(config.num_codebooks * config.codebook_size, config.codebook_dim))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: (num_quantizers, batch, frames) integers. Returns (batch, codebook_dim, frames)."""
        offsets = torch.arange(codes.shape[0], device=codes.device) * self.codebook_size
        embeddings = nn.functional.embedding(codes + offsets[:, None, None], self.weight)
        return embeddings.sum(dim=0).transpose(1, 2)


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
        bandwidth_id = self._bandwidth_id(bandwidth)
        frame_mask = self._check_attention_mask(attention_mask, features)

        hidden_states = self.backbone(features, frame_mask, bandwidth_id)
        audio = self.head(hidden_states, frame_mask)

        if frame_mask is None:
            sample_mask = torch.ones(audio.shape, dtype=torch.int32, device=audio.device)
        else:
            num_samples = self.head.istft.num_samples(frame_mask.sum(dim=(1, 2)).long())
            sample_mask = (torch.arange(audio.shape[-1], device=audio.device)[None, :] < num_samples[:, None]).int()
            audio = audio * sample_mask
        if not return_dict:
            return audio, sample_mask
        return VocosOutput(audio=audio, attention_mask=sample_mask)

    def codes_to_features(self, codes: torch.Tensor, bandwidth: float | torch.Tensor) -> torch.Tensor:
        """Embed EnCodec `codes` `(num_quantizers, batch, frames)` (or `(num_quantizers, frames)`) into backbone input
        features `(batch, codebook_dim, frames)`: the sum of each codebook's entry. Validates the codes against
        `bandwidth`."""
        if self.codebook_embedding is None:
            raise ValueError(
                "`codes` were given, but this is a mel model (config.bandwidths is None): pass `input_features` "
                "(log-mel from VocosFeatureExtractor) instead, or load an EnCodec Vocos checkpoint."
            )
        if bandwidth is None:
            raise ValueError(f"`bandwidth` is required with `codes`: one of {self.config.bandwidths} kbps.")
        bandwidth = _bandwidth_value(bandwidth)
        self.config.bandwidth_index(bandwidth)
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
        expected = self.config.num_quantizers_for_bandwidth(bandwidth)
        if codes.shape[0] != expected:
            raise ValueError(
                f"`codes` has {codes.shape[0]} codebooks, but {bandwidth:g} kbps uses {expected}: codes shape must be "
                f"({expected}, batch, frames)."
            )
        if codes.shape[-1] == 0:
            raise ValueError("`codes` has 0 frames; expected at least one frame.")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.config.codebook_size):
            raise ValueError(
                f"`codes` values must lie in [0, {self.config.codebook_size}), got values in "
                f"[{int(codes.min())}, {int(codes.max())}]."
            )
        codes = codes.to(device=self.codebook_embedding.weight.device, dtype=torch.long)
        return self.codebook_embedding(codes)

    def _bandwidth_id(self, bandwidth) -> torch.Tensor | None:
        if bandwidth is None:
            if self.config.use_adaptive_norm:
                raise ValueError(
                    f"`bandwidth` is required for this model: one of {self.config.bandwidths} kbps "
                    "(it picks the codebook count and the bandwidth-conditioned norms)."
                )
            return None
        bandwidth = _bandwidth_value(bandwidth)
        index = self.config.bandwidth_index(bandwidth)
        if not self.config.use_adaptive_norm:
            return None
        return torch.tensor([index], device=self.device)

    def _check_features(self, input_features) -> torch.Tensor:
        if isinstance(input_features, np.ndarray):
            input_features = torch.from_numpy(input_features)
        if not isinstance(input_features, torch.Tensor):
            raise TypeError(f"`input_features` must be a torch.Tensor, got {type(input_features).__name__}.")
        if not input_features.is_floating_point():
            raise TypeError(f"`input_features` must be a floating-point tensor, got dtype {input_features.dtype}.")
        if input_features.dim() == 2:
            input_features = input_features[None]
        channels = self.config.input_channels
        if input_features.dim() != 3 or input_features.shape[1] != channels:
            raise ValueError(
                f"`input_features` must have shape (batch, {channels}, frames) or ({channels}, frames), got "
                f"{tuple(input_features.shape)}."
            )
        if input_features.shape[-1] == 0:
            raise ValueError("`input_features` has 0 frames; expected at least one frame.")
        if not torch.isfinite(input_features).all():
            raise ValueError("`input_features` contains NaN or infinite values; expected finite features.")
        return input_features.to(device=self.device, dtype=self.dtype)

    def _check_attention_mask(self, attention_mask, features: torch.Tensor) -> torch.Tensor | None:
        """Validate a right-padding frame mask; returns it as (batch, 1, frames) in the features' dtype."""
        if attention_mask is None:
            return None
        if isinstance(attention_mask, np.ndarray):
            attention_mask = torch.from_numpy(attention_mask)
        if not isinstance(attention_mask, torch.Tensor):
            raise TypeError(f"`attention_mask` must be a torch.Tensor, got {type(attention_mask).__name__}.")
        batch_size, _, num_frames = features.shape
        if attention_mask.dim() == 1 and batch_size == 1:
            attention_mask = attention_mask[None]
        if tuple(attention_mask.shape) != (batch_size, num_frames):
            raise ValueError(
                f"`attention_mask` must have shape (batch, frames) = ({batch_size}, {num_frames}), got "
                f"{tuple(attention_mask.shape)}."
            )
        attention_mask = attention_mask.to(features.device)
        lengths = (attention_mask != 0).sum(dim=1)
        prefix = torch.arange(num_frames, device=features.device)[None, :] < lengths[:, None]
        if not torch.equal(prefix, attention_mask != 0):
            raise ValueError(
                "`attention_mask` must mark each item's valid frames as a prefix of ones followed by zeros "
                "(right padding)."
            )
        if int(lengths.min()) == 0:
            raise ValueError("`attention_mask` has an item with no valid frame; every item needs at least one frame.")
        return prefix[:, None, :].to(features.dtype)


def _bandwidth_value(bandwidth) -> float:
    if isinstance(bandwidth, (torch.Tensor, np.ndarray)):
        if bandwidth.size != 1 if isinstance(bandwidth, np.ndarray) else bandwidth.numel() != 1:
            raise ValueError(f"`bandwidth` must be a single number (kbps), got an array of shape {tuple(bandwidth.shape)}.")
        bandwidth = bandwidth.item()
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, numbers.Real) or not math.isfinite(bandwidth):
        raise TypeError(f"`bandwidth` must be a number in kbps (e.g. 6.0), got {bandwidth!r}.")
    return float(bandwidth)
