"""Converting original Vocos checkpoints (`config.yaml` + `pytorch_model.bin`, from the `vocos` package) into
hf_vocos models and processors, EnCodec weights included, and verifying them against the original implementation.

This is tooling (`conversion_scripts/convert_original_vocos.py` runs it). Reading the formats themselves is
`checkpoint_formats`, which `VocosModel.from_pretrained` uses to load any of them directly.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import re
import sys
import types
from pathlib import Path

import torch
from transformers import EncodecConfig, EncodecModel
from transformers.utils import logging

from .checkpoint_formats import (
    DEFAULT_ENCODEC_REPO,
    ORIGINAL_CONFIG_NAME,
    ORIGINAL_WEIGHTS_NAME,
    ORIGINAL_WEIGHTS_NAMES,
    ConversionError,
    check_mel_buffers,
    configs_from_original,
    every_problem,
    find_original_checkpoint,
    load_original_state_dict,
    original_weights_in,
    read_original_config,
    rename_weights,
)
from .feature_extraction_vocos import VocosFeatureExtractor
from .modeling_vocos import VocosEncodecModel, VocosModel
from .processing_vocos import VocosEncodecProcessor, VocosProcessor

logger = logging.get_logger(__name__)

__all__ = [
    "ConversionError",
    "DEFAULT_ENCODEC_REPO",
    "ORIGINAL_CONFIG_NAME",
    "ORIGINAL_WEIGHTS_NAME",
    "configs_from_original",
    "convert_encodec_checkpoint",
    "convert_original_checkpoint",
    "find_original_checkpoint",
    "import_original_vocos",
    "load_original_state_dict",
    "original_weights_in",
    "read_original_config",
    "verify_against_original",
]


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
    original, state_dict = _read_checkpoint(config_path, weights_path)
    config, extractor = configs_from_original(original)
    if original["feature_extractor"].get("matcha_fork"):
        logger.warning(
            f"{config_path}: the mel settings are the `matcha` fork of vocos' (f_min/f_max/norm/mel_scale): its "
            f"features are clamped at {extractor.log_floor:g} before the log, which the converted feature extractor "
            "does too (state clip_val in config.yaml if this model was trained otherwise)."
        )
    check_mel_buffers(state_dict, extractor, str(weights_path))
    model = (VocosEncodecModel if config.is_codes_model else VocosModel)(config)
    model.load_checked(rename_weights(state_dict), str(weights_path), state_dict.keys())

    if not config.is_codes_model:
        if encodec_checkpoint is not None:
            raise ConversionError("--encodec-checkpoint was given, but this is a mel checkpoint (it uses no EnCodec)")
        return model, VocosProcessor(extractor)
    if encodec_checkpoint is None:
        return model, VocosEncodecProcessor(extractor, encodec_name_or_path=encodec_name_or_path)
    tokenizer = convert_encodec_checkpoint(encodec_checkpoint)
    train_codebooks = original["feature_extractor"]["init_args"]["train_codebooks"]
    codebooks = torch.cat([layer.codebook.embed for layer in tokenizer.quantizer.layers[: config.num_codebooks]])
    if not train_codebooks and not torch.equal(codebooks, model.codebook_weights):
        logger.warning(
            "The Vocos codebook table differs from the EnCodec checkpoint's codebooks although train_codebooks is "
            "false: are the EnCodec weights the ones this Vocos was trained with?"
        )
    return model, VocosEncodecProcessor(extractor, audio_tokenizer=tokenizer)


def _read_checkpoint(config_path, weights_path):
    """The parsed config.yaml and the state dict; every problem with either reported at once, in one
    `ConversionError`."""
    problems, original, state_dict = [], None, None
    try:
        original = read_original_config(config_path)
    except ConversionError as error:
        problems.extend(error.problems)
    if weights_path is None:
        problems.append(
            f"no weights file: looked for {', '.join(ORIGINAL_WEIGHTS_NAMES)} and a single *.safetensors or *.ckpt "
            "(name it with --weights)"
        )
    else:
        try:
            state_dict = load_original_state_dict(weights_path)
        except ConversionError as error:
            problems.append(str(error))
    if state_dict is not None:
        names = rename_weights(state_dict)
        if not any(key.startswith(("layers.", "embed.", "decoder.out.")) for key in names):
            problems.append(
                f"{weights_path}: no weight has a Vocos name (backbone.*, head.*; found e.g. "
                f"{sorted(state_dict)[:3]}): another architecture, or another framework's export (e.g. MLX)"
            )
    folder = Path(config_path).parent
    if (folder / "config.json").is_file() and not (folder / ORIGINAL_CONFIG_NAME).is_file():
        problems.append(
            f"{folder / 'config.json'}: the folder has a config.json and no config.yaml: not the original vocos "
            "format (a transformers checkpoint loads with VocosModel.from_pretrained directly; other ports, e.g. "
            "MLX, cannot be converted)"
        )
    if problems:
        raise every_problem(problems)
    return original, state_dict


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
    signal = signal * (0.6 + 0.4 * torch.sin(2 * math.pi * 3 * t)) + 0.05 * torch.randn(
        t.shape, generator=generator, dtype=torch.float64
    )
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
            codes = torch.randint(
                0, config.codebook_size, (config.num_quantizers_for_bandwidth(bandwidth), 1, 150), generator=generator
            )
            ours = model(codes=codes, bandwidth=bandwidth).audio
            features = model.codes_to_features(codes, bandwidth).float()
            kwargs = {"bandwidth_id": torch.tensor([index])} if config.use_adaptive_norm else {}
            theirs = head(backbone(features, **kwargs))
            cases[f"codes at {bandwidth:g} kbps"] = float((ours - theirs).abs().max())
    else:
        features = torch.from_numpy(
            extractor(_test_signal(extractor.sampling_rate), sampling_rate=extractor.sampling_rate)["input_features"]
        )
        ours = model(input_features=features).audio
        theirs = head(backbone(features))
        cases["log-mel of a test signal"] = float((ours - theirs).abs().max())
    return cases


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
