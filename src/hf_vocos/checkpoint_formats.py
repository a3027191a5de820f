"""Reading every on-disk format of Vocos checkpoints into the current one (the Hub's latest, "generation E").

One place knows the older formats (docs/index.md, "Saving and sharing", lists those that load):

- the earlier generations A-D of the Vocos integration proposed to transformers, and hf_vocos before it adopted the
  Hub's names: `config.json` + weights under other names. Their weights are renamed at load time by transformers'
  own key-renaming machinery (`from_pretrained(key_mapping=KEY_MAPPING)`), their configs by
  `configuration_vocos.legacy_config_fields`;
- the original `vocos` package's folders (`config.yaml` + `pytorch_model.bin`, e.g. `charactr/vocos-mel-24khz`):
  read here, weights renamed by the same mapping.

And it checks that what loaded is whole: a checkpoint with missing, unexpected or wrong-shaped weights is refused with
the weights named and the format it looked like (random weights make noise, so a warning is not enough).
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from transformers.core_model_loading import WeightRenaming, apply_renamings

from .configuration_vocos import VocosConfig, VocosEncodecConfig

__all__ = [
    "ConversionError",
    "DEFAULT_ENCODEC_REPO",
    "KEY_MAPPING",
    "check_loaded_weights",
    "codebook_table_from_encodec",
    "configs_from_original",
    "find_original_checkpoint",
    "guess_format",
    "load_original_state_dict",
    "loaded_keys",
    "original_weights_in",
    "read_original_config",
    "referenced_codebook_table",
    "rename_weights",
]

DEFAULT_ENCODEC_REPO = "facebook/encodec_24khz"
ORIGINAL_CONFIG_NAME = "config.yaml"
ORIGINAL_WEIGHTS_NAME = "pytorch_model.bin"


class ConversionError(ValueError):
    """A checkpoint that cannot be read; the message names the problem (`problems`: each, where there are several)."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or [message]


# ---------------------------------------------------------------------------------------------------------------------
# weight names

# Older weight names -> the current ones, as regular expressions for transformers' `key_mapping` (applied in turn).
# The current names pass through unchanged, so one mapping serves every format.
KEY_MAPPING = {
    # original vocos and hf_vocos before the Hub format: backbone.convnext.N; generations A-C: backbone.layers.N
    r"^backbone\.convnext\.(\d+)\.": r"layers.\1.",
    r"^backbone\.layers\.(\d+)\.": r"layers.\1.",
    r"^backbone\.(embed|norm|final_layer_norm)\.": r"\1.",
    r"\.gamma$": ".layer_scale_parameter",
    # the original's adaptive norm: two embedding tables, rows = bandwidths
    r"norm\.scale\.weight$": "norm.weight",
    r"norm\.shift\.weight$": "norm.bias",
    r"^head\.out_proj\.": "decoder.out.",  # A, B
    r"^head\.out\.": "decoder.out.",  # original, C, hf_vocos
    r"^head\.istft\.window$": "decoder.window",  # original, A (01913f5), C
    r"^head\.window$": "decoder.window",  # A (229464a), B
    r"^codebook_embedding\.weight$": "codebook_weights",  # hf_vocos
    r"^feature_extractor\.codebook_weights$": "codebook_weights",  # original
}
# Keys that hold nothing of the vocoder's: the original's torchaudio mel buffers (checked against our filterbank by
# `check_mel_buffers`) and EnCodec weights (the original's, and A's whole EnCodec model): EnCodec belongs to the
# processor's audio tokenizer.
IGNORED_KEYS = (r"^feature_extractor\.mel_spec\.", r"^feature_extractor\.encodec\.", r"^encodec_model\.")
# Derived from the config: rebuilt on load (an older format may have saved it at another length, or not at all), and
# written on save.
REBUILT_KEYS = ("decoder.window",)


