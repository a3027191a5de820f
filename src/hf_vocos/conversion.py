"""Original Vocos checkpoints (`config.yaml` + `pytorch_model.bin`, from the `vocos` package) to hf_vocos.

The functions here are what `conversion_scripts/convert_original_vocos.py` runs, and what `VocosModel.from_pretrained`
and `VocosProcessor.from_pretrained` use to load an original-format folder or Hub repository on the fly.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import pickle
import re
import sys
import types
from pathlib import Path
from typing import Any

import torch
import yaml
from transformers import EncodecConfig, EncodecModel
from transformers.utils import logging

from .configuration_vocos import VocosConfig
from .feature_extraction_vocos import VocosFeatureExtractor

logger = logging.get_logger(__name__)

__all__ = [
    "ConversionError",
    "convert_encodec_checkpoint",
    "convert_original_checkpoint",
    "convert_original_state_dict",
    "find_original_checkpoint",
    "import_original_vocos",
    "read_original_config",
    "verify_against_original",
]

ORIGINAL_CONFIG_NAME = "config.yaml"
ORIGINAL_WEIGHTS_NAME = "pytorch_model.bin"
DEFAULT_ENCODEC_REPO = "facebook/encodec_24khz"

_MEL = "vocos.feature_extractors.MelSpectrogramFeatures"
_ENCODEC = "vocos.feature_extractors.EncodecFeatures"
_BACKBONE = "vocos.models.VocosBackbone"
_HEAD = "vocos.heads.ISTFTHead"

_REQUIRED = object()

# The init arguments each supported class accepts, with the defaults of `vocos` 0.1.0. The mel
# feature extractor's f_min/f_max/norm/mel_scale exist in later upstream revisions only; absent, they mean what 0.1.0
# (torchaudio's MelSpectrogram defaults) computes.
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
# EnCodec 24 kHz: 75 frames/s, i.e. a hop of 320 samples, and 128-dimensional codebooks.
_ENCODEC_24KHZ = {"sampling_rate": 24000, "hop_length": 320, "codebook_dim": 128, "codebook_size": 1024}


class ConversionError(ValueError):
    """A checkpoint that cannot be converted; the message is one line naming the problem."""


# --------------------------------------------------------------------------------------------------------------------
# config.yaml


def read_original_config(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read an original `config.yaml` into `{"feature_extractor"|"backbone"|"head": {"class_path", "init_args"}}`
    with every init argument filled in (defaults of `vocos` 0.1.0). Accepts the released layout (three top-level
    sections) and a training config (the same sections under `model.init_args`). Raises `ConversionError` for an
    unknown or unsupported class or argument."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such file (an original Vocos checkpoint has a {ORIGINAL_CONFIG_NAME})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConversionError(f"{path}: not valid YAML ({_first_line(error)})") from None
    if isinstance(document, dict) and "feature_extractor" not in document and isinstance(document.get("model"), dict):
        document = document["model"].get("init_args", {})
    if not isinstance(document, dict) or any(not isinstance(document.get(section), dict) for section in _SECTIONS):
        raise ConversionError(
            f"{path}: expected the sections feature_extractor, backbone and head (each with class_path and init_args)"
        )
    sections = {}
    for section, supported in _SECTIONS.items():
        class_path = document[section].get("class_path")
        init_args = document[section].get("init_args") or {}
        if class_path in _NOT_IMPLEMENTED:
            raise ConversionError(
                f"{path}: {section} class {class_path} is not supported: hf_vocos implements the ConvNeXt backbone "
                f"with the ISTFT head, not {_NOT_IMPLEMENTED[class_path]}"
            )
        if class_path not in supported:
            raise ConversionError(
                f"{path}: unknown {section} class {class_path!r}; supported: {', '.join(supported)}"
            )
        if not isinstance(init_args, dict):
            raise ConversionError(f"{path}: {section}.init_args must be a mapping, got {init_args!r}")
        signature = _SIGNATURES[class_path]
        unknown = sorted(set(init_args) - set(signature))
        if unknown:
            raise ConversionError(f"{path}: {class_path} has init arguments this conversion does not know: {unknown}")
        arguments = {**signature, **init_args}
        missing = sorted(name for name, value in arguments.items() if value is _REQUIRED)
        if missing:
            raise ConversionError(f"{path}: {class_path} is missing required init arguments {missing}")
        sections[section] = {"class_path": class_path, "init_args": arguments}
    return sections


def configs_from_original(original: dict[str, dict[str, Any]]) -> tuple[VocosConfig, VocosFeatureExtractor]:
    """`VocosConfig` and `VocosFeatureExtractor` equivalent to a parsed original config (`read_original_config`)."""
    features = original["feature_extractor"]["init_args"]
    backbone = original["backbone"]["init_args"]
    head = original["head"]["init_args"]
    is_encodec = original["feature_extractor"]["class_path"] == _ENCODEC
    if head["dim"] != backbone["dim"]:
        raise ConversionError(f"config.yaml: head.dim ({head['dim']}) differs from backbone.dim ({backbone['dim']})")

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
        sampling_rate = _ENCODEC_24KHZ["sampling_rate"]
        extractor_kwargs = {"sampling_rate": sampling_rate}
        codes_kwargs = {"bandwidths": bandwidths, "use_adaptive_norm": rows is not None}
        if backbone["input_channels"] != _ENCODEC_24KHZ["codebook_dim"]:
            raise ConversionError(
                f"config.yaml: backbone.input_channels is {backbone['input_channels']}, but EnCodec 24 kHz codebook "
                f"entries have {_ENCODEC_24KHZ['codebook_dim']} dimensions"
            )
    else:
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
        sampling_rate = features["sample_rate"]
        extractor_kwargs = {
            "feature_size": features["n_mels"],
            "sampling_rate": sampling_rate,
            "n_fft": features["n_fft"],
            "hop_length": features["hop_length"],
            "f_min": float(features["f_min"]),
            "f_max": None if features["f_max"] is None else float(features["f_max"]),
            "mel_scale": features["mel_scale"],
            "mel_norm": features["norm"],
            "stft_padding": features["padding"],
        }
        codes_kwargs = {}

    try:
        config = VocosConfig(
            input_channels=backbone["input_channels"],
            hidden_size=backbone["dim"],
            intermediate_size=backbone["intermediate_dim"],
            num_hidden_layers=backbone["num_layers"],
            # The original uses `layer_scale_init_value or 1 / num_layers`: 0 and None both mean the default.
            layer_scale_init_value=backbone["layer_scale_init_value"] or None,
            n_fft=head["n_fft"],
            hop_length=head["hop_length"],
            istft_padding=head["padding"],
            sampling_rate=sampling_rate,
            **codes_kwargs,
        )
        extractor = VocosFeatureExtractor(**extractor_kwargs)
    except ValueError as error:
        raise ConversionError(f"config.yaml: {error}") from None
    return config, extractor


# --------------------------------------------------------------------------------------------------------------------
# weights


def load_original_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load an original `pytorch_model.bin` with `torch.load(weights_only=True)`: tensors only, never code. A PyTorch
    Lightning training checkpoint is accepted too (its `state_dict`, minus the discriminators and losses)."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"unsupported (?:global: )?GLOBAL (\S+)", str(error), re.IGNORECASE)
        if found:
            raise ConversionError(
                f"{path}: refusing to unpickle it: it holds a Python object ({found.group(1)}), not just tensors; a "
                "plain state dict never does. Re-save it with torch.save(model.state_dict(), ...) from code you trust"
            ) from None
        raise ConversionError(f"{path}: not a PyTorch checkpoint, or corrupt (unpickling failed)") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise ConversionError(f"{path}: cannot be read, truncated or corrupt ({_first_line(error)})") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        # A Lightning checkpoint of the original's training run: keep the generator.
        loaded = {
            key: value for key, value in loaded["state_dict"].items() if key.startswith(("feature_extractor.", "backbone.", "head."))
        }
    if not isinstance(loaded, dict) or not loaded:
        raise ConversionError(f"{path}: expected a state dict (a mapping of names to tensors), got {type(loaded).__name__}")
    not_tensors = sorted(key for key, value in loaded.items() if not isinstance(value, torch.Tensor))
    if not_tensors:
        raise ConversionError(f"{path}: entries that are not tensors: {not_tensors[:5]}")
    return loaded


# Original keys that hold no weights of ours: buffers we derive from the config (windows, torchaudio's mel filters)
# and EnCodec's own weights, which belong to the processor's audio tokenizer, not to the vocoder.
_DERIVED_PREFIXES = ("head.istft.window", "feature_extractor.mel_spec.", "feature_extractor.encodec.")
_RENAMED = {"feature_extractor.codebook_weights": "codebook_embedding.weight"}
_KEPT_PREFIXES = ("backbone.", "head.out.")


def convert_original_state_dict(
    state_dict: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Rename an original Vocos state dict (`backbone.*`, `head.*`, `feature_extractor.*`) to `VocosModel` names.

    Returns `(converted, dropped)`: `dropped` holds the derived buffers left out (`head.istft.window`, the torchaudio
    mel buffers, EnCodec weights), so a caller can check them against what we compute. Raises `ConversionError`
    naming any key this mapping does not know, so that an unsupported architecture never loads silently.
    """
    converted, dropped, unknown = {}, {}, []
    for key, value in state_dict.items():
        if key in _RENAMED:
            converted[_RENAMED[key]] = value
        elif key.startswith(_DERIVED_PREFIXES):
            dropped[key] = value
        elif key.startswith(_KEPT_PREFIXES):
            converted[key] = value
        else:
            unknown.append(key)
    if unknown:
        shown = ", ".join(sorted(unknown)[:8]) + (" ..." if len(unknown) > 8 else "")
        raise ConversionError(f"the state dict has {len(unknown)} keys this conversion does not know: {shown}")
    return converted, dropped


