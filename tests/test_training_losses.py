"""Training losses (training.losses): the training log-mel is the feature extractor's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import speech_like

from hf_vocos import VocosFeatureExtractor


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


def test_hinge_and_feature_matching_losses_by_hand():
    """The original's GAN objective: hinge losses and feature matching, each averaged over sub-discriminators."""
    from hf_vocos.training.losses import discriminator_hinge_loss, feature_matching_loss, generator_hinge_loss

    real = [torch.tensor([2.0, 0.5]), torch.tensor([[-1.0]])]
    fake = [torch.tensor([-2.0, 0.5]), torch.tensor([[3.0]])]
    # first: mean(0, 0.5) + mean(0, 1.5) = 1.0; second: 2.0 + 4.0 = 6.0
    assert discriminator_hinge_loss(real, fake).item() == pytest.approx(3.5)
    # first: mean(3, 0.5) = 1.75; second: 0
    assert generator_hinge_loss(fake).item() == pytest.approx(0.875)
    reals = [[torch.zeros(2, 3), torch.ones(4)], [torch.full((5,), 2.0)]]
    fakes = [[torch.ones(2, 3), torch.ones(4)], [torch.zeros(5)]]
    assert feature_matching_loss(reals, fakes).item() == pytest.approx((1.0 + 0.0 + 2.0) / 2)