def rename_weights(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict of any format under the current names (with transformers' renaming, as `from_pretrained` applies
    `KEY_MAPPING`), ignored keys left out."""
    renamings = [WeightRenaming(source, target) for source, target in KEY_MAPPING.items()]
    ignored = re.compile("|".join(IGNORED_KEYS))
    return {apply_renamings(key, renamings): value for key, value in state_dict.items() if not ignored.search(key)}


def guess_format(keys, config: dict[str, Any] | None = None) -> str:
    """A short description of the format a checkpoint's weight names (and config fields) look like."""
    keys = set(keys)
    config = config or {}
    if any(key.startswith("encodec_model.") for key in keys):
        return "generation A of the proposed transformers integration (with a whole EnCodec model)"
    if any(key.startswith("head.out_proj.") for key in keys):
        return "generation A/B of the proposed transformers integration (backbone.*, head.out_proj)"
    if any(key.startswith("codebook_embedding.") for key in keys) or "input_kernel_size" in config:
        return "hf_vocos before it adopted the Hub's names (backbone.convnext.*, head.out)"
    if any(key.startswith("feature_extractor.") for key in keys):
        return "the original vocos package's format (backbone.convnext.*, head.istft.window)"
    if any(key.startswith("backbone.") for key in keys):
        return "generation C of the proposed transformers integration (backbone.*, head.out)"
    if "codebook_weights" in keys or config.get("model_type") == "vocos_encodec":
        return "generation E, the Hub's current format (embed, layers.N, decoder.out, codebook_weights)"
    if any(key.startswith(("layers.", "embed.", "decoder.")) for key in keys):
        return "generation D/E, the Hub's format (embed, layers.N, decoder.out)"
    return "no known Vocos format"


def check_loaded_weights(model, loading_info: dict, source: str, checkpoint_keys, config: dict | None = None) -> None:
    """Refuse a load that left weights random or dropped some: a `ConversionError` (a ValueError) naming the
    missing, unexpected and wrong-shaped weights and the format the checkpoint looked like. The rebuilt window may be
    missing."""
    ignored = re.compile("|".join(IGNORED_KEYS))
    missing = sorted(key for key in loading_info.get("missing_keys", ()) if key not in REBUILT_KEYS)
    unexpected = sorted(key for key in loading_info.get("unexpected_keys", ()) if not ignored.search(key))
    mismatched = sorted(
        f"{key} {tuple(found)} (expected {tuple(expected)})"
        for key, found, expected in (_mismatch(entry) for entry in loading_info.get("mismatched_keys", ()))
        if key not in REBUILT_KEYS
    )
    if not (missing or unexpected or mismatched):
        return
    parts = []
    for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
        if names:
            parts.append(f"{label}: {', '.join(names[:6])}{' ...' if len(names) > 6 else ''} ({len(names)})")
    raise ConversionError(
        f"{source}: the weights do not fit a {type(model).__name__} with this config ({'; '.join(parts)}). The "
        f"checkpoint looks like {guess_format(checkpoint_keys, config)}. Refusing to load: the weights left out "
        "would be random and the audio noise."
    )


def _mismatch(entry) -> tuple[str, tuple, tuple]:
    if isinstance(entry, (tuple, list)) and len(entry) == 3:
        return entry[0], tuple(entry[1]), tuple(entry[2])
    return str(entry), (), ()


def codebook_table_from_encodec(config: VocosEncodecConfig, name_or_path: str, **hub_kwargs) -> torch.Tensor:
    """The codebook table a format without one relies on: the first `config.num_codebooks` codebooks of the EnCodec
    model `name_or_path` (transformers' EncodecModel), stacked, as the original's `codebook_weights` are."""
    from transformers import EncodecModel

    try:
        encodec = EncodecModel.from_pretrained(name_or_path, **hub_kwargs)
    except OSError as error:
        raise ValueError(
            f"this EnCodec Vocos checkpoint has no codebook table (an older format), so it is taken from the EnCodec "
            f"model {name_or_path!r}, which could not be loaded ({_first_line(error)}). Download it once with "
            f"`huggingface-cli download {name_or_path}` (or go online), then load again."
        ) from None
    layers = encodec.quantizer.layers[: config.num_codebooks]
    if len(layers) < config.num_codebooks:
        raise ValueError(f"{name_or_path} has {len(layers)} codebooks; this model needs {config.num_codebooks}.")
    return torch.cat([layer.codebook.embed for layer in layers]).detach()


def loaded_keys(info: dict, model) -> list[str]:
    """The checkpoint's keys as far as the loading info tells them (for naming the format in an error)."""
    return list(info.get("unexpected_keys", ())) + [
        key for key in model.state_dict() if key not in info.get("missing_keys", ())
    ]


def _encodec_reference(name_or_path, hub_kwargs: dict) -> str:
    """The EnCodec model a checkpoint's processor files point at (its tokenizer), else facebook/encodec_24khz."""
    import json

    from transformers.utils import cached_file

    for file_name in ("processor_config.json", "audio_tokenizer_config.json"):
        if os.path.isdir(str(name_or_path)):
            path = os.path.join(str(name_or_path), hub_kwargs.get("subfolder") or "", file_name)
            path = path if os.path.isfile(path) else None
        else:
            kwargs = {key: value for key, value in hub_kwargs.items() if value is not None}
            path = cached_file(str(name_or_path), file_name, _raise_exceptions_for_missing_entries=False, **kwargs)
        if path is None:
            continue
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
        pointer = content.get("audio_tokenizer", content)
        if isinstance(pointer, dict) and pointer.get("audio_tokenizer_name_or_path"):
            return pointer["audio_tokenizer_name_or_path"]
        if content.get("encodec_name_or_path"):
            return content["encodec_name_or_path"]
    return DEFAULT_ENCODEC_REPO


def _tokenizer_kwargs(hub_kwargs: dict) -> dict:
    """Hub access kwargs for another repository (not this one's revision or subfolder)."""
    return {
        key: value
        for key, value in hub_kwargs.items()
        if key in ("cache_dir", "token", "local_files_only", "force_download")
    }


def referenced_codebook_table(config: VocosEncodecConfig, name_or_path, hub_kwargs: dict) -> torch.Tensor:
    """The codebook table of an EnCodec checkpoint saved without one: from the EnCodec model its processor files name
    (facebook/encodec_24khz when they name none), loaded with the same cache and token as the checkpoint."""
    reference = _encodec_reference(name_or_path, hub_kwargs)
    return codebook_table_from_encodec(config, reference, **_tokenizer_kwargs(hub_kwargs))


# ---------------------------------------------------------------------------------------------------------------------
# the original vocos format: config.yaml + pytorch_model.bin

_MEL = "vocos.feature_extractors.MelSpectrogramFeatures"
_ENCODEC = "vocos.feature_extractors.EncodecFeatures"
_BACKBONE = "vocos.models.VocosBackbone"
_HEAD = "vocos.heads.ISTFTHead"

_REQUIRED = object()

# The init arguments each supported class accepts, with the defaults of `vocos` 0.1.0. The mel feature extractor's
# f_min/f_max/norm/mel_scale are the `matcha` fork's (below); absent, they mean what 0.1.0 (torchaudio's
# MelSpectrogram defaults) computes. `clip_val` is the log floor, where a config states it.
_SIGNATURES: dict[str, dict[str, Any]] = {
    _MEL: {
        "sample_rate": 24000,
        "n_fft": 1024,
        "hop_length": 256,
        "n_mels": 100,
        "padding": "center",
        "f_min": 0.0,
        "f_max": None,
        "norm": None,
        "mel_scale": "htk",
        "clip_val": None,
    },
    _ENCODEC: {"encodec_model": "encodec_24khz", "bandwidths": [1.5, 3.0, 6.0, 12.0], "train_codebooks": False},
    _BACKBONE: {
        "input_channels": _REQUIRED,
        "dim": _REQUIRED,
        "intermediate_dim": _REQUIRED,
        "num_layers": _REQUIRED,
        "layer_scale_init_value": None,
        "adanorm_num_embeddings": None,
    },
    _HEAD: {"dim": _REQUIRED, "n_fft": _REQUIRED, "hop_length": _REQUIRED, "padding": "same"},
}
_SECTIONS = {"feature_extractor": (_MEL, _ENCODEC), "backbone": (_BACKBONE,), "head": (_HEAD,)}
_NOT_IMPLEMENTED = {
    "vocos.models.VocosResNetBackbone": "the ResNet backbone (weight-normed HiFi-GAN residual blocks)",
    "vocos.heads.IMDCTSymExpHead": "the IMDCT (MDCT coefficient) heads",
    "vocos.heads.IMDCTCosHead": "the IMDCT (MDCT coefficient) heads",
}
# The `matcha` fork of vocos (Matcha-TTS-compatible mels: BSC-LT/vocos-mel-22khz and other community models) adds
# f_min/f_max/norm/mel_scale to MelSpectrogramFeatures, with these defaults, and its safe_log clamps at 1e-5; its
# config.yaml does not state the floor. A config with any of these arguments is the fork's.
_MATCHA_FORK_MEL = {"f_min": 0.0, "f_max": 8000.0, "norm": "slaney", "mel_scale": "slaney"}
MATCHA_FORK_LOG_FLOOR = 1e-5
ORIGINAL_LOG_FLOOR = 1e-7

# EnCodec 24 kHz: 75 frames/s, i.e. a hop of 320 samples, and 128-dimensional codebooks.
_ENCODEC_24KHZ = {"sampling_rate": 24000, "hop_length": 320, "codebook_dim": 128, "codebook_size": 1024}


def read_original_config(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read an original `config.yaml` into `{"feature_extractor"|"backbone"|"head": {"class_path", "init_args"}}`
    with every init argument filled in (defaults of `vocos` 0.1.0). Accepts the released layout (three top-level
    sections) and a training config (the same sections under `model.init_args`). Raises `ConversionError` for an
    unknown or unsupported class or argument."""
    import yaml

    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConversionError(
            f"{path}: no such file (an original Vocos checkpoint has a {ORIGINAL_CONFIG_NAME})"
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConversionError(f"{path}: not valid YAML ({_first_line(error)})") from None
    if isinstance(document, dict) and "feature_extractor" not in document and isinstance(document.get("model"), dict):
        document = document["model"].get("init_args", {})
    if not isinstance(document, dict) or any(not isinstance(document.get(section), dict) for section in _SECTIONS):
        raise ConversionError(
            f"{path}: expected the sections feature_extractor, backbone and head (each with class_path and init_args)"
        )
    sections, problems = {}, []
    for section, supported in _SECTIONS.items():
        class_path = document[section].get("class_path")
        init_args = document[section].get("init_args") or {}
        if class_path in _NOT_IMPLEMENTED:
            problems.append(
                f"{section} class {class_path} is not supported: hf_vocos implements the ConvNeXt backbone with the "
                f"ISTFT head, not {_NOT_IMPLEMENTED[class_path]}"
            )
            continue
        if class_path not in supported:
            problems.append(f"unknown {section} class {class_path!r}; supported: {', '.join(supported)}")
            continue
        if not isinstance(init_args, dict):
            problems.append(f"{section}.init_args must be a mapping, got {init_args!r}")
            continue
        signature = dict(_SIGNATURES[class_path])
        fork = class_path == _MEL and any(name in init_args for name in _MATCHA_FORK_MEL)
        if fork:
            signature.update(_MATCHA_FORK_MEL)
        unknown = sorted(set(init_args) - set(signature))
        if unknown:
            problems.append(f"{class_path} has init arguments this conversion does not know: {unknown}")
            continue
        typed, wrong = _typed_arguments(section, init_args)
        if wrong:
            problems += wrong
            continue
        arguments = {**signature, **typed}
        missing = sorted(name for name, value in arguments.items() if value is _REQUIRED)
        if missing:
            problems.append(f"{class_path} is missing required init arguments {missing}")
            continue
        if class_path == _MEL:
            if arguments["clip_val"] is None:
                arguments["clip_val"] = MATCHA_FORK_LOG_FLOOR if fork else ORIGINAL_LOG_FLOOR
            elif isinstance(arguments["clip_val"], bool) or not (
                isinstance(arguments["clip_val"], (int, float)) and 0 < arguments["clip_val"] < float("inf")
            ):
                problems.append(f"feature_extractor clip_val must be a positive number, got {arguments['clip_val']!r}")
        sections[section] = {"class_path": class_path, "init_args": arguments, "matcha_fork": fork}
    if problems:
        raise every_problem([f"{path}: {problem}" for problem in problems])
    return sections


# The types of the original classes' init arguments (their signatures' annotations), for the values a config.yaml
# states. YAML 1.1 reads `1e-5` as a string; the original's typed config takes it as the float its signature says.
_INTEGER_ARGUMENTS = {
    "sample_rate", "n_fft", "hop_length", "n_mels", "input_channels", "dim", "intermediate_dim", "num_layers",
    "adanorm_num_embeddings",
}  # fmt: skip
_FLOAT_ARGUMENTS = {"f_min", "f_max", "clip_val", "layer_scale_init_value"}


def _typed_arguments(section: str, init_args: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`init_args` with numbers as their signature types them (numeric strings accepted for floats), and a problem,
    naming the yaml key, for each value of the wrong type."""
    typed, problems = dict(init_args), []
    for name, value in init_args.items():
        key = f"{section}.init_args.{name}"
        if name in _INTEGER_ARGUMENTS and value is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append(f"the yaml key `{key}` must be a whole number, got {value!r} ({type(value).__name__})")
        elif name in _FLOAT_ARGUMENTS and value is not None:
            number = value
            if isinstance(value, str):
                try:
                    number = float(value)
                except ValueError:
                    number = None
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                problems.append(f"the yaml key `{key}` must be a number, got {value!r} ({type(value).__name__})")
            else:
                typed[name] = float(number)
    return typed, problems


def every_problem(problems: list[str]) -> ConversionError:
    """One error whose one-line message names every problem found."""
    if len(problems) == 1:
        return ConversionError(problems[0])
    numbered = "; ".join(f"({number}) {problem}" for number, problem in enumerate(problems, 1))
    return ConversionError(f"cannot convert: {len(problems)} problems: {numbered}", problems)


def configs_from_original(original: dict[str, dict[str, Any]]):
    """The model config ([`VocosConfig`] or [`VocosEncodecConfig`]) and [`VocosFeatureExtractor`] equivalent to a
    parsed original config (`read_original_config`)."""
    from .feature_extraction_vocos import VocosFeatureExtractor

    features = original["feature_extractor"]["init_args"]
    backbone = original["backbone"]["init_args"]
    head = original["head"]["init_args"]
    is_encodec = original["feature_extractor"]["class_path"] == _ENCODEC
    if head["dim"] != backbone["dim"]:
        raise ConversionError(f"config.yaml: head.dim ({head['dim']}) differs from backbone.dim ({backbone['dim']})")
    common = {
        "hidden_size": backbone["dim"],
        "intermediate_size": backbone["intermediate_dim"],
        "num_layers": backbone["num_layers"],
        # The original uses `layer_scale_init_value or 1 / num_layers`: 0 and None both mean the default.
        "layer_scale_init_value": backbone["layer_scale_init_value"] or None,
        "n_fft": head["n_fft"],
        "hop_length": head["hop_length"],
        "istft_padding": head["padding"],
    }
    if is_encodec:
        if features["encodec_model"] != "encodec_24khz":
            raise ConversionError(
                f"config.yaml: encodec_model {features['encodec_model']!r} is not supported; hf_vocos supports "
                "encodec_24khz (the 48 kHz EnCodec is stereo and encodes in normalised chunks)"
            )
        if head["hop_length"] != _ENCODEC_24KHZ["hop_length"]:
            raise ConversionError(
                f"config.yaml: head.hop_length is {head['hop_length']}, but EnCodec 24 kHz codes come at 75 frames/s "
                f"(hop {_ENCODEC_24KHZ['hop_length']})"
            )
        bandwidths = list(features["bandwidths"])
        rows = backbone["adanorm_num_embeddings"]
        if rows is not None and rows != len(bandwidths):
            raise ConversionError(
                f"config.yaml: backbone.adanorm_num_embeddings ({rows}) differs from the number of bandwidths "
                f"({len(bandwidths)}); the adaptive norm has one row per bandwidth"
            )
        if backbone["input_channels"] != _ENCODEC_24KHZ["codebook_dim"]:
            raise ConversionError(
                f"config.yaml: backbone.input_channels is {backbone['input_channels']}, but EnCodec 24 kHz codebook "
                f"entries have {_ENCODEC_24KHZ['codebook_dim']} dimensions"
            )
        sampling_rate = _ENCODEC_24KHZ["sampling_rate"]
        try:
            config = VocosEncodecConfig(
                codebook_dim=backbone["input_channels"],
                bandwidths=bandwidths,
                use_adaptive_norm=rows is not None,
                sample_rate=sampling_rate,
                **common,
            )
            extractor = VocosFeatureExtractor(sampling_rate=sampling_rate)
        except ValueError as error:
            raise ConversionError(f"config.yaml: {error}") from None
        return config, extractor
    if backbone["adanorm_num_embeddings"] is not None:
        raise ConversionError(
            "config.yaml: a mel model with backbone.adanorm_num_embeddings (bandwidth-conditioned norms) is not "
            "supported"
        )
    if backbone["input_channels"] != features["n_mels"]:
        raise ConversionError(
            f"config.yaml: backbone.input_channels ({backbone['input_channels']}) differs from "
            f"feature_extractor.n_mels ({features['n_mels']})"
        )
    if head["hop_length"] != features["hop_length"]:
        raise ConversionError(
            f"config.yaml: head.hop_length ({head['hop_length']}) differs from feature_extractor.hop_length "
            f"({features['hop_length']}); one feature frame must make one hop of audio"
        )
    try:
        config = VocosConfig(n_mels=features["n_mels"], sample_rate=features["sample_rate"], **common)
        extractor = VocosFeatureExtractor(
            feature_size=features["n_mels"],
            sampling_rate=features["sample_rate"],
            n_fft=features["n_fft"],
            hop_length=features["hop_length"],
            f_min=float(features["f_min"]),
            f_max=None if features["f_max"] is None else float(features["f_max"]),
            mel_scale=features["mel_scale"],
            mel_norm=features["norm"],
            padding=features["padding"],
            log_floor=float(features.get("clip_val") or ORIGINAL_LOG_FLOOR),
        )
    except ValueError as error:
        raise ConversionError(f"config.yaml: {error}") from None
    return config, extractor


def load_original_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load an original checkpoint's weights, never running code: a `pytorch_model.bin` or a PyTorch Lightning
    training checkpoint (`.ckpt`: its `state_dict`, minus the discriminators and losses) with
    `torch.load(weights_only=True)`, which refuses pickled Python objects; or a `.safetensors` file (recognised by its
    header whatever its name)."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    if _is_safetensors(path):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            loaded = load_file(path)
        except (SafetensorError, OSError, ValueError) as error:
            raise ConversionError(f"{path}: a safetensors file that cannot be read ({_first_line(error)})") from None
        if not loaded:
            raise ConversionError(f"{path}: the safetensors file holds no tensors")
        return loaded
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"unsupported (?:global: )?GLOBAL (\S+)", str(error), re.IGNORECASE)
        if found:
            raise ConversionError(
                f"{path}: refusing to unpickle it: it holds a Python object ({found.group(1)}), not just tensors; a "
                "plain state dict never does (a Lightning .ckpt may, in its hyper-parameters or callbacks). Re-save "
                "the weights with torch.save(checkpoint['state_dict'], 'pytorch_model.bin') from code you trust"
            ) from None
        raise ConversionError(
            f"{path}: not a PyTorch checkpoint or a safetensors file, or corrupt (unpickling failed)"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise ConversionError(f"{path}: cannot be read, truncated or corrupt ({_first_line(error)})") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        # A Lightning checkpoint of the original's training run: keep the generator.
        loaded = {
            key: value
            for key, value in loaded["state_dict"].items()
            if key.startswith(("feature_extractor.", "backbone.", "head."))
        }
    if not isinstance(loaded, dict) or not loaded:
        raise ConversionError(
            f"{path}: expected a state dict (a mapping of names to tensors), got {type(loaded).__name__}"
        )
    not_tensors = sorted(key for key, value in loaded.items() if not isinstance(value, torch.Tensor))
    if not_tensors:
        raise ConversionError(f"{path}: entries that are not tensors: {not_tensors[:5]}")
    check_floating_weights({key: value.dtype for key, value in loaded.items()}, path)
    return loaded


def check_floating_weights(dtypes: dict[str, Any], source) -> None:
    """Every Vocos weight and buffer is floating point: a checkpoint holding integer or boolean tensors (a broken
    export) would be cast on load and decode other audio than the model it was saved from. Refused, naming them."""
    ignored = re.compile("|".join(IGNORED_KEYS))
    wrong = sorted(
        f"{key} ({str(dtype).removeprefix('torch.')})"
        for key, dtype in dtypes.items()
        if not ignored.search(key) and not _is_floating(dtype)
    )
    if wrong:
        raise ConversionError(
            f"{source}: {len(wrong)} weight tensors are not floating point ({', '.join(wrong[:6])}"
            f"{' ...' if len(wrong) > 6 else ''}); a Vocos checkpoint holds float weights only. Refusing to load: "
            "cast, they would decode other audio than the model they were saved from. Export the checkpoint again."
        )


def _is_floating(dtype) -> bool:
    if isinstance(dtype, torch.dtype):
        return dtype.is_floating_point
    return str(dtype).upper() in ("F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2")  # safetensors' names


VOCOS_MODEL_TYPES = (None, "vocos", "vocos_encodec", "vocos_with_encodec")
HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def check_checkpoint_location(name_or_path, subfolder: str | None = None) -> None:
    """What `from_pretrained` is pointed at, checked before transformers reads it (its messages name neither the
    file nor what to do): not a path; a file instead of its folder; a local path that does not exist; a folder with no
    readable `config.json`, or one of another model type, or one holding a list; a weights file that cannot be read,
    holds pickled objects besides tensors (refused without unpickling), or holds non-float tensors. A Hub repository
    id is left to the Hub's own checks."""
    import json

    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            "`pretrained_model_name_or_path` must be a folder or a Hub repository id (e.g. 'hf-audio/vocos-mel-24khz'),"
            f" got {type(name_or_path).__name__}."
        )
    path = os.fspath(name_or_path)
    if os.path.isfile(path):
        raise ValueError(
            f"{path} is a file; from_pretrained takes the folder that holds config.json and the weights "
            f"({os.path.dirname(os.path.abspath(path))} here)."
        )
    if not os.path.isdir(path):
        looks_local = os.path.isabs(path) or path.startswith((".", "~")) or path.count("/") > 1 or "\\" in path
        if looks_local:
            raise ValueError(f"{path}: no such folder (a local path; a Hub repository id has the form 'owner/name').")
        return
    folder = Path(path, subfolder or "")
    config = folder / "config.json"
    if not config.is_file():
        if config.is_symlink():
            raise ValueError(f"{config}: a broken link or a link loop; it should be the model's config (JSON).")
        if (folder / ORIGINAL_CONFIG_NAME).is_file() or not folder.is_dir():
            return  # an original-format folder (converted on the fly) or a subfolder transformers will name
        weights = [name for name in HUB_WEIGHT_FILES if (folder / name).exists()]
        raise ValueError(
            f"{folder}: no config.json{' beside its weights (' + ', '.join(weights) + ')' if weights else ''}. A "
            "Vocos checkpoint folder holds the config.json that save_pretrained writes (or an original config.yaml); "
            "copy it there, or load the repository the weights came from."
        )
    try:
        content = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"{config}: cannot be read as a JSON config ({_first_line(error)}).") from None
    if not isinstance(content, dict):
        raise ValueError(f"{config}: holds a JSON {type(content).__name__}; expected an object of config fields.")
    if content.get("model_type") not in VOCOS_MODEL_TYPES:
        raise ValueError(
            f"{config}: model_type {content.get('model_type')!r} is not a Vocos model (expected 'vocos' or "
            "'vocos_encodec'); load it with its own class (e.g. transformers' AutoModel)."
        )
    for name in HUB_WEIGHT_FILES:
        weights = folder / name
        if weights.exists():
            _check_weights_file(weights)
            return


