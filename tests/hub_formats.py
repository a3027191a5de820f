"""The on-disk formats of Vocos checkpoints, for the tests: writers that put an original model's weights into each
format's folder layout, and an independent reader of the Hub's current format (generation E).

The facts are those of ../shared/hub-formats.md: generations A-E of the Vocos integration proposed to transformers
(E is what the Hub's `hf-audio/vocos-*` repositories hold), hf_vocos's own format before it adopted E, and the
original `vocos` package's. The writers start from the original's state dict (`tests/reference.py` builds it), so a
checkpoint in any format must decode to the original's audio.

`decode_generation_e` reads a generation-E folder the way the proposed transformers classes do, written here from the
format's description (a strict key and shape check, then channels-first convolutions, `torch.istft` for "center",
fold-based overlap-add for "same"): what hf_vocos saves must load there with nothing missing or unexpected.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

GENERATIONS = ("A", "B", "C", "D", "E", "hf_vocos")
BANDWIDTHS = [1.5, 3.0, 6.0, 12.0]


def rename_original_key(key: str, generation: str) -> str | None:
    """An original vocos state-dict key under `generation`'s name, or None where that format does not store it."""
    if key.startswith(("feature_extractor.mel_spec.", "feature_extractor.encodec.")):
        return None
    if key == "feature_extractor.codebook_weights":
        return {"A": "codebook_weights", "E": "codebook_weights", "hf_vocos": "codebook_embedding.weight"}.get(
            generation
        )
    if key == "head.istft.window":
        return {
            "A": "head.istft.window",
            "B": "head.window",
            "C": "head.istft.window",
            "D": "decoder.window",
            "E": "decoder.window",
        }.get(generation)
    if generation == "hf_vocos":
        return key  # backbone.convnext.N (gamma, norm.scale/shift), head.out: the original's names
    key = re.sub(r"\.gamma$", ".layer_scale_parameter", key)
    key = re.sub(r"norm\.scale\.weight$", "norm.weight", key)
    key = re.sub(r"norm\.shift\.weight$", "norm.bias", key)
    if generation in ("A", "B", "C"):
        key = key.replace("backbone.convnext.", "backbone.layers.")
        if generation in ("A", "B"):
            key = key.replace("head.out.", "head.out_proj.")
        return key
    key = key.replace("backbone.convnext.", "layers.").replace("backbone.", "")
    return key.replace("head.out.", "decoder.out.")


