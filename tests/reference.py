"""The original implementation (PyPI `vocos` 0.1.0, `encodec` 0.1.1), loaded without torchaudio.

`vocos` and `encodec` import torchaudio at module load, and torchaudio cannot load with the CPU torch build. Their
model code (backbone, heads, AdaLayerNorm, codebook embedding, the EnCodec model) never calls it, so
`hf_vocos.conversion.import_original_vocos` imports them under a stand-in `torchaudio` whose every function raises,
and removes it right after: transformers decides whether torchaudio is available by looking for the package, and
must not find the stand-in. Nothing computed by the stand-in can serve as a reference value, since it computes
nothing; the mel buffers an original checkpoint carries are computed here with librosa instead.

Everything the tests need from the original goes through this module: building models with random weights in the
original's own classes, saving them in the original's on-disk format, and running them.
"""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import torch
import yaml
from frontends import torchaudio_filterbank

from hf_vocos.conversion import import_original_vocos

original = import_original_vocos()
# Kept before build_encodec_vocos temporarily replaces the class's factory (EncodecFeatures calls it to download).
_encodec_24khz_factory = original.encodec_model.EncodecModel.encodec_model_24khz


# Release sizes of the two published checkpoints (from their config.yaml files).
MEL_24KHZ = {
    "sample_rate": 24000,
    "n_fft": 1024,
    "hop_length": 256,
    "n_mels": 100,
    "padding": "center",
    "dim": 512,
    "intermediate_dim": 1536,
    "num_layers": 8,
}
ENCODEC_24KHZ = {
    "bandwidths": [1.5, 3.0, 6.0, 12.0],
    "dim": 384,
    "intermediate_dim": 1152,
    "num_layers": 8,
    "n_fft": 1280,
    "hop_length": 320,
    "padding": "same",
}