def _check_weights_file(path: Path) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise ValueError(f"{path}: cannot read the weights file ({error.strerror or error}).") from None
    if path.name == "pytorch_model.bin":
        load_original_state_dict(path)  # refuses pickled objects without running them, checks the dtypes
        return
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            dtypes = {key: handle.get_slice(key).get_dtype() for key in handle.keys()}
    except (SafetensorError, OSError, ValueError):
        return  # a corrupt file is named by the load itself
    check_floating_weights(dtypes, path)


# How far a checkpoint's filterbank may be from ours, relative to its largest value. torchaudio computes the filters
# in float32 (mel points, slopes): up to 1.7e-5 from the float64 ones over the common settings (16-48 kHz, 80-128
# mels); filters of other settings (f_max, norm, scale, f_min) differ by 1e-2 to 1 and more.
FILTERBANK_TOLERANCE = 1e-4


def check_mel_buffers(state_dict: dict[str, torch.Tensor], extractor, source: str) -> None:
    """The original mel checkpoints carry torchaudio's filterbank and window: ours must be the same (to float32
    rounding), or our features would not be what the model was trained on."""
    filterbank = state_dict.get("feature_extractor.mel_spec.mel_scale.fb")
    if filterbank is not None:
        ours = torch.from_numpy(extractor.mel_filters)
        if tuple(filterbank.shape) != tuple(ours.shape):
            raise ConversionError(
                f"{source}: the checkpoint's mel filterbank has shape {tuple(filterbank.shape)}, config.yaml implies "
                f"{tuple(ours.shape)}"
            )
        difference = _filterbank_difference(filterbank, ours)
        if difference > FILTERBANK_TOLERANCE:
            raise ConversionError(
                f"{source}: the checkpoint's mel filterbank differs from the one config.yaml describes (max difference "
                f"{difference:.3g} of the largest filter value, float32 rounding stays below "
                f"{FILTERBANK_TOLERANCE:g}); {_matching_filterbank(filterbank, extractor)}"
            )
    window = state_dict.get("feature_extractor.mel_spec.spectrogram.window")
    if window is not None:
        ours = torch.from_numpy(extractor.window)
        if tuple(window.shape) != tuple(ours.shape) or float((window.float() - ours).abs().max()) > 1e-6:
            raise ConversionError(f"{source}: the checkpoint's STFT window is not the periodic Hann window of n_fft")


