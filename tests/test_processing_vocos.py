"""VocosProcessor: mel and EnCodec paths into the model, batch_decode, self-contained save/load, bad inputs."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from conftest import SMALL_ENCODEC, SMALL_MEL, fill_hub_cache, randomize_, speech_like, tiny_encodec_model
from transformers import AutoProcessor, EncodecModel

from hf_vocos import (
    VocosConfig,
    VocosEncodecConfig,
    VocosEncodecModel,
    VocosEncodecProcessor,
    VocosFeatureExtractor,
    VocosModel,
    VocosProcessor,
)


@pytest.fixture(scope="module")
def encodec():
    return tiny_encodec_model(seed=0)


@pytest.fixture(scope="module")
def encodec_processor(encodec):
    return VocosEncodecProcessor(VocosFeatureExtractor(), audio_tokenizer=encodec)


@pytest.fixture(scope="module")
def encodec_vocos():
    return randomize_(VocosEncodecModel(VocosEncodecConfig(**SMALL_ENCODEC)), seed=7)


def test_mel_path_is_the_feature_extractor(speech):
    processor = VocosProcessor(VocosFeatureExtractor())
    assert processor.audio_tokenizer is None and not processor.has_audio_tokenizer
    inputs = processor(audio=[speech, speech[:9000]], sampling_rate=24000)
    expected = processor.feature_extractor([speech, speech[:9000]], sampling_rate=24000, return_tensors="pt")
    assert set(inputs) == {"input_features", "attention_mask"}
    torch.testing.assert_close(inputs["input_features"], expected["input_features"], rtol=0, atol=0)
    model = randomize_(VocosModel(VocosConfig(**SMALL_MEL)))
    with torch.no_grad():
        output = model(**inputs)
    waveforms = processor.batch_decode(output)
    assert [len(w) for w in waveforms] == [93 * 256, (1 + 9000 // 256 - 1) * 256]
    np.testing.assert_array_equal(waveforms[1], output.audio[1, : len(waveforms[1])].numpy())


def test_encodec_codes_equal_solo_encoding(encodec_processor, encodec):
    clips = [speech_like(24000, seed=1), speech_like(9601, seed=2), speech_like(24000, seed=3)]
    inputs = encodec_processor(audio=clips, bandwidth=6.0, sampling_rate=24000)
    assert set(inputs) == {"codes", "bandwidth", "attention_mask"}
    frames = [math.ceil(len(clip) / 320) for clip in clips]
    assert inputs["codes"].shape == (8, 3, 75) and inputs["codes"].dtype == torch.long
    assert inputs["attention_mask"].sum(dim=1).tolist() == frames
    assert float(inputs["bandwidth"]) == 6.0
    with torch.no_grad():
        for index, clip in enumerate(clips):
            solo = encodec.encode(torch.from_numpy(clip)[None, None], bandwidth=6.0).audio_codes[0, 0]
            torch.testing.assert_close(inputs["codes"][:, index, : frames[index]], solo, rtol=0, atol=0)
            assert torch.all(inputs["codes"][:, index, frames[index] :] == 0)


def test_model_accepts_processor_output(encodec_processor, encodec_vocos):
    clips = [speech_like(24000, seed=4), speech_like(12000, seed=5)]
    with torch.no_grad():
        output = encodec_vocos(**encodec_processor(audio=clips, bandwidth=3.0, sampling_rate=24000))
        solo = encodec_vocos(**encodec_processor(audio=clips[1], bandwidth=3.0, sampling_rate=24000)).audio[0]
    waveforms = encodec_processor.batch_decode(output)
    assert [len(w) for w in waveforms] == [75 * 320, math.ceil(12000 / 320) * 320]
    np.testing.assert_allclose(waveforms[1], solo.numpy(), rtol=0, atol=1e-5)


def test_codes_path_pads_ragged_items(encodec_processor, encodec_vocos):
    generator = torch.Generator().manual_seed(0)
    items = [torch.randint(0, 1024, (4, n), generator=generator) for n in (12, 30)]
    inputs = encodec_processor(codes=items, bandwidth=3.0)
    assert inputs["codes"].shape == (4, 2, 30)
    assert inputs["attention_mask"].tolist() == [[1] * 12 + [0] * 18, [1] * 30]
    with torch.no_grad():
        output = encodec_vocos(**inputs)
        solo = encodec_vocos(codes=items[0], bandwidth=3.0).audio[0]
    torch.testing.assert_close(output.audio[0, : solo.shape[0]], solo, rtol=0, atol=1e-5)
    batched = encodec_processor(codes=torch.stack(items[:1] * 2, dim=1).numpy(), bandwidth=3.0, return_tensors="np")
    assert isinstance(batched["codes"], np.ndarray) and batched["codes"].shape == (4, 2, 12)
    assert batched["attention_mask"].all()


def test_batch_decode_forms():
    processor = VocosProcessor(VocosFeatureExtractor())
    audio = torch.arange(12, dtype=torch.float32).reshape(2, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1] * 6])
    decoded = processor.batch_decode(audio, attention_mask=mask)
    assert [w.tolist() for w in decoded] == [[0.0, 1.0, 2.0], [6.0, 7.0, 8.0, 9.0, 10.0, 11.0]]
    assert [len(w) for w in processor.batch_decode((audio, mask))] == [3, 6]
    assert [len(w) for w in processor.batch_decode(audio.numpy())] == [6, 6]
    with pytest.raises(ValueError, match="attention_mask"):
        processor.batch_decode(audio, attention_mask=mask[:, :4])


def test_saved_encodec_processor_is_self_contained(tmp_path, encodec_processor):
    saved = tmp_path / "saved"
    encodec_processor.save_pretrained(saved)
    assert (saved / "audio_tokenizer" / "model.safetensors").exists()
    config = json.loads((saved / "processor_config.json").read_text())
    assert config["encodec_subfolder"] == "audio_tokenizer" and "audio_tokenizer" not in config
    moved = tmp_path / "moved"
    shutil.copytree(saved, moved)
    shutil.rmtree(saved)
    VocosEncodecConfig(**SMALL_ENCODEC).save_pretrained(moved)
    loaders = (VocosProcessor.from_pretrained, VocosEncodecProcessor.from_pretrained, AutoProcessor.from_pretrained)
    for loaded in (loader(moved) for loader in loaders):
        assert type(loaded) is VocosEncodecProcessor and isinstance(loaded.audio_tokenizer, EncodecModel)
        assert loaded.feature_extractor.to_dict() == encodec_processor.feature_extractor.to_dict()
        clip = speech_like(16000, seed=9)
        torch.testing.assert_close(
            loaded(audio=clip, bandwidth=12.0, sampling_rate=24000)["codes"],
            encodec_processor(audio=clip, bandwidth=12.0, sampling_rate=24000)["codes"],
            rtol=0,
            atol=0,
        )


def test_mel_processor_saves_no_encodec(tmp_path):
    """A mel checkpoint's processor is its feature extractor, saved as the Hub format does: preprocessor_config.json
    only, with the Hub's field names."""
    VocosProcessor(VocosFeatureExtractor(padding="same")).save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preprocessor_config.json"]
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert (
        saved["padding"] == "same"
        and saved["num_mel_bins"] == saved["feature_size"] == 100
        and "stft_padding" not in saved
    )
    VocosConfig(**SMALL_MEL).save_pretrained(tmp_path)
    for loaded in (VocosProcessor.from_pretrained(tmp_path), AutoProcessor.from_pretrained(tmp_path)):
        assert type(loaded) is VocosProcessor
        assert loaded.audio_tokenizer is None and loaded.feature_extractor.padding == "same"


