"""Training data (training.data): (features, audio) pairs for fine-tuning on an acoustic model's output, corpora
with nothing readable."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from conftest import speech_like, tiny_training_config

pytest.importorskip("accelerate")

from hf_vocos import VocosFeatureExtractor  # noqa: E402
from hf_vocos.training import VocosTrainer  # noqa: E402


def test_training_on_feature_audio_pairs(training_clips, tmp_path):
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
        tiny_training_config(
            training_clips,
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
        VocosTrainer(tiny_training_config(training_clips, tmp_path, train_data=str(pairs), data_format="pairs"))


def test_empty_dataset_raises(training_clips, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "broken.wav").write_bytes(b"not audio")
    with pytest.raises(ValueError, match="no readable audio found"):
        VocosTrainer(tiny_training_config(training_clips, tmp_path, train_data=str(tmp_path / "empty")))
