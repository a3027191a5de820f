"""Training: the loss goes down, resumption is exact, discriminator shapes, (features, audio) pairs, bad configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
from conftest import speech_like

pytest.importorskip("accelerate")

from hf_vocos import VocosFeatureExtractor, VocosModel  # noqa: E402
from hf_vocos.training import TrainingConfig, VocosTrainer  # noqa: E402
from hf_vocos.training.discriminators import MultiPeriodDiscriminator, MultiResolutionDiscriminator  # noqa: E402

TINY = {"hidden_size": 32, "intermediate_size": 64, "num_layers": 2}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("training")
    for name, seeds in (("train", range(4)), ("validation", (50,))):
        (root / name).mkdir()
        for seed in seeds:
            soundfile.write(root / name / f"{seed}.wav", speech_like(24000 * 2, seed=seed), 24000, subtype="FLOAT")
    return root


def tiny_config(clips, tmp_path, **overrides) -> TrainingConfig:
    values = dict(
        output_dir=str(tmp_path / "run"),
        train_data=str(clips / "train"),
        model_config=TINY,
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


def test_a_few_steps_lower_the_generator_loss(clips, tmp_path):
    trainer = VocosTrainer(tiny_config(clips, tmp_path, max_steps=40, learning_rate=3e-3, crop_seconds=0.5))
    losses = [trainer.step()["generator/total"] for _ in range(40)]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses


def test_resume_continues_exactly(clips, tmp_path):
    gan = dict(losses=["mel", "mrstft", "adversarial", "feature_matching"], discriminators=["mrd"], mel_warmup_steps=1)
    uninterrupted = VocosTrainer(tiny_config(clips, tmp_path / "a", **gan))
    for _ in range(2):
        uninterrupted.step()
    checkpoint = uninterrupted.save_checkpoint()
    expected = uninterrupted.step()
    resumed = VocosTrainer(tiny_config(clips, tmp_path / "b", resume_from=str(checkpoint), **gan))
    assert resumed.global_step == 2
    observed = resumed.step()
    assert observed.keys() == expected.keys() and "discriminator/total" in observed
    for name in expected:
        assert observed[name] == pytest.approx(expected[name], rel=1e-5, abs=1e-6), name


def test_max_time_stops_early_with_a_checkpoint_and_the_model(clips, tmp_path):
    trainer = VocosTrainer(tiny_config(clips, tmp_path, max_steps=10_000, max_time_seconds=1e-9))
    trainer.train()
    assert trainer.global_step == 1  # the first step already ran past the limit
    assert (tmp_path / "run" / "checkpoint-0000001" / "training_state.pt").is_file()
    assert VocosModel.from_pretrained(tmp_path / "run" / "model").config.hidden_size == TINY["hidden_size"]


def test_discriminator_output_shapes():
    audio = torch.randn(2, 4800)
    scores, features = MultiPeriodDiscriminator()(audio)
    assert len(scores) == len(features) == 5
    for period, (score, maps) in zip((2, 3, 5, 7, 11), zip(scores, features)):
        assert score.shape[0] == 2 and score.dim() == 2
        assert len(maps) == 5 and maps[-1].shape[1] == 1 and maps[0].shape[-1] == period
    scores, features = MultiResolutionDiscriminator()(audio)
    assert len(scores) == 3
    for window, (score, maps) in zip((2048, 1024, 512), zip(scores, features)):
        assert score.shape[:2] == (2, 1) and score.shape[2] == 4800 // (window // 4) + 1
        assert len(maps) == 5 * 4 + 1  # 4 hidden maps per band x 5 bands, and the output


def test_training_on_feature_audio_pairs(clips, tmp_path):
    """Fine-tuning on an acoustic model's output: features (here: slightly perturbed log-mels) with their audio."""
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    extractor = VocosFeatureExtractor()
    for seed in range(3):
        audio = speech_like(24000, seed=seed)
        features = extractor(audio, sampling_rate=24000)["input_features"][0]
        np.save(
            pairs / f"utt{seed}.npy",
            features + 0.05 * np.random.default_rng(seed).standard_normal(features.shape).astype(np.float32),
        )
        soundfile.write(pairs / f"utt{seed}.wav", audio[: (features.shape[-1] - 1) * 256], 24000, subtype="FLOAT")
    trainer = VocosTrainer(
        tiny_config(
            clips,
            tmp_path,
            train_data=str(pairs),
            data_format="pairs",
            validation_data=str(pairs),
            max_steps=30,
            learning_rate=3e-3,
        )
    )
    features, audio = trainer.sampler.batch(0)
    assert features.shape == (2, 100, trainer.crop_frames) and audio.shape == (2, (trainer.crop_frames - 1) * 256)
    losses = [trainer.step()["generator/total"] for _ in range(30)]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert set(trainer.evaluate()) >= {"validation/log_mel_l1", "validation/mrstft"}

    soundfile.write(pairs / "utt0.wav", speech_like(48000, seed=0), 24000)  # not the audio of utt0.npy
    with pytest.raises(ValueError, match="utt0.npy: 94 frames describe 23808 samples, but utt0.wav has 48000"):
        VocosTrainer(tiny_config(clips, tmp_path, train_data=str(pairs), data_format="pairs"))


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"crop_seconds": 0.02}, "crop_seconds: 0.02 s .* shorter than the FFTs"),
        ({"losses": ["mel", "perceptual"]}, "unknown loss 'perceptual'"),
        ({"losses": ["adversarial"]}, "include 'mel' and/or 'mrstft'"),
        ({"discriminators": ["msd"], "losses": ["mel", "adversarial"]}, "unknown discriminator 'msd'"),
        ({"losses": ["mel", "adversarial"], "discriminators": []}, "need at least one discriminator"),
        ({"train_data": None}, "train_data: required"),
        ({"batch_size": 0}, "batch_size: expected a positive integer"),
        ({"max_time_seconds": -1}, "max_time_seconds: expected a positive number of seconds or None, got -1"),
        ({"mixed_precision": "fp8"}, "mixed_precision"),
        ({"model_config": {**TINY, "bandwidths": [1.5, 3.0], "input_channels": 128}}, "EnCodec .* not supported"),
        ({"model_config": {**TINY, "model_type": "vocos_encodec"}}, "EnCodec .* not supported"),
        ({"feature_extractor": {"feature_size": 80}}, "feature_extractor: 80 mels"),
        ({"resume_from": "latest"}, "resume_from: 'latest', but .* holds no checkpoint"),
    ],
)
def test_bad_configs_raise(clips, tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        VocosTrainer(tiny_config(clips, tmp_path, **overrides))


def test_empty_dataset_raises(clips, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "broken.wav").write_bytes(b"not audio")
    with pytest.raises(ValueError, match="no readable audio found"):
        VocosTrainer(tiny_config(clips, tmp_path, train_data=str(tmp_path / "empty")))


def test_train_command(clips, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "train_data": str(clips / "train"),
                "model_config": TINY,
                "batch_size": 2,
                "crop_seconds": 0.25,
                "losses": ["mel"],
                "discriminators": [],
                "max_steps": 2,
            }
        )
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "hf_vocos", "train", "--config", str(config), "--output-dir", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "train: 2 steps" in result.stderr
    assert isinstance(VocosModel.from_pretrained(tmp_path / "out" / "model"), VocosModel)
    (tmp_path / "bad.yaml").write_text("train_data: x\nlearning_rat: 0.1\n")
    bad = subprocess.run(
        [sys.executable, "-m", "hf_vocos", "train", "--config", str(tmp_path / "bad.yaml")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 1 and "unknown settings ['learning_rat']" in bad.stderr


@pytest.mark.parametrize("padding", ["center", "same"])
def test_training_log_mel_equals_the_feature_extractor(padding):
    from hf_vocos.training.losses import LogMelSpectrogram

    extractor = VocosFeatureExtractor(stft_padding=padding)
    audio = np.stack([speech_like(24000, seed=1), speech_like(24000, seed=2)])
    audio[1, 6000:15000] = 0.0  # digital silence: the mel sits at the log floor there
    audio[1, 15000:18000] *= 1e-6  # and barely above it
    expected = extractor(list(audio), sampling_rate=24000, return_tensors="pt")["input_features"]
    observed = LogMelSpectrogram(extractor)(torch.from_numpy(audio))
    assert observed.shape == expected.shape
    assert (expected[1] == np.log(np.float32(1e-7))).any()  # the floor is reached
    torch.testing.assert_close(observed, expected, atol=1e-4, rtol=1e-4)


def test_audio_metrics_and_griffin_lim():
    from hf_vocos.training.metrics import audio_metrics, griffin_lim

    extractor = VocosFeatureExtractor()
    reference = speech_like(24000 * 2, seed=4)
    same = audio_metrics(reference, reference.copy(), 24000, extractor)
    assert same["log_mel_l1"] == 0.0 and same["mrstft"] < 1e-3
    noisy = reference + 0.05 * np.random.default_rng(0).standard_normal(len(reference)).astype(np.float32)
    worse = audio_metrics(reference, noisy, 24000, extractor)
    assert worse["log_mel_l1"] > 0.05 and worse["mrstft"] > 0.1
    if "pesq_wb" in same:
        assert worse["pesq_wb"] < same["pesq_wb"]

    features = extractor(reference, sampling_rate=24000)["input_features"][0]
    rebuilt = griffin_lim(features, extractor, iterations=8)
    assert rebuilt.shape == ((features.shape[-1] - 1) * 256,)
    assert audio_metrics(reference, rebuilt, 24000, extractor)["log_mel_l1"] < 0.6  # noise scores 4.7
    with pytest.raises(ValueError, match=r"log_mel must have shape \(100, frames\), got \(80, 5\)"):
        griffin_lim(np.zeros((80, 5), np.float32), extractor)
    with pytest.raises(ValueError, match="extractor.padding 'same' is not supported"):
        griffin_lim(features, VocosFeatureExtractor(padding="same"))
