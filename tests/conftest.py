"""Shared fixtures: speech-like test audio, small configs, and an offline Hugging Face Hub cache."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import torch

# Sizes small enough to keep the suite fast (VocosConfig / VocosEncodecConfig fields); the parity tests use the
# release sizes (the configs' defaults).
SMALL_MEL = {"hidden_size": 32, "intermediate_size": 48, "num_layers": 2}
SMALL_ENCODEC = {"hidden_size": 32, "intermediate_size": 48, "num_layers": 2}
RELEASE_ENCODEC = {}


def small_config(variant: str, **overrides):
    """A small config of `variant` ("mel" or "encodec")."""
    from hf_vocos import VocosConfig, VocosEncodecConfig

    if variant == "mel":
        return VocosConfig(**SMALL_MEL, **overrides)
    return VocosEncodecConfig(**SMALL_ENCODEC, **overrides)


def model_for(config):
    """A random model of `config`'s class: VocosEncodecModel for an EnCodec config, VocosModel otherwise."""
    from hf_vocos import VocosEncodecModel, VocosModel

    return (VocosEncodecModel if config.is_codes_model else VocosModel)(config)


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: slow test, run with --runslow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def speech_like(num_samples: int, sampling_rate: int = 24000, seed: int = 0) -> np.ndarray:
    """A deterministic speech-like signal: a glottal-like harmonic source with moving pitch through three formant
    resonators, syllable-rate amplitude envelope with pauses, fricative noise bursts and a low noise floor."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / sampling_rate
    f0 = 120 + 25 * np.sin(2 * np.pi * 1.3 * t + seed) + 10 * np.sin(2 * np.pi * 5.1 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sampling_rate
    source = np.zeros(num_samples)
    for harmonic in range(1, 60):
        audible = harmonic * f0 < sampling_rate / 2 - 200
        source += audible * np.sin(harmonic * phase) / harmonic
    voiced = np.zeros(num_samples)
    for formant, bandwidth in ((650, 80), (1150, 100), (2600, 160)):
        radius = np.exp(-np.pi * bandwidth / sampling_rate)
        theta = 2 * np.pi * formant / sampling_rate
        voiced += scipy.signal.lfilter([1 - radius], [1, -2 * radius * np.cos(theta), radius**2], source)
    envelope = np.clip(np.sin(2 * np.pi * 3.7 * t + 0.5 * seed), 0, None) ** 0.7
    fricative_gate = (np.sin(2 * np.pi * 1.1 * t + seed) > 0.85).astype(float)
    fricative = scipy.signal.lfilter(
        *scipy.signal.butter(4, 3500 / (sampling_rate / 2), "high"), rng.standard_normal(num_samples)
    )
    signal = voiced * envelope + 0.3 * fricative * fricative_gate + 1e-4 * rng.standard_normal(num_samples)
    return (0.5 * signal / np.abs(signal).max()).astype(np.float32)


@pytest.fixture(scope="session")
def speech():
    """One second of speech-like audio at 24 kHz."""
    return speech_like(24000)


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random values in every parameter, norms and layer scales included (their init values are 1 or constants,
    which would hide a swapped or ignored weight)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if "norm" in name or name.endswith("layer_scale_parameter"):
                parameter.copy_(1.0 + 0.1 * noise)
            else:
                parameter.copy_(0.05 * noise)
        if hasattr(model, "codebook_weights"):  # (a buffer: the codebooks are EnCodec's, not trained here)
            model.codebook_weights.copy_(torch.randn(model.codebook_weights.shape, generator=generator))
    return model.eval()


def tiny_encodec_model(seed: int = 0):
    """A small random transformers EncodecModel with the 24 kHz model's rates (75 frames/s, 1024-entry codebooks)."""
    from transformers import EncodecConfig, EncodecModel

    config = EncodecConfig(
        num_filters=4, hidden_size=16, codebook_dim=16, num_lstm_layers=1, upsampling_ratios=[8, 5, 4, 2]
    )
    torch.manual_seed(seed)
    model = EncodecModel(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(0.2 * torch.randn(parameter.shape, generator=generator))
        for layer in model.quantizer.layers:
            layer.codebook.embed.copy_(torch.randn(layer.codebook.embed.shape, generator=generator))
    return model.eval()


def fill_hub_cache(cache_dir: Path, repo_id: str, folder: Path) -> Path:
    """Put `folder` into a Hugging Face Hub cache as the `main` revision of model repo `repo_id`, in the cache's
    documented layout (`models--{org}--{name}/refs/main` holding a commit hash, `snapshots/{hash}/...`), so that
    with `HF_HUB_CACHE=cache_dir HF_HUB_OFFLINE=1` a `from_pretrained(repo_id)` resolves through huggingface_hub."""
    repo_dir = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)
    snapshot = repo_dir / "snapshots" / commit
    shutil.copytree(folder, snapshot, dirs_exist_ok=True)
    return snapshot


