"""Every format a Vocos checkpoint has been published in loads with the original's audio; `save_pretrained` writes
the Hub's current format (generation E) exactly, so that its own strict loader takes it; wrong weights never load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import speech_like
from hub_formats import BANDWIDTHS, GENERATIONS, decode_generation_e, expected_generation_e_weights, write_format
from reference import (
    build_encodec_vocos,
    build_mel_vocos,
    decode_codes,
    decode_features,
    encodec_config_yaml,
    mel_buffers,
    mel_config_yaml,
    save_original_checkpoint,
)
from safetensors.torch import load_file, save_file
from transformers import AutoModel, EncodecConfig, EncodecModel

from hf_vocos import VocosEncodecModel, VocosEncodecProcessor, VocosFeatureExtractor, VocosModel, VocosProcessor
from hf_vocos.checkpoint_formats import rename_weights

MEL_SIZES = {
    "channels": 100,
    "hidden": 64,
    "intermediate": 96,
    "layers": 2,
    "n_fft": 1024,
    "hop": 256,
    "padding": "center",
}
ENCODEC_SIZES = {
    "channels": 128,
    "hidden": 64,
    "intermediate": 96,
    "layers": 2,
    "n_fft": 1280,
    "hop": 320,
    "padding": "same",
}
# The fields of generation E's config.json (hub-formats.md); hf_vocos may add its own (win_length, ...), no others.
E_FIELDS = {
    "mel": {
        "n_mels",
        "hidden_size",
        "intermediate_size",
        "num_layers",
        "kernel_size",
        "padding",
        "layer_scale_init_value",
        "layer_norm_eps",
        "n_fft",
        "hop_length",
        "istft_padding",
        "sample_rate",
        "hidden_act",
    },
    "encodec": {
        "codebook_dim",
        "num_quantizers",
        "hidden_size",
        "intermediate_size",
        "num_layers",
        "kernel_size",
        "padding",
        "layer_scale_init_value",
        "layer_norm_eps",
        "n_fft",
        "hop_length",
        "istft_padding",
        "sample_rate",
        "hidden_act",
        "bandwidths",
    },
}
HF_VOCOS_EXTRAS = {"win_length", "max_magnitude", "initializer_range", "codebook_size", "use_adaptive_norm"}
TRANSFORMERS_FIELDS = {"architectures", "model_type", "dtype", "transformers_version"}
E_FEATURE_EXTRACTOR_FIELDS = {
    "feature_extractor_type",
    "feature_size",
    "hop_length",
    "n_fft",
    "num_mel_bins",
    "padding",
    "padding_side",
    "padding_value",
    "return_attention_mask",
    "sampling_rate",
    "win_length",
}


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """Small original models (random weights, the original's own classes) and an EnCodec model (transformers' class)
    whose codebooks are the EnCodec original's table: what formats without a table (B-D) take it from."""
    root = tmp_path_factory.mktemp("formats")
    mel = build_mel_vocos(seed=31, dim=64, intermediate_dim=96, num_layers=2)
    encodec = build_encodec_vocos(seed=32, dim=64, intermediate_dim=96, num_layers=2)
    table = encodec.state_dict()["feature_extractor.codebook_weights"]
    tokenizer = EncodecModel(
        EncodecConfig(
            num_filters=4, hidden_size=128, codebook_dim=128, num_lstm_layers=1, upsampling_ratios=[8, 5, 4, 2]
        )
    )
    with torch.no_grad():
        for index, layer in enumerate(tokenizer.quantizer.layers[:16]):
            layer.codebook.embed.copy_(table[index * 1024 : (index + 1) * 1024])
    tokenizer.save_pretrained(root / "encodec")
    return {"mel": mel, "encodec": encodec, "encodec_reference": str(root / "encodec"), "root": root}


def _inputs(variant: str):
    generator = torch.Generator().manual_seed(33)
    if variant == "mel":
        return {"input_features": torch.randn(2, 100, 50, generator=generator) - 4}
    return {"codes": torch.randint(0, 1024, (8, 2, 50), generator=generator), "bandwidth": 6.0}


def _original_audio(original, variant: str) -> torch.Tensor:
    inputs = _inputs(variant)
    if variant == "mel":
        return decode_features(original, inputs["input_features"])
    return decode_codes(original, inputs["codes"], BANDWIDTHS.index(inputs["bandwidth"]))


