"""Training settings (training.config): every bad setting is refused with a message naming it."""

from __future__ import annotations

import pytest
from conftest import TINY_TRAINING, tiny_training_config

pytest.importorskip("accelerate")

from hf_vocos.training import VocosTrainer  # noqa: E402


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
        (
            {"model_config": {**TINY_TRAINING, "bandwidths": [1.5, 3.0], "input_channels": 128}},
            "EnCodec .* not supported",
        ),
        ({"model_config": {**TINY_TRAINING, "model_type": "vocos_encodec"}}, "EnCodec .* not supported"),
        ({"feature_extractor": {"feature_size": 80}}, "feature_extractor: 80 mels"),
        ({"resume_from": "latest"}, "resume_from: 'latest', but .* holds no checkpoint"),
    ],
)
def test_bad_configs_raise(training_clips, tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        VocosTrainer(tiny_training_config(training_clips, tmp_path, **overrides))