def _filterbank_difference(filterbank: torch.Tensor, ours: torch.Tensor) -> float:
    scale = float(ours.abs().max()) or 1.0
    return float((filterbank.float() - ours).abs().max()) / scale


def _matching_filterbank(filterbank: torch.Tensor, extractor) -> str:
    """Which mel settings the checkpoint's filters were made with, among the common ones, as advice."""
    from transformers.audio_utils import mel_filter_bank

    nyquist = extractor.sampling_rate / 2
    for f_min in dict.fromkeys((extractor.f_min, 0.0)):
        for f_max in dict.fromkeys((extractor.f_max, 8000.0, nyquist)):
            for norm in (None, "slaney"):
                for scale in ("htk", "slaney"):
                    if f_max > nyquist or f_min >= f_max:
                        continue
                    candidate = mel_filter_bank(
                        num_frequency_bins=extractor.n_fft // 2 + 1,
                        num_mel_filters=extractor.feature_size,
                        min_frequency=f_min,
                        max_frequency=f_max,
                        sampling_rate=extractor.sampling_rate,
                        norm=norm,
                        mel_scale=scale,
                    )
                    if _filterbank_difference(filterbank, torch.from_numpy(candidate).float()) <= FILTERBANK_TOLERANCE:
                        return (
                            f"it matches f_min: {f_min:g}, f_max: {f_max:g}, norm: {norm or 'null'}, mel_scale: "
                            f"{scale}: state these in config.yaml's feature_extractor.init_args"
                        )
    return "its training code used mel settings config.yaml does not state (f_min, f_max, norm, mel_scale)"


