"""Processor for Vocos: audio or EnCodec codes in, model inputs out; model outputs back to waveforms."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature, EncodecModel, ProcessorMixin
from transformers.processing_utils import AUDIO_TOKENIZER_KWARGS
from transformers.utils import logging

from .checkpoint_formats import (
    HUB_KWARGS,
    configs_from_original,
    find_original_checkpoint,
    read_original_config,
)
from .configuration_vocos import VocosConfig, describes_encodec_model
from .feature_extraction_vocos import (
    FEATURE_EXTRACTOR_ARGUMENTS,
    audio_to_float_list,
    check_sampling_rate,
    check_save_directory,
    no_data,
)

logger = logging.get_logger(__name__)

__all__ = ["VocosEncodecProcessor", "VocosProcessor"]

AUDIO_TOKENIZER_SUBFOLDER = "audio_tokenizer"
DEFAULT_ENCODEC_REPO = "facebook/encodec_24khz"


class _EncodecPointer:
    """What loading a processor makes of the Hub format's tokenizer reference ({"audio_tokenizer_class":
    "EncodecModel", "audio_tokenizer_name_or_path": ...}) instead of loading EnCodec at once: the processor loads it
    on first use, so decoding codes never needs it (nor the network)."""

    def __init__(self, name_or_path: str, hub_kwargs: dict):
        self.name_or_path = name_or_path
        self.hub_kwargs = hub_kwargs

    @classmethod
    def from_pretrained(cls, name_or_path, **kwargs):
        return cls(str(name_or_path), kwargs)


class VocosProcessor(ProcessorMixin):
    r"""
    Wraps a [`VocosFeatureExtractor`] and, for EnCodec checkpoints, an EnCodec audio tokenizer (transformers'
    [`EncodecModel`]) into one object that turns audio or codes into [`VocosModel`] inputs:

    - `processor(audio=x, sampling_rate=24000)`: log-mel `input_features` (mel checkpoints);
    - `processor(audio=x, bandwidth=6.0)`: EnCodec `codes` at that bandwidth (EnCodec checkpoints);
    - `processor(codes=c, bandwidth=6.0)`: codes you already have, batched and masked.

    so that `model(**processor(...))` works in every case. `batch_decode` turns the model's output back into a list of
    waveforms trimmed to their valid samples.

    Mel checkpoints have no audio tokenizer and never load EnCodec. For EnCodec checkpoints, `save_pretrained` writes
    the tokenizer's weights into the `audio_tokenizer/` subfolder, so the saved folder is self-contained (it can be
    moved or pushed), unless `encodec_name_or_path` names a Hub repository to load it from instead.

    Args:
        feature_extractor ([`VocosFeatureExtractor`]):
            The log-mel feature extractor; its `sampling_rate` is the rate audio must have.
        audio_tokenizer ([`EncodecModel`], *optional*):
            The EnCodec model that encodes audio to codes (EnCodec checkpoints only).
        encodec_name_or_path (`str`, *optional*):
            A Hub repository id holding the EnCodec model (e.g. `"facebook/encodec_24khz"`). When set, saving writes
            this reference instead of the weights; without `audio_tokenizer`, the model is loaded from it on first
            use.
    """

    def __init__(
        self,
        feature_extractor,
        audio_tokenizer: EncodecModel | None = None,
        encodec_name_or_path: str | None = None,
    ):
        super().__init__(feature_extractor)
        self._encodec_hub_kwargs = {}
        if isinstance(audio_tokenizer, _EncodecPointer):
            encodec_name_or_path, self._encodec_hub_kwargs = audio_tokenizer.name_or_path, audio_tokenizer.hub_kwargs
            audio_tokenizer = None
        if audio_tokenizer is not None and not isinstance(audio_tokenizer, EncodecModel):
            raise TypeError(
                f"`audio_tokenizer` must be a transformers EncodecModel, got {type(audio_tokenizer).__name__}."
            )
        if encodec_name_or_path is not None and not isinstance(encodec_name_or_path, str):
            raise TypeError(f"`encodec_name_or_path` must be a Hub repository id (str), got {encodec_name_or_path!r}.")
        self._audio_tokenizer = None
        self.encodec_name_or_path = encodec_name_or_path
        if audio_tokenizer is not None:
            self.audio_tokenizer = audio_tokenizer

    # The tokenizer is a whole model: it lives outside the attributes ProcessorMixin copies and serialises.
    @property
    def audio_tokenizer(self) -> EncodecModel | None:
        """The EnCodec model, loaded from `encodec_name_or_path` on first use if it was not given."""
        if self._audio_tokenizer is None and self.encodec_name_or_path is not None:
            try:
                model = EncodecModel.from_pretrained(self.encodec_name_or_path, **self._encodec_hub_kwargs)
            except OSError as error:
                reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
                raise OSError(
                    f"the EnCodec model {self.encodec_name_or_path!r} is needed to encode audio to codes, and it could "
                    f"not be loaded ({reason}). Get it into the Hub cache once, online: `hf download "
                    f"{self.encodec_name_or_path}` (or pass audio_tokenizer=EncodecModel.from_pretrained(a folder)). "
                    "Decoding codes you already have (processor(codes=..., bandwidth=...)) works without it."
                ) from None
            self.audio_tokenizer = model
        return self._audio_tokenizer

    @audio_tokenizer.setter
    def audio_tokenizer(self, model: EncodecModel | None) -> None:
        if model is not None:
            rate = model.config.sampling_rate
            if rate != self.feature_extractor.sampling_rate:
                raise ValueError(
                    f"`audio_tokenizer` works at {rate} Hz but the feature extractor at "
                    f"{self.feature_extractor.sampling_rate} Hz; they must agree."
                )
            if model.config.chunk_length_s is not None:
                raise ValueError(
                    "`audio_tokenizer` encodes in chunks (config.chunk_length_s is set, as in EnCodec 48 kHz); "
                    "VocosProcessor supports unchunked EnCodec models such as facebook/encodec_24khz."
                )
            model.eval()
        self._audio_tokenizer = model

    @property
    def has_audio_tokenizer(self) -> bool:
        """Whether this is an EnCodec checkpoint's processor (audio is encoded to codes)."""
        return self._audio_tokenizer is not None or self.encodec_name_or_path is not None

    @property
    def sampling_rate(self) -> int:
        return self.feature_extractor.sampling_rate

    def check_fits(self, config) -> None:
        """Raise a ValueError naming both values if this processor does not make what a model of `config` takes:
        another sampling rate, or (mel models) another hop or number of mel bins, or a mel processor for an EnCodec
        model (a folder whose files disagree would otherwise decode garbage at the wrong speed)."""
        extractor = self.feature_extractor
        pairs = [("sampling rate", extractor.sampling_rate, config.sampling_rate)]
        if not config.is_codes_model:
            pairs += [
                ("hop length", extractor.hop_length, config.hop_length),
                ("mel bins", extractor.feature_size, config.input_channels),
            ]
        wrong = [f"{name} {ours} (processor) vs {theirs} (model)" for name, ours, theirs in pairs if ours != theirs]
        if config.is_codes_model and not self.has_audio_tokenizer:
            wrong.append("a mel processor (no audio tokenizer) for an EnCodec model")
        if wrong:
            raise ValueError(f"the processor and the model do not fit each other: {'; '.join(wrong)}.")

    @property
    def model_input_names(self) -> list[str]:
        return ["input_features", "codes", "bandwidth", "attention_mask"]

    def __call__(
        self,
        audio=None,
        codes=None,
        bandwidth: float | None = None,
        sampling_rate: int | None = None,
        return_tensors: str | None = "pt",
        **kwargs,
    ) -> BatchFeature:
        """
        Prepare [`VocosModel`] inputs from audio or from EnCodec codes.

        Args:
            audio (`np.ndarray`, `torch.Tensor`, `list[float]` or a list of those, *optional*):
                Mono audio at `self.sampling_rate`: one clip `(samples,)`, a batch `(batch, samples)` or a list of
                clips of any lengths (integer PCM is scaled as [`VocosFeatureExtractor`] documents).
            codes (`torch.Tensor`, `np.ndarray` or a list of those, *optional*):
                EnCodec codes `(num_quantizers, batch, frames)` or `(num_quantizers, frames)`, or a list of per-item
                `(num_quantizers, frames_i)` arrays of any lengths (padded here, with an `attention_mask`).
            bandwidth (`float`, *optional*):
                Bandwidth in kbps. With `audio`, asks for EnCodec codes (EnCodec checkpoints; required there); with
                `codes`, required and passed on to the model.
            sampling_rate (`int`, *optional*):
                Sampling rate of `audio`; anything but `self.sampling_rate` raises.
            return_tensors (`str`, *optional*, defaults to `"pt"`):
                `"pt"` or `"np"`.
            kwargs:
                Passed to the feature extractor (mel path).

        Returns:
            [`BatchFeature`] with `input_features` and `attention_mask` (mel), or `codes`, `bandwidth` and
            `attention_mask` (EnCodec).
        """
        if (audio is None) == (codes is None):
            raise ValueError(
                "Pass exactly one of `audio` and `codes` to VocosProcessor; got "
                f"{'both' if audio is not None else 'neither'}."
            )
        if return_tensors not in ("pt", "np"):
            raise ValueError(f"`return_tensors` must be 'pt' or 'np', got {return_tensors!r}.")
        if codes is not None:
            if kwargs:
                raise TypeError(f"Unexpected keyword arguments with `codes`: {sorted(kwargs)}.")
            if not self.has_audio_tokenizer:
                raise ValueError(
                    "`codes` were given, but this processor belongs to a mel checkpoint (it has no audio tokenizer); "
                    "EnCodec codes need an EnCodec Vocos checkpoint."
                )
            if bandwidth is None:
                raise ValueError("`bandwidth` (kbps) is required with `codes`, e.g. `bandwidth=6.0`.")
            codes, attention_mask = _pad_codes(codes)
            return self._codes_batch(codes, attention_mask, bandwidth, return_tensors)
        if bandwidth is None:
            if self.has_audio_tokenizer:
                raise ValueError(
                    "This processor belongs to an EnCodec checkpoint: pass `bandwidth` (kbps) to encode `audio` to "
                    "codes, e.g. `processor(audio=x, bandwidth=6.0)`."
                )
            return self.feature_extractor(audio, sampling_rate=sampling_rate, return_tensors=return_tensors, **kwargs)
        if kwargs:
            raise TypeError(f"Unexpected keyword arguments with `bandwidth`: {sorted(kwargs)}.")
        return self._encode(audio, bandwidth, sampling_rate, return_tensors)

    def _encode(self, audio, bandwidth, sampling_rate, return_tensors) -> BatchFeature:
        if not self.has_audio_tokenizer:
            raise ValueError(
                f"`bandwidth`={bandwidth!r} asks for EnCodec codes, but this processor belongs to a mel checkpoint "
                "and has no audio tokenizer; call it without `bandwidth` to get log-mel features."
            )
        tokenizer = self.audio_tokenizer
        if bandwidth not in tokenizer.config.target_bandwidths:
            raise ValueError(
                f"`bandwidth`={bandwidth!r} kbps is not one of the EnCodec tokenizer's bandwidths "
                f"{list(tokenizer.config.target_bandwidths)}."
            )
        check_sampling_rate(sampling_rate, self.sampling_rate, type(self).__name__)
        clips = audio_to_float_list(audio, "audio")
        # EnCodec's last frame depends on how much padding follows a clip, so clips are encoded in groups of equal
        # length: every item gets exactly the codes it gets alone.
        by_length: dict[int, list[int]] = {}
        for index, clip in enumerate(clips):
            by_length.setdefault(clip.shape[0], []).append(index)
        per_item: list[torch.Tensor | None] = [None] * len(clips)
        device = tokenizer.device
        with torch.inference_mode():
            for indices in by_length.values():
                batch = torch.stack([torch.from_numpy(clips[i]) for i in indices]).to(device)
                encoded = tokenizer.encode(batch[:, None, :], bandwidth=bandwidth, return_dict=True).audio_codes
                # (chunks=1, batch, num_quantizers, frames) -> per item (num_quantizers, frames)
                for position, index in enumerate(indices):
                    per_item[index] = encoded[0, position].cpu()
        codes, attention_mask = _pad_codes(per_item)
        return self._codes_batch(codes, attention_mask, bandwidth, return_tensors)

    @staticmethod
    def _codes_batch(codes: torch.Tensor, attention_mask: torch.Tensor, bandwidth, return_tensors) -> BatchFeature:
        data = {"codes": codes, "bandwidth": torch.tensor(float(bandwidth)), "attention_mask": attention_mask}
        if return_tensors == "np":
            data = {key: value.numpy() for key, value in data.items()}
            return BatchFeature(data)
        return BatchFeature(data, tensor_type="pt")

    def batch_decode(self, audio, attention_mask=None) -> list[np.ndarray]:
        """
        Split a batch of generated audio into a list of float32 numpy waveforms, each trimmed to its valid samples.

        Args:
            audio ([`VocosOutput`], `tuple`, `torch.Tensor` or `np.ndarray`):
                The model output (its `attention_mask` is used), or audio of shape `(batch, samples)` / `(samples,)`.
            attention_mask (`torch.Tensor` or `np.ndarray` of shape `(batch, samples)`, *optional*):
                Sample-level mask; overrides the one in a model output.
        """
        if isinstance(audio, dict) or hasattr(audio, "audio"):
            attention_mask = attention_mask if attention_mask is not None else audio["attention_mask"]
            audio = audio["audio"]
        elif isinstance(audio, tuple):
            audio, output_mask = audio
            attention_mask = attention_mask if attention_mask is not None else output_mask
        if isinstance(audio, torch.Tensor):
            audio = audio.detach().float().cpu().numpy()
        if not isinstance(audio, np.ndarray):
            raise TypeError(f"`audio` must be a VocosOutput, tensor or array, got {type(audio).__name__}.")
        if audio.ndim == 1:
            audio = audio[None]
        if audio.ndim != 2:
            raise ValueError(f"`audio` must have shape (batch, samples), got {audio.shape}.")
        if attention_mask is None:
            return [row.astype(np.float32) for row in audio]
        if isinstance(attention_mask, torch.Tensor):
            attention_mask = attention_mask.detach().cpu().numpy()
        attention_mask = np.asarray(attention_mask)
        if attention_mask.ndim == 1:
            attention_mask = attention_mask[None]
        if attention_mask.shape != audio.shape:
            raise ValueError(f"`attention_mask` shape {attention_mask.shape} does not match the audio's {audio.shape}.")
        lengths = (attention_mask != 0).sum(axis=1)
        return [row[:length].astype(np.float32) for row, length in zip(audio, lengths)]

    def to_dict(self) -> dict[str, Any]:
        # The tokenizer model must not be deep-copied into the JSON dict: take it out of the instance while the base
        # class copies the rest.
        tokenizer = self.__dict__.pop("_audio_tokenizer", None)
        try:
            output = super().to_dict()
        finally:
            self.__dict__["_audio_tokenizer"] = tokenizer
        output.pop("audio_tokenizer", None)
        output.pop("_encodec_hub_kwargs", None)
        output.pop("encodec_name_or_path", None)
        if type(self)._auto_class is None:
            output.pop("auto_map", None)  # only a save with code (hf_vocos.with_remote_code) writes the files it names
        reference = self._hub_reference(tokenizer)
        if reference is not None:
            # The Hub format's reference to the tokenizer's repository (what its own loader reads).
            output["audio_tokenizer"] = {
                "audio_tokenizer_class": "EncodecModel",
                "audio_tokenizer_name_or_path": reference,
            }
        elif tokenizer is not None:
            output["encodec_subfolder"] = AUDIO_TOKENIZER_SUBFOLDER
        return output

    def _hub_reference(self, tokenizer) -> str | None:
        """The Hub repository the tokenizer comes from, if it is one: the pointer given, or the tokenizer's own
        `name_or_path` when that names a repository rather than a local folder (whose path would break once the
        processor is moved or pushed: such a tokenizer is saved beside the processor instead)."""
        if self.encodec_name_or_path is not None:
            return self.encodec_name_or_path
        name = getattr(tokenizer, "name_or_path", "") if tokenizer is not None else ""
        if name and not os.path.isabs(name) and not os.path.exists(name) and re.fullmatch(r"[\w.-]+/[\w.-]+", name):
            return name
        return None

    def save_pretrained(self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs) -> list[str]:
        """
        Save the feature extractor settings (`processor_config.json`) and, for EnCodec checkpoints, the EnCodec
        model's weights in `audio_tokenizer/` (unless `encodec_name_or_path` points at the Hub instead), so
        that [`~VocosProcessor.from_pretrained`] on the folder, moved or pushed, gives back the same processor.

        `push_to_hub=True` then uploads the folder to `repo_id` (default: the folder's name), as
        [`~VocosProcessor.push_to_hub`] does.
        """
        check_save_directory(save_directory)
        os.makedirs(save_directory, exist_ok=True)
        saved = []
        if not self.has_audio_tokenizer:
            # A mel checkpoint's processor is its feature extractor: the Hub format writes preprocessor_config.json
            # only (AutoProcessor finds this class through the model's config.json). A save with code
            # (hf_vocos.with_remote_code) also writes the processor's file, whose auto_map names its code.
            saved += list(self.feature_extractor.save_pretrained(save_directory))
            if type(self)._auto_class is not None:
                saved += super().save_pretrained(save_directory, push_to_hub=False)
        else:
            if self._audio_tokenizer is not None and self._hub_reference(self._audio_tokenizer) is None:
                tokenizer_directory = os.path.join(save_directory, AUDIO_TOKENIZER_SUBFOLDER)
                self._audio_tokenizer.save_pretrained(tokenizer_directory)
                saved.append(tokenizer_directory)
            saved += super().save_pretrained(save_directory, push_to_hub=False)
        if push_to_hub:
            repo_id = kwargs.pop("repo_id", os.path.basename(os.path.normpath(save_directory)))
            self.push_to_hub(repo_id, **kwargs)
        return saved

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        r"""
        Load a processor saved with `save_pretrained` (a folder or a Hub repository), EnCodec tokenizer included.

        A folder or repository in the original `vocos` format (`config.yaml` + `pytorch_model.bin`) gives the
        equivalent processor, with a log line saying so (for EnCodec checkpoints its tokenizer is
        `facebook/encodec_24khz`, loaded on first use).
        """
        hub_kwargs = {key: kwargs[key] for key in HUB_KWARGS if key in kwargs}
        original = find_original_checkpoint(pretrained_model_name_or_path, **hub_kwargs)
        if original is None:
            processor = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
            config_dict = _checkpoint_config(pretrained_model_name_or_path, hub_kwargs)
            if processor.has_audio_tokenizer and _is_mel_checkpoint(config_dict):
                # Generation B saved an EnCodec reference with mel checkpoints' processors too: a mel model's
                # processor makes log-mel features and never needs EnCodec.
                processor._audio_tokenizer, processor.encodec_name_or_path = None, None
            if cls is VocosProcessor and processor.has_audio_tokenizer:
                # An EnCodec checkpoint's processor, whichever class was asked.
                processor = VocosEncodecProcessor._from_parts(processor)
            _check_fits_checkpoint(processor, pretrained_model_name_or_path, config_dict)
            return processor
        logger.warning(
            f"{pretrained_model_name_or_path} is an original Vocos checkpoint (config.yaml): building the equivalent "
            "processor. processor.save_pretrained(folder) keeps it."
        )
        config, extractor = configs_from_original(read_original_config(original[0]))
        overrides = {key: value for key, value in kwargs.items() if key in FEATURE_EXTRACTOR_ARGUMENTS}
        if overrides:  # e.g. log_floor=1e-5, as for a saved processor
            extractor = type(extractor).from_dict(extractor.to_dict(), **overrides)
        if config.is_codes_model:
            return VocosEncodecProcessor(extractor, encodec_name_or_path=DEFAULT_ENCODEC_REPO)
        return cls(extractor)

    @staticmethod
    def get_possibly_dynamic_module(module_name):
        # The Hub format names its tokenizer by class and repository, and transformers would load it at once:
        # keep the reference instead (loaded on first use).
        if module_name == "EncodecModel":
            return _EncodecPointer
        return ProcessorMixin.get_possibly_dynamic_module(module_name)

    @classmethod
    def get_processor_dict(cls, pretrained_model_name_or_path, **kwargs) -> tuple[dict[str, Any], dict[str, Any]]:
        processor_dict, remaining = super().get_processor_dict(pretrained_model_name_or_path, **kwargs)
        subfolder = processor_dict.pop("encodec_subfolder", None)
        name_or_path = processor_dict.get("encodec_name_or_path")
        if "audio_tokenizer" in kwargs or (subfolder is None and name_or_path is None):
            return processor_dict, remaining
        hub_kwargs = {key: kwargs[key] for key in AUDIO_TOKENIZER_KWARGS if key in kwargs}
        if name_or_path is not None:
            # A deliberate pointer to another repository (e.g. facebook/encodec_24khz).
            processor_dict["audio_tokenizer"] = EncodecModel.from_pretrained(name_or_path, **hub_kwargs)
        else:
            # Saved beside the processor: same repository and revision, one folder down.
            if kwargs.get("subfolder"):
                subfolder = f"{kwargs['subfolder']}/{subfolder}"
            processor_dict["audio_tokenizer"] = EncodecModel.from_pretrained(
                pretrained_model_name_or_path, subfolder=subfolder, revision=kwargs.get("revision"), **hub_kwargs
            )
        return processor_dict, remaining