def test_hub_pointer_instead_of_weights(tmp_path, encodec):
    # A processor may point at a Hub EnCodec repository on purpose, instead of carrying the weights.
    processor = VocosEncodecProcessor(VocosFeatureExtractor(), encodec_name_or_path="facebook/encodec_24khz")
    assert processor.has_audio_tokenizer  # nothing loaded yet
    processor.save_pretrained(tmp_path / "processor")
    assert not (tmp_path / "processor" / "audio_tokenizer").exists()
    config = json.loads((tmp_path / "processor" / "processor_config.json").read_text())
    # The Hub format's reference (what its own loader reads), and the class it names.
    assert config["audio_tokenizer"] == {
        "audio_tokenizer_class": "EncodecModel",
        "audio_tokenizer_name_or_path": "facebook/encodec_24khz",
    }
    assert config["processor_class"] == "VocosEncodecProcessor" and "encodec_name_or_path" not in config
    encodec.save_pretrained(tmp_path / "encodec")
    cache = tmp_path / "cache"
    fill_hub_cache(cache, "facebook/encodec_24khz", tmp_path / "encodec")
    loaded = VocosProcessor.from_pretrained(tmp_path / "processor", cache_dir=cache, local_files_only=True)
    assert loaded.encodec_name_or_path == "facebook/encodec_24khz"
    clip = speech_like(8000)
    torch.testing.assert_close(
        loaded(audio=clip, bandwidth=1.5, sampling_rate=24000)["codes"],
        VocosProcessor(VocosFeatureExtractor(), audio_tokenizer=encodec)(
            audio=clip, bandwidth=1.5, sampling_rate=24000
        )["codes"],
    )
    # Saved again, it still points at the Hub (the tokenizer loaded from there included).
    loaded.save_pretrained(tmp_path / "again")
    assert not (tmp_path / "again" / "audio_tokenizer").exists()
    assert (
        json.loads((tmp_path / "again" / "processor_config.json").read_text())["audio_tokenizer"]
        == config["audio_tokenizer"]
    )