def config_fields(generation: str, encodec: bool, sizes: dict) -> dict:
    """config.json of `generation` for a model of `sizes` (keys: channels, hidden, intermediate, layers, n_fft, hop,
    padding), with each format's field names (hub-formats.md, "config.json fields")."""
    common = {"num_layers": sizes["layers"], "n_fft": sizes["n_fft"], "hop_length": sizes["hop"], "kernel_size": 7}
    if generation in ("A", "B"):
        fields = {
            "model_type": "vocos",
            "input_channels": sizes["channels"],
            "hidden_dim": sizes["hidden"],
            "intermediate_dim": sizes["intermediate"],
            "spec_padding": sizes["padding"],
            "use_adaptive_norm": encodec,
            "padding": 3,
            "layer_scale_init_value": 1 / sizes["layers"],
            "layer_norm_eps": 1e-6,
            **common,
        }
        if generation == "A":
            fields["num_bandwidths"] = len(BANDWIDTHS)
            if encodec:
                fields.update(
                    encodec_config={"model_type": "encodec", "target_bandwidths": BANDWIDTHS}, train_codebooks=False
                )
        else:
            fields.update(bandwidths=BANDWIDTHS, sampling_rate=24000)
        return fields
    if generation in ("C", "D"):
        fields = {
            "model_type": "vocos",
            "hidden_size": sizes["hidden"],
            "intermediate_size": sizes["intermediate"],
            "istft_padding": sizes["padding"],
            "use_adaptive_norm": encodec,
            "bandwidths": BANDWIDTHS,  # written for mel models too
            "padding": 3,
            "layer_scale_init_value": 1 / sizes["layers"],
            "layer_norm_eps": 1e-6,
            **common,
        }
        if generation == "C":
            fields.update(input_channels=sizes["channels"], sampling_rate=24000)
        else:
            fields["n_mels"] = sizes["channels"]  # D names the EnCodec model's input width n_mels too
        return fields
    if generation == "E":
        fields = {
            "model_type": "vocos_encodec" if encodec else "vocos",
            "hidden_size": sizes["hidden"],
            "intermediate_size": sizes["intermediate"],
            "istft_padding": sizes["padding"],
            "padding": 3,
            "layer_scale_init_value": 0.125,
            "layer_norm_eps": 1e-6,
            "sample_rate": 24000,
            "hidden_act": "gelu",
            **common,
        }
        if encodec:
            fields.update(codebook_dim=sizes["channels"], num_quantizers=16384, bandwidths=BANDWIDTHS)
        else:
            fields["n_mels"] = sizes["channels"]
        return fields
    # hf_vocos before the Hub format
    return {
        "model_type": "vocos",
        "input_channels": sizes["channels"],
        "hidden_size": sizes["hidden"],
        "intermediate_size": sizes["intermediate"],
        "num_hidden_layers": sizes["layers"],
        "kernel_size": 7,
        "input_kernel_size": 7,
        "n_fft": sizes["n_fft"],
        "hop_length": sizes["hop"],
        "win_length": sizes["n_fft"],
        "istft_padding": sizes["padding"],
        "sampling_rate": 24000,
        "max_magnitude": 100.0,
        "bandwidths": BANDWIDTHS if encodec else None,
        "codebook_size": 1024,
        "codebook_dim": 128,
        "num_codebooks": 16 if encodec else None,
        "use_adaptive_norm": encodec,
        "layer_norm_eps": 1e-6,
        "layer_scale_init_value": 1 / sizes["layers"],
        "hidden_act": "gelu",
        "initializer_range": 0.02,
    }


