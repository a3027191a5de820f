"""The GAN discriminators (training.discriminators): output and feature-map shapes."""

from __future__ import annotations

import torch

from hf_vocos.training.discriminators import MultiPeriodDiscriminator, MultiResolutionDiscriminator


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
