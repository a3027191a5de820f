"""Training losses: log-mel L1, multi-resolution STFT, hinge GAN and feature matching (the original Vocos objective)."""

from __future__ import annotations

import torch
from torch import nn

from ..feature_extraction_vocos import VocosFeatureExtractor

__all__ = [
    "LogMelSpectrogram",
    "MultiResolutionSTFTLoss",
    "discriminator_hinge_loss",
    "feature_matching_loss",
    "generator_hinge_loss",
]


class LogMelSpectrogram(nn.Module):
    """The log-mel `VocosFeatureExtractor` computes, as a differentiable torch module on (batch, samples) audio: the
    same padding, window, filters and log floor (so training inputs and the mel loss use the inference features)."""

    def __init__(self, extractor: VocosFeatureExtractor):
        super().__init__()
        self.n_fft, self.hop_length, self.win_length = extractor.n_fft, extractor.hop_length, extractor.win_length
        self.edge_padding, self.log_floor = extractor.edge_padding, extractor.log_floor
        self.power = getattr(extractor, "power", 1.0)
        self.magnitude_epsilon = getattr(extractor, "magnitude_epsilon", 0.0)
        self.register_buffer("window", torch.from_numpy(extractor.window.copy()), persistent=False)
        self.register_buffer("filters", torch.from_numpy(extractor.mel_filters.copy()), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        padded = nn.functional.pad(audio[:, None], (self.edge_padding, self.edge_padding), mode="reflect")[:, 0]
        spectrum = torch.stft(
            padded.float(), self.n_fft, self.hop_length, self.win_length, self.window, center=False, return_complex=True
        )
        # sqrt(re^2 + im^2) with a floor under the square root, as |X| has no gradient at 0. The floor must stay far
        # below the log floor's reach (1e-15 per bin here, against 1e-7 per mel band), or digitally silent stretches
        # get other features than the extractor gives them; the gradient stays bounded (|d|X|/d re| <= 1).
        squared = torch.view_as_real(spectrum).square().sum(-1)
        if self.power == 2:
            magnitude = squared + self.magnitude_epsilon
        else:
            magnitude = (squared + self.magnitude_epsilon).clamp_min(1e-30).sqrt()
        mel = torch.matmul(magnitude.transpose(-1, -2), self.filters).transpose(-1, -2)
        return torch.log(torch.clamp(mel, min=self.log_floor))


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence + log-magnitude L1, averaged over STFT resolutions (n_fft, hop, window)."""

    def __init__(self, resolutions=((512, 128, 512), (1024, 256, 1024), (2048, 512, 2048))):
        super().__init__()
        self.resolutions = tuple(resolutions)
        for n_fft, _, window_length in self.resolutions:
            self.register_buffer(f"window_{n_fft}", torch.hann_window(window_length), persistent=False)

    def magnitude(self, audio: torch.Tensor, n_fft: int, hop: int, window_length: int) -> torch.Tensor:
        spectrum = torch.stft(
            audio.float(), n_fft, hop, window_length, getattr(self, f"window_{n_fft}"), return_complex=True
        )
        return torch.view_as_real(spectrum).square().sum(-1).clamp_min(1e-10).sqrt()

    def forward(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = 0.0
        for n_fft, hop, window_length in self.resolutions:
            predicted, reference = (
                self.magnitude(estimate, n_fft, hop, window_length),
                self.magnitude(target, n_fft, hop, window_length),
            )
            convergence = torch.linalg.norm(reference - predicted) / torch.linalg.norm(reference).clamp_min(1e-8)
            log_magnitude = nn.functional.l1_loss(torch.log(predicted), torch.log(reference))
            total = total + convergence + log_magnitude
        return total / len(self.resolutions)


def discriminator_hinge_loss(real_scores: list[torch.Tensor], fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))), averaged over sub-discriminators."""
    losses = [torch.relu(1 - real).mean() + torch.relu(1 + fake).mean() for real, fake in zip(real_scores, fake_scores)]
    return sum(losses) / len(losses)


def generator_hinge_loss(fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """mean(relu(1 - D(G(z)))), averaged over sub-discriminators."""
    return sum(torch.relu(1 - fake).mean() for fake in fake_scores) / len(fake_scores)


def feature_matching_loss(
    real_features: list[list[torch.Tensor]], fake_features: list[list[torch.Tensor]]
) -> torch.Tensor:
    """L1 between the discriminators' hidden features of real and generated audio, summed over layers and averaged
    over sub-discriminators (as the original)."""
    per_discriminator = [
        sum(torch.mean(torch.abs(real.detach() - fake)) for real, fake in zip(reals, fakes))
        for reals, fakes in zip(real_features, fake_features)
    ]
    return sum(per_discriminator) / len(per_discriminator)