def write_format(
    folder: Path,
    generation: str,
    original_state_dict: dict,
    encodec: bool,
    sizes: dict,
    encodec_reference: str | None = None,
) -> Path:
    """Write an original model's weights as a `generation` checkpoint: config.json + model.safetensors, and for
    EnCodec models the processor file that names the EnCodec model (legacy audio_tokenizer_config.json for B-D)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {}
    for key, value in original_state_dict.items():
        renamed = rename_original_key(key, generation)
        if renamed is not None:
            weights[renamed] = value.detach().clone().contiguous()
    if generation == "A" and encodec:
        weights["encodec_model.encoder.layers.0.conv.bias"] = torch.zeros(32)  # A kept a whole EnCodec model
    save_file(weights, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config_fields(generation, encodec, sizes), indent=2))
    if encodec and encodec_reference is not None:
        pointer = {"audio_tokenizer_class": "EncodecModel", "audio_tokenizer_name_or_path": encodec_reference}
        (folder / "audio_tokenizer_config.json").write_text(json.dumps(pointer))
    return folder


def expected_generation_e_weights(config: dict) -> dict[str, tuple]:
    """Every weight name and shape a generation-E checkpoint of `config` holds: its loader is strict about these."""
    encodec = config["model_type"] == "vocos_encodec"
    hidden, inner, n_fft = config["hidden_size"], config["intermediate_size"], config["n_fft"]
    channels = config["codebook_dim"] if encodec else config["n_mels"]
    norm = (len(config["bandwidths"]), hidden) if encodec else (hidden,)
    shapes = {
        "embed.weight": (hidden, channels, config["kernel_size"]),
        "embed.bias": (hidden,),
        "norm.weight": norm,
        "norm.bias": norm,
        "final_layer_norm.weight": (hidden,),
        "final_layer_norm.bias": (hidden,),
        "decoder.out.weight": (n_fft + 2, hidden),
        "decoder.out.bias": (n_fft + 2,),
        "decoder.window": (config.get("win_length", n_fft),),
    }
    for index in range(config["num_layers"]):
        prefix = f"layers.{index}."
        shapes.update(
            {
                prefix + "dwconv.weight": (hidden, 1, config["kernel_size"]),
                prefix + "dwconv.bias": (hidden,),
                prefix + "norm.weight": norm,
                prefix + "norm.bias": norm,
                prefix + "pwconv1.weight": (inner, hidden),
                prefix + "pwconv1.bias": (inner,),
                prefix + "pwconv2.weight": (hidden, inner),
                prefix + "pwconv2.bias": (hidden,),
                prefix + "layer_scale_parameter": (hidden,),
            }
        )
    if encodec:
        shapes["codebook_weights"] = (config["num_quantizers"], config["codebook_dim"])
    return shapes


@torch.no_grad()
def decode_generation_e(folder: Path, input_features: torch.Tensor, bandwidth: float | None = None) -> torch.Tensor:
    """Decode `input_features` (batch, channels, frames) with a generation-E checkpoint, read as the Hub format's own
    classes read it. Raises AssertionError if a weight is missing, unexpected or of the wrong shape."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    weights = load_file(str(folder / "model.safetensors"))
    expected = expected_generation_e_weights(config)
    assert set(weights) == set(expected), (sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected)))
    for name, shape in expected.items():
        assert tuple(weights[name].shape) == shape, (name, tuple(weights[name].shape), shape)
    encodec = config["model_type"] == "vocos_encodec"
    row = config["bandwidths"].index(float(bandwidth)) if encodec else None
    eps, padding = config["layer_norm_eps"], config["padding"]

    def norm(hidden, prefix):  # hidden: (batch, frames, channels)
        weight, bias = weights[prefix + ".weight"], weights[prefix + ".bias"]
        if encodec:
            weight, bias = weight[row], bias[row]
        return nn.functional.layer_norm(hidden, (hidden.shape[-1],), weight, bias, eps)

    hidden = nn.functional.conv1d(
        input_features.float(), weights["embed.weight"], weights["embed.bias"], padding=padding
    )
    hidden = norm(hidden.transpose(1, 2), "norm").transpose(1, 2)
    for index in range(config["num_layers"]):
        prefix = f"layers.{index}."
        residual = hidden
        hidden = nn.functional.conv1d(
            hidden,
            weights[prefix + "dwconv.weight"],
            weights[prefix + "dwconv.bias"],
            padding=padding,
            groups=hidden.shape[1],
        )
        hidden = norm(hidden.transpose(1, 2), prefix + "norm")
        hidden = nn.functional.linear(hidden, weights[prefix + "pwconv1.weight"], weights[prefix + "pwconv1.bias"])
        hidden = nn.functional.gelu(hidden)
        hidden = nn.functional.linear(hidden, weights[prefix + "pwconv2.weight"], weights[prefix + "pwconv2.bias"])
        hidden = residual + (weights[prefix + "layer_scale_parameter"] * hidden).transpose(1, 2)
    hidden = nn.functional.layer_norm(
        hidden.transpose(1, 2),
        (hidden.shape[1],),
        weights["final_layer_norm.weight"],
        weights["final_layer_norm.bias"],
        eps,
    )
    projected = nn.functional.linear(hidden, weights["decoder.out.weight"], weights["decoder.out.bias"]).transpose(1, 2)
    log_magnitude, phase = projected.chunk(2, dim=1)
    spectrum = torch.exp(log_magnitude).clip(max=100.0) * (torch.cos(phase) + 1j * torch.sin(phase))
    window, n_fft, hop = weights["decoder.window"], config["n_fft"], config["hop_length"]
    if config["istft_padding"] == "center":
        return torch.istft(spectrum, n_fft, hop_length=hop, win_length=window.shape[0], window=window, center=True)
    frames = torch.fft.irfft(spectrum, n=n_fft, dim=1) * window[None, :, None]
    num_frames = frames.shape[-1]
    length = (num_frames - 1) * hop + n_fft
    trim = (window.shape[0] - hop) // 2
    audio = nn.functional.fold(frames, (1, length), (1, n_fft), stride=(1, hop))[:, 0, 0, trim:-trim]
    envelope = nn.functional.fold(
        window.square().expand(1, num_frames, -1).transpose(1, 2), (1, length), (1, n_fft), stride=(1, hop)
    )
    return audio / envelope.squeeze()[trim:-trim]