# Weights files an original-format folder may hold, in the order they are looked for (then a single *.ckpt).
ORIGINAL_WEIGHTS_NAMES = (ORIGINAL_WEIGHTS_NAME, "model.safetensors", "pytorch_model.safetensors")


def original_weights_in(folder: str | os.PathLike, name: str | None = None) -> Path | None:
    """The weights file of an original-format folder: `name` if given, else the first of `ORIGINAL_WEIGHTS_NAMES`
    there, else its only `*.safetensors` or `*.ckpt` file; `None` when there is none (or several to choose from)."""
    folder = Path(folder)
    if name is not None:
        return folder / name
    for candidate in ORIGINAL_WEIGHTS_NAMES:
        if (folder / candidate).is_file():
            return folder / candidate
    for pattern in ("*.safetensors", "*.ckpt"):
        found = sorted(path for path in folder.glob(pattern) if path.is_file())
        if len(found) == 1:
            return found[0]
        if len(found) > 1 and (folder / ORIGINAL_CONFIG_NAME).is_file():
            raise ConversionError(
                f"{folder}: {len(found)} weight files could be the checkpoint ({', '.join(p.name for p in found)}); "
                "name the one to convert (the conversion script's --weights FILE), or keep only it in the folder"
            )
    return None


def _is_safetensors(path: Path) -> bool:
    """A safetensors file starts with the length of its JSON header (8 bytes, little-endian), then "{"."""
    if path.suffix == ".safetensors":
        return True
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return int.from_bytes(head[:8], "little") < path.stat().st_size


