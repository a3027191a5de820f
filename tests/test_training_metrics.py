"""Validation metrics (training.metrics): distances that grow with the damage, Griffin-Lim as a baseline."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import speech_like

from hf_vocos import VocosFeatureExtractor


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