def _checkpoint_config(name_or_path, hub_kwargs: dict) -> dict | None:
    """The config.json beside a processor, as a dict (None when there is none, or it is not JSON)."""
    from transformers.utils import cached_file

    try:
        kwargs = {key: value for key, value in hub_kwargs.items() if value is not None}
        path = cached_file(str(name_or_path), "config.json", _raise_exceptions_for_missing_entries=False, **kwargs)
        if path is None:
            return None
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def _is_mel_checkpoint(config: dict | None) -> bool:
    """Whether the checkpoint beside a processor is a mel model, by its config.json (False when there is none)."""
    return config is not None and config.get("model_type") in (None, "vocos") and not describes_encodec_model(config)


def _check_fits_checkpoint(processor: VocosProcessor, name_or_path, config_dict: dict | None) -> None:
    """Refuse a processor whose folder's model (`config_dict`, the config.json beside it) takes other inputs than it
    makes."""
    if config_dict is None or config_dict.get("model_type") not in (None, "vocos", "vocos_encodec"):
        return
    try:
        config = VocosConfig.from_dict(dict(config_dict))
    except (ValueError, TypeError, KeyError):
        return  # a config the model's own loading refuses, with its own message
    try:
        processor.check_fits(config)
    except ValueError as error:
        raise ValueError(
            f"{name_or_path}: {error} Its processor files and config.json describe different models; fix or "
            "replace one of them (a processor for another folder's model: load it from that folder)."
        ) from None