def save_small_checkpoint(folder: Path, variant: str = "mel", seed: int = 0) -> Path:
    """A small random model and its processor saved in `folder` (EnCodec: with a tiny random EnCodec tokenizer)."""
    from hf_vocos import VocosFeatureExtractor, VocosProcessor

    randomize_(model_for(small_config(variant)), seed=seed).save_pretrained(folder)
    tokenizer = None if variant == "mel" else tiny_encodec_model(seed=seed + 1)
    VocosProcessor(VocosFeatureExtractor(), audio_tokenizer=tokenizer).save_pretrained(folder)
    return Path(folder)


def require_packed_linear(dtype: torch.dtype) -> None:
    """Skip, saying why, where oneDNN cannot pack linear weights in `dtype` on this CPU (bfloat16 needs AVX-512
    BW/VL/DQ or AVX-NE-CONVERT on x86)."""
    from hf_vocos.capabilities import onednn_packed_linear_available

    if not onednn_packed_linear_available(dtype):
        pytest.skip(
            f"oneDNN cannot pack {dtype} linear weights on this CPU ({torch.backends.cpu.get_cpu_capability()})"
        )


def ours_from_original(original: torch.nn.Module, config):
    """Our model (on the CPU) holding the weights of the original vocos model `original` (on any device): every key
    accounted for, the window the original's."""
    from hf_vocos.checkpoint_formats import rename_weights

    weights = {key: value.cpu() for key, value in original.state_dict().items()}
    model = model_for(config).eval()
    model.load_checked(rename_weights(weights), "original", weights.keys())
    torch.testing.assert_close(weights["head.istft.window"], model.decoder.window, rtol=0, atol=0)
    return model


@pytest.fixture(scope="module")
def mel_pair():
    """(the original mel Vocos at the release size with random weights, ours holding the same weights)."""
    from reference import build_mel_vocos

    from hf_vocos import VocosConfig

    original = build_mel_vocos(seed=0)
    return original, ours_from_original(original, VocosConfig())


@pytest.fixture(scope="module")
def encodec_pair():
    """(the original EnCodec Vocos at the release size with random weights, ours holding the same weights)."""
    from reference import build_encodec_vocos

    from hf_vocos import VocosEncodecConfig

    original = build_encodec_vocos(seed=0)
    return original, ours_from_original(original, VocosEncodecConfig())


# A tiny generator for the training tests (tests/test_training_*.py).
TINY_TRAINING = {"hidden_size": 32, "intermediate_size": 64, "num_layers": 2}


@pytest.fixture(scope="module")
def training_clips(tmp_path_factory):
    """A folder with `train` (4 clips) and `validation` (1 clip) of 2 s speech-like audio at 24 kHz."""
    import soundfile

    root = tmp_path_factory.mktemp("training")
    for name, seeds in (("train", range(4)), ("validation", (50,))):
        (root / name).mkdir()
        for seed in seeds:
            soundfile.write(root / name / f"{seed}.wav", speech_like(24000 * 2, seed=seed), 24000, subtype="FLOAT")
    return root


def tiny_training_config(clips: Path, tmp_path: Path, **overrides):
    """A TrainingConfig of a few fast steps of the tiny generator on `clips`, writing under `tmp_path`."""
    from hf_vocos.training import TrainingConfig

    values = dict(
        output_dir=str(tmp_path / "run"),
        train_data=str(clips / "train"),
        model_config=TINY_TRAINING,
        batch_size=2,
        crop_seconds=0.25,
        max_steps=4,
        losses=["mel"],
        discriminators=[],
        log_every=1000,
        save_every=1000,
        seed=3,
    )
    values.update(overrides)
    return TrainingConfig(**values)