def _load_checked(model: torch.nn.Module, weights: dict[str, torch.Tensor], source: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        raise ConversionError(f"{source}: the weights do not fit the configured model: {'; '.join(parts)}")
    for key, tensor in weights.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise ConversionError(
                f"{source}: {key} has shape {tuple(tensor.shape)} in the checkpoint, but the config implies "
                f"{tuple(expected[key].shape)}"
            )
    model.load_state_dict({key: tensor.to(expected[key].dtype) for key, tensor in weights.items()}, strict=True)


def _check_mel_buffers(dropped: dict[str, torch.Tensor], extractor: VocosFeatureExtractor, source: str) -> None:
    """The mel checkpoints carry torchaudio's filterbank and window: ours must be the same, or our features would not
    be what the model was trained on."""
    filterbank = dropped.get("feature_extractor.mel_spec.mel_scale.fb")
    if filterbank is not None:
        ours = torch.from_numpy(extractor.mel_filters)
        if tuple(filterbank.shape) != tuple(ours.shape):
            raise ConversionError(
                f"{source}: the checkpoint's mel filterbank has shape {tuple(filterbank.shape)}, config.yaml implies "
                f"{tuple(ours.shape)}"
            )
        difference = float((filterbank.float() - ours).abs().max())
        if difference > 1e-5:
            raise ConversionError(
                f"{source}: the checkpoint's mel filterbank differs from the one config.yaml describes (max abs "
                f"difference {difference:.3g}); its training code may have used other mel defaults: state f_min, "
                "f_max, norm and mel_scale in config.yaml"
            )
    window = dropped.get("feature_extractor.mel_spec.spectrogram.window")
    if window is not None:
        ours = torch.from_numpy(extractor.window)
        if tuple(window.shape) != tuple(ours.shape) or float((window.float() - ours).abs().max()) > 1e-6:
            raise ConversionError(f"{source}: the checkpoint's STFT window is not the periodic Hann window of n_fft")


def convert_encodec_checkpoint(path: str | os.PathLike) -> EncodecModel:
    """transformers' `EncodecModel` holding the weights of the `encodec` package's 24 kHz checkpoint
    (`encodec_24khz-*.th`, a plain state dict), loaded with `weights_only=True`."""
    source = str(path)
    state_dict = load_original_state_dict(path)
    weights = {}
    for key, value in state_dict.items():
        name = key.replace("quantizer.vq.layers.", "quantizer.layers.").replace("._codebook.", ".codebook.")
        name = re.sub(r"^(encoder|decoder)\.model\.", r"\1.layers.", name)
        name = name.replace(".conv.conv.", ".conv.").replace(".convtr.convtr.", ".conv.")
        name = name.replace(".weight_g", ".parametrizations.weight.original0")
        name = name.replace(".weight_v", ".parametrizations.weight.original1")
        weights[name] = value
    model = EncodecModel(EncodecConfig())
    _load_checked(model, weights, f"{source} (EnCodec 24 kHz)")
    return model.eval()


def convert_original_checkpoint(
    config_path: str | os.PathLike,
    weights_path: str | os.PathLike,
    encodec_checkpoint: str | os.PathLike | None = None,
    encodec_name_or_path: str = DEFAULT_ENCODEC_REPO,
):
    """Convert an original checkpoint into a `VocosModel` (eval mode) and its `VocosProcessor`.

    For EnCodec checkpoints the processor's audio tokenizer is converted from `encodec_checkpoint` (the `encodec`
    package's state dict) when given; otherwise the processor points at the Hub repository `encodec_name_or_path`,
    loaded on first use.
    """
    from .modeling_vocos import VocosModel
    from .processing_vocos import VocosProcessor

    original = read_original_config(config_path)
    config, extractor = configs_from_original(original)
    state_dict = load_original_state_dict(weights_path)
    weights, dropped = convert_original_state_dict(state_dict)
    _check_mel_buffers(dropped, extractor, str(weights_path))
    model = VocosModel(config)
    _load_checked(model, weights, str(weights_path))
    model.eval()

    if not config.is_codes_model:
        if encodec_checkpoint is not None:
            raise ConversionError("--encodec-checkpoint was given, but this is a mel checkpoint (it uses no EnCodec)")
        return model, VocosProcessor(extractor)
    if encodec_checkpoint is None:
        return model, VocosProcessor(extractor, encodec_name_or_path=encodec_name_or_path)
    tokenizer = convert_encodec_checkpoint(encodec_checkpoint)
    train_codebooks = original["feature_extractor"]["init_args"]["train_codebooks"]
    codebooks = torch.cat([layer.codebook.embed for layer in tokenizer.quantizer.layers[: config.num_codebooks]])
    if not train_codebooks and not torch.equal(codebooks, model.codebook_embedding.weight.detach()):
        logger.warning(
            "The Vocos codebook table differs from the EnCodec checkpoint's codebooks although train_codebooks is "
            "false: are the EnCodec weights the ones this Vocos was trained with?"
        )
    return model, VocosProcessor(extractor, audio_tokenizer=tokenizer)


# --------------------------------------------------------------------------------------------------------------------
# locating original checkpoints


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
        files = folder / ORIGINAL_CONFIG_NAME, folder / ORIGINAL_WEIGHTS_NAME
        if (folder / "config.json").exists() or not all(path.is_file() for path in files):
            return None
        return files
    if os.path.exists(name_or_path):
        return None
    from transformers.utils import cached_file

    kwargs = {
        key: hub_kwargs[key]
        for key in ("cache_dir", "revision", "token", "local_files_only", "force_download", "subfolder")
        if hub_kwargs.get(key) is not None
    }
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


# --------------------------------------------------------------------------------------------------------------------
# the original implementation, for verification

_STAND_IN_MODULES = (
    "torchaudio",
    "torchaudio.transforms",
    "torchaudio.functional",
    "torchaudio.functional.functional",
    "torchaudio.sox_effects",
)


def _refuse(*args, **kwargs):
    raise RuntimeError("torchaudio stand-in: the original implementation must not compute anything with torchaudio")


class _Refused:
    def __init__(self, *args, **kwargs):
        _refuse()


@contextlib.contextmanager
def _torchaudio_stand_in():
    """Put a `torchaudio` whose every function raises into `sys.modules`, and take it out again afterwards:
    transformers decides whether torchaudio is available by looking for the package, and must not find this."""
    saved = {name: sys.modules.get(name) for name in _STAND_IN_MODULES}
    modules = {name: types.ModuleType(name) for name in _STAND_IN_MODULES}
    for name in ("MelSpectrogram", "Spectrogram", "Resample"):
        setattr(modules["torchaudio.transforms"], name, _Refused)
    for name in ("_hz_to_mel", "_mel_to_hz"):
        setattr(modules["torchaudio.functional.functional"], name, _refuse)
    modules["torchaudio.functional"].resample = _refuse
    modules["torchaudio.functional"].functional = modules["torchaudio.functional.functional"]
    modules["torchaudio"].load = modules["torchaudio"].save = _refuse
    modules["torchaudio"].transforms = modules["torchaudio.transforms"]
    modules["torchaudio"].functional = modules["torchaudio.functional"]
    modules["torchaudio"].sox_effects = modules["torchaudio.sox_effects"]
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


_ORIGINAL_MODULES = (
    "encodec",
    "encodec.model",
    "vocos",
    "vocos.pretrained",
    "vocos.models",
    "vocos.heads",
    "vocos.modules",
    "vocos.feature_extractors",
    "vocos.spectral_ops",
)


def import_original_vocos() -> types.SimpleNamespace:
    """Import the original `vocos` and `encodec` packages (optional; for verification and tests).

    They import torchaudio at module load, which fails with the CPU torch build (or when torchaudio is absent);
    their model code never calls it. So when a plain import fails, they are imported under a stand-in `torchaudio`
    that refuses every call and is removed right after. Returns the modules as attributes (`vocos_models`, ...).
    Raises `ImportError` when the packages are not installed.
    """
    try:
        modules = {name: importlib.import_module(name) for name in _ORIGINAL_MODULES}
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] in ("vocos", "encodec"):
            raise ImportError(
                "the original implementation is not installed: pip install --no-deps vocos==0.1.0 encodec==0.1.1"
            ) from error
        modules = None
    except (ImportError, OSError, RuntimeError):
        modules = None
    if modules is None:
        for name in list(sys.modules):
            if name.split(".")[0] in ("vocos", "encodec", "torchaudio"):
                del sys.modules[name]
        with _torchaudio_stand_in():
            modules = {name: importlib.import_module(name) for name in _ORIGINAL_MODULES}
    return types.SimpleNamespace(**{name.replace(".", "_"): module for name, module in modules.items()})