def _randomize(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Give every parameter random values (the original initialises norms to 1/0 and layer scales to constants,
    which would let a swapped or dropped weight go unnoticed)."""
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if name.endswith("gamma") or "norm" in name or "scale" in name or "shift" in name:
                parameter.copy_(1.0 + 0.1 * torch.randn(parameter.shape, generator=generator))
            else:
                parameter.copy_(0.05 * torch.randn(parameter.shape, generator=generator))


def build_mel_vocos(seed: int = 0, **overrides) -> torch.nn.Module:
    """An original `vocos.Vocos` mel model (backbone + ISTFT head) with random weights, release sizes by default.

    Its `feature_extractor` is left out (None): the original's mel needs torchaudio; the tests compare our mel with
    librosa instead.
    """
    sizes = {**MEL_24KHZ, **overrides}
    generator = torch.Generator().manual_seed(seed)
    backbone = original.vocos_models.VocosBackbone(
        input_channels=sizes["n_mels"],
        dim=sizes["dim"],
        intermediate_dim=sizes["intermediate_dim"],
        num_layers=sizes["num_layers"],
    )
    head = original.vocos_heads.ISTFTHead(
        dim=sizes["dim"], n_fft=sizes["n_fft"], hop_length=sizes["hop_length"], padding=sizes["padding"]
    )
    model = original.vocos_pretrained.Vocos(feature_extractor=torch.nn.Identity(), backbone=backbone, head=head)
    _randomize(model, generator)
    return model.eval()


def build_encodec_model(seed: int = 0):
    """The `encodec` package's 24 kHz model with random weights (no download), in eval mode."""
    model = _encodec_24khz_factory(pretrained=False)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(0.05 * torch.randn(parameter.shape, generator=generator))
        for layer in model.quantizer.vq.layers:
            codebook = layer._codebook
            codebook.embed.copy_(torch.randn(codebook.embed.shape, generator=generator))
            codebook.inited.fill_(True)
    return model.eval()


def build_encodec_vocos(seed: int = 0, **overrides) -> torch.nn.Module:
    """An original `vocos.Vocos` EnCodec model (EncodecFeatures + AdaLayerNorm backbone + "same" ISTFT head) with
    random weights, release sizes by default. The EnCodec model inside is the random one of `build_encodec_model`,
    and the codebook table is random too."""
    sizes = {**ENCODEC_24KHZ, **overrides}
    encodec_class = original.encodec_model.EncodecModel
    factory = encodec_class.encodec_model_24khz
    # EncodecFeatures downloads the pretrained EnCodec; give it the random one instead.
    encodec_class.encodec_model_24khz = staticmethod(lambda pretrained=True, **kwargs: build_encodec_model(seed))
    try:
        feature_extractor = original.vocos_feature_extractors.EncodecFeatures(
            encodec_model="encodec_24khz", bandwidths=sizes["bandwidths"]
        )
    finally:
        encodec_class.encodec_model_24khz = factory
    backbone = original.vocos_models.VocosBackbone(
        input_channels=128,
        dim=sizes["dim"],
        intermediate_dim=sizes["intermediate_dim"],
        num_layers=sizes["num_layers"],
        adanorm_num_embeddings=len(sizes["bandwidths"]),
    )
    head = original.vocos_heads.ISTFTHead(
        dim=sizes["dim"], n_fft=sizes["n_fft"], hop_length=sizes["hop_length"], padding=sizes["padding"]
    )
    model = original.vocos_pretrained.Vocos(feature_extractor=feature_extractor, backbone=backbone, head=head)
    generator = torch.Generator().manual_seed(seed + 1)
    _randomize(model.backbone, generator)
    _randomize(model.head, generator)
    # The codebook table stays what EncodecFeatures made it: the (random) EnCodec codebooks, concatenated.
    return model.eval()


def decode_features(model: torch.nn.Module, features: torch.Tensor, bandwidth_id: int | None = None) -> torch.Tensor:
    """The original's `Vocos.decode`: features (batch, channels, frames) -> audio (batch, samples)."""
    kwargs = {} if bandwidth_id is None else {"bandwidth_id": torch.tensor([bandwidth_id])}
    with torch.inference_mode():
        return model.decode(features, **kwargs)


def decode_codes(model: torch.nn.Module, codes: torch.Tensor, bandwidth_id: int) -> torch.Tensor:
    """The original's codes path: `codes_to_features` then `decode`."""
    with torch.inference_mode():
        features = model.codes_to_features(codes)
    return decode_features(model, features, bandwidth_id)


def encodec_codes(encodec_model, audio: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """Codes the way the original's `EncodecFeatures.get_encodec_codes` makes them: (n_q, batch, frames)."""
    encodec_model.set_target_bandwidth(bandwidth)
    with torch.inference_mode():
        embeddings = encodec_model.encoder(audio[:, None, :])
        return encodec_model.quantizer.encode(embeddings, encodec_model.frame_rate, encodec_model.bandwidth)


def mel_buffers(sample_rate, n_fft, n_mels, f_min=0.0, f_max=None, norm=None, mel_scale="htk", like="torchaudio"):
    """The buffers torchaudio's MelSpectrogram puts in a mel checkpoint's state dict (its Hann window and its filter
    bank, (n_fft // 2 + 1, n_mels)), computed independently of hf_vocos: as torchaudio does, in float32
    (`like="torchaudio"`, what real checkpoints hold), or librosa's float64 filters rounded to float32."""
    if like == "torchaudio":
        filters = torchaudio_filterbank(sample_rate, n_fft, n_mels, f_min, f_max, norm, mel_scale)
    else:
        filters = librosa.filters.mel(
            sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max, htk=mel_scale == "htk", norm=norm
        )
        filters = torch.from_numpy(np.ascontiguousarray(filters.T, dtype=np.float32))
    return {
        "feature_extractor.mel_spec.spectrogram.window": torch.hann_window(n_fft),
        "feature_extractor.mel_spec.mel_scale.fb": filters.contiguous(),
    }


def mel_config_yaml(feature_args: dict, dim: int, intermediate_dim: int, num_layers: int, head_n_fft=None) -> dict:
    """An original mel config.yaml, released layout."""
    return {
        "feature_extractor": {
            "class_path": "vocos.feature_extractors.MelSpectrogramFeatures",
            "init_args": feature_args,
        },
        "backbone": {
            "class_path": "vocos.models.VocosBackbone",
            "init_args": {
                "input_channels": feature_args["n_mels"],
                "dim": dim,
                "intermediate_dim": intermediate_dim,
                "num_layers": num_layers,
            },
        },
        "head": {
            "class_path": "vocos.heads.ISTFTHead",
            "init_args": {
                "dim": dim,
                "n_fft": head_n_fft or feature_args["n_fft"],
                "hop_length": feature_args["hop_length"],
                "padding": feature_args["padding"],
            },
        },
    }


def encodec_config_yaml(sizes: dict = ENCODEC_24KHZ) -> dict:
    """The released EnCodec Vocos config.yaml."""
    return {
        "feature_extractor": {
            "class_path": "vocos.feature_extractors.EncodecFeatures",
            "init_args": {
                "encodec_model": "encodec_24khz",
                "bandwidths": sizes["bandwidths"],
                "train_codebooks": False,
            },
        },
        "backbone": {
            "class_path": "vocos.models.VocosBackbone",
            "init_args": {
                "input_channels": 128,
                "dim": sizes["dim"],
                "intermediate_dim": sizes["intermediate_dim"],
                "num_layers": sizes["num_layers"],
                "adanorm_num_embeddings": len(sizes["bandwidths"]),
            },
        },
        "head": {
            "class_path": "vocos.heads.ISTFTHead",
            "init_args": {
                "dim": sizes["dim"],
                "n_fft": sizes["n_fft"],
                "hop_length": sizes["hop_length"],
                "padding": sizes["padding"],
            },
        },
    }


def save_original_checkpoint(model: torch.nn.Module, folder: Path, config: dict, extra: dict | None = None) -> Path:
    """Write `config.yaml` + `pytorch_model.bin` in the original's layout. The state dict leaves out the EnCodec
    weights, as the released `pytorch_model.bin` does; `extra` adds entries (the mel buffers)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state_dict = {k: v for k, v in model.state_dict().items() if not k.startswith("feature_extractor.encodec.")}
    state_dict.update(extra or {})
    torch.save(state_dict, folder / "pytorch_model.bin")
    with open(folder / "config.yaml", "w") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    return folder