def _pad_codes(codes) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes as (num_quantizers, batch, frames) int64 plus a (batch, frames) mask, from a tensor/array or a list of
    per-item (num_quantizers, frames_i) arrays."""
    if isinstance(codes, (list, tuple)):
        items = [_codes_tensor(item, f"codes[{index}]") for index, item in enumerate(codes)]
        if not items:
            raise ValueError("`codes` is an empty list; expected codes of shape (num_quantizers, frames) per item.")
        for index, item in enumerate(items):
            if item.dim() != 2:
                raise ValueError(f"`codes[{index}]` must have shape (num_quantizers, frames), got {tuple(item.shape)}.")
            if item.shape[0] != items[0].shape[0]:
                raise ValueError(
                    f"`codes[{index}]` has {item.shape[0]} codebooks but `codes[0]` has {items[0].shape[0]}; all "
                    "items must be encoded at the same bandwidth."
                )
        lengths = torch.tensor([item.shape[1] for item in items])
        padded = torch.zeros(items[0].shape[0], len(items), int(lengths.max()), dtype=torch.long)
        for index, item in enumerate(items):
            padded[:, index, : item.shape[1]] = item
    else:
        padded = _codes_tensor(codes, "codes")
        if padded.dim() == 2:
            padded = padded[:, None, :]
        if padded.dim() != 3:
            raise ValueError(
                f"`codes` must have shape (num_quantizers, batch, frames) or (num_quantizers, frames), got "
                f"{tuple(padded.shape)}."
            )
        lengths = torch.full((padded.shape[1],), padded.shape[2])
    if int(lengths.min()) == 0:
        raise ValueError("`codes` has an item with 0 frames; expected at least one frame.")
    attention_mask = (torch.arange(padded.shape[2])[None, :] < lengths[:, None]).to(torch.int32)
    return padded, attention_mask


def _codes_tensor(codes, name: str) -> torch.Tensor:
    if isinstance(codes, np.ndarray):
        codes = torch.from_numpy(codes)
    if not isinstance(codes, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor or numpy array of integers, got {type(codes).__name__}.")
    no_data(codes, name)
    if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise TypeError(f"`{name}` must have an integer dtype (codebook indices), got {codes.dtype}.")
    return codes.detach().cpu().long()


class VocosEncodecProcessor(VocosProcessor):
    r"""
    The processor of an EnCodec checkpoint (model type `vocos_encodec`): a [`VocosProcessor`] with an EnCodec audio
    tokenizer, the class the Hub format names. `processor(audio=x, bandwidth=6.0)` encodes audio to codes;
    `processor(codes=c, bandwidth=6.0)` batches codes. `VocosProcessor.from_pretrained` on such a checkpoint returns
    this class.
    """

    @classmethod
    def _from_parts(cls, processor: VocosProcessor) -> "VocosEncodecProcessor":
        made = cls(
            processor.feature_extractor,
            audio_tokenizer=processor._audio_tokenizer,
            encodec_name_or_path=processor.encodec_name_or_path,
        )
        made._encodec_hub_kwargs = processor._encodec_hub_kwargs
        return made
