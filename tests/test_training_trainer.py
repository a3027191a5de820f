"""The training loop (training.trainer): the loss goes down, resumption is exact, a time limit stops with a
checkpoint and the model, the `hf-vocos train` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINY_TRAINING, tiny_training_config

pytest.importorskip("accelerate")

from hf_vocos import VocosModel  # noqa: E402
from hf_vocos.training import VocosTrainer  # noqa: E402


def test_a_few_steps_lower_the_generator_loss(training_clips, tmp_path):
    trainer = VocosTrainer(
        tiny_training_config(training_clips, tmp_path, max_steps=40, learning_rate=3e-3, crop_seconds=0.5)
    )
    losses = [trainer.step()["generator/total"] for _ in range(40)]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses


def test_resume_continues_exactly(training_clips, tmp_path):
    gan = dict(losses=["mel", "mrstft", "adversarial", "feature_matching"], discriminators=["mrd"], mel_warmup_steps=1)
    uninterrupted = VocosTrainer(tiny_training_config(training_clips, tmp_path / "a", **gan))
    for _ in range(2):
        uninterrupted.step()
    checkpoint = uninterrupted.save_checkpoint()
    expected = uninterrupted.step()
    resumed = VocosTrainer(tiny_training_config(training_clips, tmp_path / "b", resume_from=str(checkpoint), **gan))
    assert resumed.global_step == 2
    observed = resumed.step()
    assert observed.keys() == expected.keys() and "discriminator/total" in observed
    for name in expected:
        assert observed[name] == pytest.approx(expected[name], rel=1e-5, abs=1e-6), name


def test_max_time_stops_early_with_a_checkpoint_and_the_model(training_clips, tmp_path):
    trainer = VocosTrainer(tiny_training_config(training_clips, tmp_path, max_steps=10_000, max_time_seconds=1e-9))
    trainer.train()
    assert trainer.global_step == 1  # the first step already ran past the limit
    assert (tmp_path / "run" / "checkpoint-0000001" / "training_state.pt").is_file()
    assert VocosModel.from_pretrained(tmp_path / "run" / "model").config.hidden_size == TINY_TRAINING["hidden_size"]


def test_train_command(training_clips, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "train_data": str(training_clips / "train"),
                "model_config": TINY_TRAINING,
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