def test_user_supplied_tokenizer_overrides_saved_one(tmp_path, encodec_processor):
    encodec_processor.save_pretrained(tmp_path)
    loaded = VocosProcessor.from_pretrained(tmp_path, audio_tokenizer=None)
    assert loaded.audio_tokenizer is None


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({}, ValueError, "exactly one of `audio` and `codes`.*neither"),
        (
            {"audio": np.zeros(4000, np.float32), "codes": torch.zeros(4, 1, 5, dtype=torch.long)},
            ValueError,
            "exactly one.*both",
        ),
        ({"audio": np.zeros(4000, np.float32), "sampling_rate": 24000}, ValueError, "EnCodec checkpoint.*`bandwidth`"),
        (
            {"audio": np.zeros(4000, np.float32), "bandwidth": 5.0, "sampling_rate": 24000},
            ValueError,
            r"`bandwidth`=5.0.*\[1.5, 3.0, 6.0, 12.0, 24.0\]",
        ),
        (
            {"audio": np.zeros(4000, np.float32), "bandwidth": 6.0, "sampling_rate": 16000},
            ValueError,
            "`sampling_rate`=16000",
        ),
        (
            {"audio": np.zeros((4000, 2), np.float32), "bandwidth": 6.0, "sampling_rate": 24000},
            ValueError,
            r"`audio`.*\(samples, channels\)",
        ),
        (
            {"audio": np.full(4000, np.nan, np.float32), "bandwidth": 6.0, "sampling_rate": 24000},
            ValueError,
            "`audio`.*NaN",
        ),
        ({"audio": np.zeros(0, np.float32), "bandwidth": 6.0, "sampling_rate": 24000}, ValueError, "`audio`.*empty"),
        ({"codes": torch.zeros(4, 1, 5, dtype=torch.long)}, ValueError, "`bandwidth`.*required with `codes`"),
        ({"codes": torch.zeros(4, 1, 5), "bandwidth": 3.0}, TypeError, "`codes`.*integer dtype"),
        (
            {"codes": [torch.zeros(4, 5, dtype=torch.long), torch.zeros(2, 5, dtype=torch.long)], "bandwidth": 3.0},
            ValueError,
            r"`codes\[1\]` has 2 codebooks",
        ),
        (
            {"codes": [torch.zeros(4, 1, 5, dtype=torch.long)], "bandwidth": 3.0},
            ValueError,
            r"`codes\[0\]` must have shape",
        ),
        ({"codes": "0 1 2", "bandwidth": 3.0}, TypeError, "`codes`.*str"),
        (
            {"codes": torch.zeros(4, 1, 5, dtype=torch.long), "bandwidth": 3.0, "return_tensors": "tf"},
            ValueError,
            "`return_tensors`",
        ),
    ],
)
def test_bad_inputs_raise(encodec_processor, kwargs, error, match):
    with pytest.raises(error, match=match):
        encodec_processor(**kwargs)


def test_mel_processor_rejects_encodec_inputs(speech):
    processor = VocosProcessor(VocosFeatureExtractor())
    with pytest.raises(ValueError, match="`codes`.*mel checkpoint"):
        processor(codes=torch.zeros(4, 1, 5, dtype=torch.long), bandwidth=3.0)
    with pytest.raises(ValueError, match="`bandwidth`=6.0.*mel checkpoint"):
        processor(audio=speech, bandwidth=6.0, sampling_rate=24000)


def test_bad_tokenizer_raises(encodec):
    with pytest.raises(TypeError, match="`audio_tokenizer` must be a transformers EncodecModel"):
        VocosProcessor(VocosFeatureExtractor(), audio_tokenizer=torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="`audio_tokenizer` works at 24000 Hz but the feature extractor at 22050 Hz"):
        VocosProcessor(VocosFeatureExtractor(sampling_rate=22050, f_max=8000.0), audio_tokenizer=encodec)


class _RecordingHub:
    """Stands in for transformers' HfApi instance: records what a push would upload."""

    def __init__(self):
        self.uploads = {}

    def create_repo(self, repo_id, **kwargs):
        return type("RepoUrl", (), {"repo_id": repo_id})()

    def create_commit(self, repo_id, operations, **kwargs):
        self.uploads[repo_id] = sorted(op.path_in_repo for op in operations)


def test_push_to_hub_uploads_the_audio_tokenizer(monkeypatch, tmp_path, encodec_processor):
    import transformers.utils.hub as hub
    from huggingface_hub import ModelCard

    recording = _RecordingHub()
    monkeypatch.setattr(hub, "hf_api", lambda: recording)
    monkeypatch.setattr(hub, "create_and_tag_model_card", lambda *args, **kwargs: ModelCard("---\n---\n"))
    encodec_processor.push_to_hub("me/my-vocos")
    encodec_processor.save_pretrained(tmp_path / "my-vocos-2", push_to_hub=True)
    expected = [
        "README.md",
        "audio_tokenizer/config.json",
        "audio_tokenizer/model.safetensors",
        "processor_config.json",
    ]
    assert recording.uploads == {"me/my-vocos": expected, "my-vocos-2": expected}


def test_processor_save_pretrained_to_a_file_path_raises(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"`save_directory` '.*config\.json' is a file"):
        VocosProcessor(VocosFeatureExtractor()).save_pretrained(tmp_path / "config.json")