def find_original_checkpoint(name_or_path: str | os.PathLike, **hub_kwargs) -> tuple[Path, Path] | None:
    """Paths of `config.yaml` and `pytorch_model.bin` if `name_or_path` (a folder or a Hub repository id) is an
    original-format Vocos checkpoint, i.e. has those and no `config.json`; else `None`.

    `hub_kwargs` (`cache_dir`, `revision`, `token`, `local_files_only`, `force_download`, `subfolder`) go to the Hub
    download, which honours the cache and offline mode.
    """
    name_or_path = str(name_or_path)
    subfolder = hub_kwargs.get("subfolder") or ""
    if os.path.isdir(name_or_path):
        folder = Path(name_or_path, subfolder)
        weights = original_weights_in(folder)
        if (folder / "config.json").exists() or not (folder / ORIGINAL_CONFIG_NAME).is_file() or weights is None:
            return None
        return folder / ORIGINAL_CONFIG_NAME, weights
    if os.path.exists(name_or_path):
        return None
    from transformers.utils import cached_file

    kwargs = {key: hub_kwargs[key] for key in HUB_KWARGS if hub_kwargs.get(key) is not None}
    try:
        if cached_file(name_or_path, "config.json", _raise_exceptions_for_missing_entries=False, **kwargs) is not None:
            return None
        config = cached_file(name_or_path, ORIGINAL_CONFIG_NAME, _raise_exceptions_for_missing_entries=False, **kwargs)
        if config is None:
            return None
        weights = cached_file(name_or_path, ORIGINAL_WEIGHTS_NAME, **kwargs)
    except OSError:
        return None
    return Path(config), Path(weights)


# from_pretrained arguments that locate files, passed on when looking for other files of the same checkpoint.
HUB_KWARGS = ("cache_dir", "revision", "token", "local_files_only", "force_download", "subfolder")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