def _write(originals, generation: str, variant: str, folder: Path) -> Path:
    original = originals[variant]
    if generation == "original":
        if variant == "mel":
            features = {"sample_rate": 24000, "n_fft": 1024, "hop_length": 256, "n_mels": 100, "padding": "center"}
            return save_original_checkpoint(
                original, folder, mel_config_yaml(features, 64, 96, 2), mel_buffers(24000, 1024, 100)
            )
        sizes = {
            "bandwidths": BANDWIDTHS,
            "dim": 64,
            "intermediate_dim": 96,
            "num_layers": 2,
            "n_fft": 1280,
            "hop_length": 320,
            "padding": "same",
        }
        return save_original_checkpoint(original, folder, encodec_config_yaml(sizes))
    sizes = MEL_SIZES if variant == "mel" else ENCODEC_SIZES
    return write_format(
        folder, generation, original.state_dict(), variant == "encodec", sizes, originals["encodec_reference"]
    )


@pytest.mark.parametrize("variant", ["mel", "encodec"])
@pytest.mark.parametrize("generation", [*GENERATIONS, "original"])
def test_every_format_loads_with_the_originals_audio(tmp_path, originals, generation, variant):
    """Generations A-E, hf_vocos's format before the Hub's, and the original's config.yaml folders: the EnCodec
    variant always comes back as a VocosEncodecModel (whichever class is asked), with the original's audio; formats
    without a codebook table (B-D) take it from the EnCodec model their processor names."""
    folder = _write(originals, generation, variant, tmp_path / "checkpoint")
    expected = _original_audio(originals[variant], variant)
    loaders = [VocosModel.from_pretrained] + ([] if generation == "original" else [AutoModel.from_pretrained])
    loaders.append(VocosEncodecModel.from_pretrained if variant == "encodec" else VocosModel.from_pretrained)
    for load in loaders:
        model = load(folder)
        assert type(model) is (VocosEncodecModel if variant == "encodec" else VocosModel), (load, type(model))
        with torch.no_grad():
            torch.testing.assert_close(model(**_inputs(variant)).audio, expected, rtol=0, atol=1e-5)
    # Saved again: the Hub's current format, whatever was read.
    model.save_pretrained(tmp_path / "resaved")
    features = (
        model.embed_codes(_inputs(variant)["codes"]) if variant == "encodec" else _inputs(variant)["input_features"]
    )
    audio = decode_generation_e(tmp_path / "resaved", features, _inputs(variant).get("bandwidth"))
    torch.testing.assert_close(audio, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("variant", ["mel", "encodec"])
def test_save_pretrained_writes_generation_e(tmp_path, originals, variant):
    """What we save is what the Hub's repositories hold: config fields, weight names and shapes (window and codebook
    table included), processor files with the EnCodec reference; read by the format's own (strict) rules it decodes
    the original's audio."""
    original = originals[variant]
    model_class = VocosEncodecModel if variant == "encodec" else VocosModel
    model = model_class(model_class.config_class(hidden_size=64, intermediate_size=96, num_layers=2))
    model.load_checked(rename_weights(original.state_dict()), "original")
    model.save_pretrained(tmp_path)
    if variant == "mel":
        VocosProcessor(VocosFeatureExtractor()).save_pretrained(tmp_path)
    else:
        VocosEncodecProcessor(VocosFeatureExtractor(), encodec_name_or_path="facebook/encodec_24khz").save_pretrained(
            tmp_path
        )

    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == ("vocos_encodec" if variant == "encodec" else "vocos")
    assert E_FIELDS[variant] <= set(config) <= E_FIELDS[variant] | HF_VOCOS_EXTRAS | TRANSFORMERS_FIELDS
    weights = load_file(str(tmp_path / "model.safetensors"))
    assert {name: tuple(value.shape) for name, value in weights.items()} == expected_generation_e_weights(config)
    torch.testing.assert_close(weights["decoder.window"], torch.hann_window(config["n_fft"]), rtol=0, atol=0)
    if variant == "encodec":
        torch.testing.assert_close(
            weights["codebook_weights"], original.state_dict()["feature_extractor.codebook_weights"], rtol=0, atol=0
        )
        processor = json.loads((tmp_path / "processor_config.json").read_text())
        assert processor["processor_class"] == "VocosEncodecProcessor"
        assert processor["audio_tokenizer"] == {
            "audio_tokenizer_class": "EncodecModel",
            "audio_tokenizer_name_or_path": "facebook/encodec_24khz",
        }
        assert E_FEATURE_EXTRACTOR_FIELDS <= set(processor["feature_extractor"])
        assert sorted(path.name for path in tmp_path.iterdir()) == [
            "config.json",
            "model.safetensors",
            "processor_config.json",
        ]
    else:
        assert E_FEATURE_EXTRACTOR_FIELDS <= set(json.loads((tmp_path / "preprocessor_config.json").read_text()))
        assert sorted(path.name for path in tmp_path.iterdir()) == [
            "config.json",
            "model.safetensors",
            "preprocessor_config.json",
        ]

    inputs = _inputs(variant)
    features = model.embed_codes(inputs["codes"]) if variant == "encodec" else inputs["input_features"]
    expected = _original_audio(original, variant)
    torch.testing.assert_close(
        decode_generation_e(tmp_path, features, inputs.get("bandwidth")), expected, rtol=0, atol=1e-5
    )


def _e_checkpoint(tmp_path, originals, variant="mel") -> Path:
    return _write(originals, "E", variant, tmp_path / "e")


@pytest.mark.parametrize(
    "change, message",
    [
        ("drop", r"missing: layers.1.pwconv2.bias \(1\)"),
        ("extra", r"unexpected: layers.9.pwconv2.bias \(1\)"),
        ("shape", r"wrong shape: .*decoder.out.weight \(1026, 64\) \(expected \(1026, 32\)\)"),
        ("renamed blocks", r"missing: layers.0.dwconv.bias.* \(9\); unexpected: blocks.0.dwconv.bias.* \(9\)"),
    ],
)
def test_wrong_weights_are_refused_naming_them_and_the_format(tmp_path, originals, change, message):
    folder = _e_checkpoint(tmp_path, originals)
    weights = load_file(str(folder / "model.safetensors"))
    config = json.loads((folder / "config.json").read_text())
    if change == "drop":
        del weights["layers.1.pwconv2.bias"]
    elif change == "extra":
        weights["layers.9.pwconv2.bias"] = torch.zeros(64)
    elif change == "shape":
        config["hidden_size"] = 32
    else:  # a block under a name no format has
        weights = {key.replace("layers.0.", "blocks.0."): value for key, value in weights.items()}
    save_file(weights, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=message) as raised:
        VocosModel.from_pretrained(folder)
    assert "looks like" in str(raised.value) and "Refusing to load" in str(raised.value)


def test_a_format_without_codebooks_and_no_encodec_at_hand_says_what_to_do(tmp_path, originals):
    """Generation D's EnCodec checkpoints hold no codebook table: with the EnCodec model they name out of reach
    (offline, not cached), loading says which model is needed and how to get it."""
    folder = _write(originals, "D", "encodec", tmp_path / "d")
    (
        folder / "audio_tokenizer_config.json"
    ).unlink()  # no reference: facebook/encodec_24khz, as the PR's converters used
    with pytest.raises(
        ValueError,
        match=(
            r"no codebook table.*EnCodec model 'facebook/encodec_24khz'.*huggingface-cli download "
            r"facebook/encodec_24khz"
        ),
    ):
        VocosModel.from_pretrained(folder, cache_dir=tmp_path / "empty-cache", local_files_only=True)


def test_mel_processor_of_every_generation_loads(tmp_path):
    """Processor files of the formats: E's preprocessor_config.json alone (mel), B-D's processor with an EnCodec
    reference even for mel models (loaded lazily, never for mel use), hf_vocos's nested processor_config.json."""
    fields = {
        "feature_extractor_type": "VocosFeatureExtractor",
        "feature_size": 100,
        "sampling_rate": 24000,
        "n_fft": 1024,
        "hop_length": 256,
        "padding": "center",
        "padding_value": 0.0,
        "return_attention_mask": False,
        "padding_side": "right",
    }
    e = tmp_path / "e"
    e.mkdir()
    (e / "preprocessor_config.json").write_text(json.dumps(fields))
    b = tmp_path / "b"
    b.mkdir()
    (b / "preprocessor_config.json").write_text(json.dumps({**fields, "processor_class": "VocosProcessor"}))
    (b / "audio_tokenizer_config.json").write_text(
        json.dumps({"audio_tokenizer_class": "EncodecModel", "audio_tokenizer_name_or_path": "facebook/encodec_24khz"})
    )
    (b / "config.json").write_text(
        json.dumps(
            {
                "model_type": "vocos",
                "input_channels": 100,
                "hidden_dim": 64,
                "use_adaptive_norm": False,
                "bandwidths": BANDWIDTHS,
            }
        )
    )
    old = tmp_path / "old"
    old.mkdir()
    legacy = {k: v for k, v in fields.items() if k != "padding"} | {"stft_padding": "center", "log_floor": 1e-7}
    (old / "processor_config.json").write_text(
        json.dumps({"processor_class": "VocosProcessor", "feature_extractor": legacy})
    )
    clip = speech_like(12000, seed=34)
    expected = VocosFeatureExtractor()(clip, sampling_rate=24000)["input_features"]
    for folder in (e, b, old):
        processor = VocosProcessor.from_pretrained(folder)
        assert type(processor) is VocosProcessor and not processor.has_audio_tokenizer
        np.testing.assert_allclose(
            processor(audio=clip, sampling_rate=24000, return_tensors="np")["input_features"], expected, rtol=0, atol=0
        )


def _saved(tmp_path, name="mel", variant="mel"):
    from conftest import model_for, randomize_, small_config

    folder = tmp_path / name
    randomize_(model_for(small_config(variant)), seed=3).save_pretrained(folder)
    return folder


def test_where_from_pretrained_points_is_named(tmp_path):
    """None, a file, a missing local path, no config.json (also behind a link loop), another model_type, a config
    holding a list: each refused naming the path and what was expected (not transformers' repo-id or torch's
    unpickling messages)."""
    import json
    import os
    import shutil

    from hf_vocos import VocosModel

    folder = _saved(tmp_path)
    with pytest.raises(TypeError, match=r"`pretrained_model_name_or_path` must be a folder or a Hub repository id"):
        VocosModel.from_pretrained(None)
    with pytest.raises(ValueError, match=r"config.json is a file; from_pretrained takes the folder"):
        VocosModel.from_pretrained(folder / "config.json")
    with pytest.raises(ValueError, match=r"nothere: no such folder"):
        VocosModel.from_pretrained(str(tmp_path / "nothere"))
    bare = tmp_path / "bare"
    shutil.copytree(folder, bare)
    (bare / "config.json").unlink()
    with pytest.raises(ValueError, match=r"bare: no config.json beside its weights \(model.safetensors\)"):
        VocosModel.from_pretrained(bare)
    os.symlink("config.json", bare / "config.json")
    with pytest.raises(ValueError, match=r"config.json: a broken link or a link loop"):
        VocosModel.from_pretrained(bare)
    config = json.loads((folder / "config.json").read_text())
    for name, content, message in (
        ("bert", {**config, "model_type": "bert"}, r"model_type 'bert' is not a Vocos model"),
        ("list", [config], r"holds a JSON list; expected an object"),
    ):
        shutil.copytree(folder, tmp_path / name)
        (tmp_path / name / "config.json").write_text(json.dumps(content))
        with pytest.raises(ValueError, match=message):
            VocosModel.from_pretrained(tmp_path / name)


def test_weights_that_are_not_float_or_hold_objects_are_refused(tmp_path):
    """An int64 or bool tensor would be cast on load and decode other audio; a pytorch_model.bin holding a pickled
    object is refused without running it (never 'weights_only=False')."""
    import json
    import shutil

    from safetensors.torch import load_file, save_file

    from hf_vocos import VocosModel

    folder = _saved(tmp_path)
    weights = load_file(folder / "model.safetensors")
    weights["layers.0.pwconv1.weight"] = weights["layers.0.pwconv1.weight"].long()
    weights["layers.0.layer_scale_parameter"] = weights["layers.0.layer_scale_parameter"] > 0
    broken = tmp_path / "ints"
    shutil.copytree(folder, broken)
    save_file(weights, broken / "model.safetensors")
    with pytest.raises(
        ValueError,
        match=r"2 weight tensors are not floating point \(layers.0.layer_scale_parameter \(BOOL\), "
        r"layers.0.pwconv1.weight \(I64\)\)",
    ):
        VocosModel.from_pretrained(broken)
    as_bin = tmp_path / "bin"
    shutil.copytree(folder, as_bin)
    (as_bin / "model.safetensors").unlink()
    torch.save(
        {
            key: value.long() if key.endswith("pwconv2.bias") else value
            for key, value in load_file(folder / "model.safetensors").items()
        },
        as_bin / "pytorch_model.bin",
    )
    with pytest.raises(ValueError, match=r"pytorch_model.bin: 2 weight tensors are not floating point"):
        VocosModel.from_pretrained(as_bin)
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"embed.weight": Payload()}, as_bin / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"pytorch_model.bin: refusing to unpickle it") as caught:
        VocosModel.from_pretrained(as_bin)
    assert not marker.exists() and "weights_only=False" not in str(caught.value)
    json.loads((folder / "config.json").read_text())  # the good folder still loads
    VocosModel.from_pretrained(folder)


def test_mel_weights_under_an_encodec_model_type_name_the_weights(tmp_path):
    """Not a missing codebook table (which would send the user to the EnCodec download): the shapes that differ."""
    import shutil

    from hf_vocos import VocosModel

    mel, encodec = _saved(tmp_path), _saved(tmp_path, "encodec", "encodec")
    mixed = tmp_path / "mixed"
    shutil.copytree(mel, mixed)
    shutil.copy(encodec / "config.json", mixed / "config.json")
    with pytest.raises(ValueError, match=r"do not fit a VocosEncodecModel.*wrong shape: decoder.out.bias") as caught:
        VocosModel.from_pretrained(mixed)
    assert "encodec_24khz" not in str(caught.value)