def _test_signal(sampling_rate: int, seconds: float = 1.0) -> torch.Tensor:
    """A deterministic harmonic sweep with vibrato and a noise burst, for verification."""
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(int(seconds * sampling_rate), dtype=torch.float64) / sampling_rate
    f0 = 110 + 90 * t + 8 * torch.sin(2 * math.pi * 5 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / sampling_rate
    signal = sum(torch.sin(k * phase) / k for k in range(1, 30))
    signal = signal * (0.6 + 0.4 * torch.sin(2 * math.pi * 3 * t)) + 0.05 * torch.randn(t.shape, generator=generator, dtype=torch.float64)
    return (0.4 * signal / signal.abs().max()).float()[None]


@torch.no_grad()
def verify_against_original(model, extractor: VocosFeatureExtractor, config_path, weights_path) -> dict[str, float]:
    """Decode a test signal with `model` and with the original implementation built from the same `config.yaml` and
    `pytorch_model.bin`; return the max abs difference of the audio per case (mel: one case; EnCodec: one per
    bandwidth, from the same random codes). Raises `ImportError` if the original cannot be imported."""
    original_modules = import_original_vocos()
    original = read_original_config(config_path)
    state_dict = load_original_state_dict(weights_path)

    def build(section):
        module_name, class_name = original[section]["class_path"].rsplit(".", 1)
        module = getattr(original_modules, module_name.replace(".", "_"))
        built = getattr(module, class_name)(**original[section]["init_args"])
        built.load_state_dict({k[len(section) + 1 :]: v for k, v in state_dict.items() if k.startswith(section + ".")})
        return built.eval()

    backbone, head = build("backbone"), build("head")
    config = model.config
    cases = {}
    if config.is_codes_model:
        generator = torch.Generator().manual_seed(0)
        for index, bandwidth in enumerate(config.bandwidths):
            codes = torch.randint(0, config.codebook_size, (config.num_quantizers_for_bandwidth(bandwidth), 1, 150), generator=generator)
            ours = model(codes=codes, bandwidth=bandwidth).audio
            features = model.codes_to_features(codes, bandwidth).float()
            kwargs = {"bandwidth_id": torch.tensor([index])} if config.use_adaptive_norm else {}
            theirs = head(backbone(features, **kwargs))
            cases[f"codes at {bandwidth:g} kbps"] = float((ours - theirs).abs().max())
    else:
        features = torch.from_numpy(extractor(_test_signal(extractor.sampling_rate), sampling_rate=extractor.sampling_rate)["input_features"])
        ours = model(input_features=features).audio
        theirs = head(backbone(features))
        cases["log-mel of a test signal"] = float((ours - theirs).abs().max())
    return cases


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
