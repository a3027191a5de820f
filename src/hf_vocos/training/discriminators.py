"""The discriminators of the Vocos objective: multi-period (HiFi-GAN) and multi-resolution (complex STFT bands, from
DAC), with optional bandwidth conditioning as in the original. Each returns, per sub-discriminator, its scores and its
hidden feature maps (for the feature-matching loss)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

__all__ = ["MultiPeriodDiscriminator", "MultiResolutionDiscriminator"]


class _Conditioning(nn.Module):
    """An embedding per bandwidth projected onto the last hidden features (zero at init, so unconditioned at first)."""

    def __init__(self, num_embeddings: int | None, channels: int):
        super().__init__()
        self.embedding = nn.Embedding(num_embeddings, channels) if num_embeddings else None
        if self.embedding is not None:
            nn.init.zeros_(self.embedding.weight)

    def forward(self, hidden: torch.Tensor, bandwidth_id: torch.Tensor | None) -> torch.Tensor | float:
        if self.embedding is None or bandwidth_id is None:
            return 0.0
        return (self.embedding(bandwidth_id).view(1, -1, 1, 1) * hidden).sum(dim=1, keepdim=True)


class PeriodDiscriminator(nn.Module):
    """Audio folded into (samples / period, period) and convolved along time with (5, 1) kernels."""

    def __init__(self, period: int, num_embeddings: int | None = None, kernel_size: int = 5, stride: int = 3):
        super().__init__()
        self.period = period
        channels = [1, 32, 128, 512, 1024, 1024]
        self.convs = nn.ModuleList(
            weight_norm(
                nn.Conv2d(c_in, c_out, (kernel_size, 1), (stride if i < 4 else 1, 1), padding=(kernel_size // 2, 0))
            )
            for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:]))
        )
        self.conditioning = _Conditioning(num_embeddings, 1024)
        self.conv_post = weight_norm(nn.Conv2d(1024, 1, (3, 1), padding=(1, 0)))

    def forward(self, audio: torch.Tensor, bandwidth_id: torch.Tensor | None = None):
        hidden = audio[:, None]  # (batch, 1, samples)
        if hidden.shape[-1] % self.period:
            hidden = nn.functional.pad(hidden, (0, self.period - hidden.shape[-1] % self.period), mode="reflect")
        hidden = hidden.view(hidden.shape[0], 1, -1, self.period)
        features = []
        for index, conv in enumerate(self.convs):
            hidden = nn.functional.leaky_relu(conv(hidden), 0.1)
            if index > 0:
                features.append(hidden)
        conditioned = self.conditioning(hidden, bandwidth_id)
        hidden = self.conv_post(hidden)
        features.append(hidden)
        return torch.flatten(hidden + conditioned, 1), features


class MultiPeriodDiscriminator(nn.Module):
    def __init__(self, periods=(2, 3, 5, 7, 11), num_embeddings: int | None = None):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, num_embeddings) for p in periods)

    def forward(self, audio: torch.Tensor, bandwidth_id: torch.Tensor | None = None):
        """audio (batch, samples) -> (scores per sub-discriminator, feature maps per sub-discriminator)."""
        outputs = [discriminator(audio, bandwidth_id) for discriminator in self.discriminators]
        return [scores for scores, _ in outputs], [features for _, features in outputs]


class ResolutionDiscriminator(nn.Module):
    """2-D convolutions over the real and imaginary parts of a complex STFT, one stack per frequency band."""

    BANDS = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))

    def __init__(
        self, window_length: int, num_embeddings: int | None = None, channels: int = 32, hop_factor: float = 0.25
    ):
        super().__init__()
        self.window_length = window_length
        self.hop_length = int(window_length * hop_factor)
        self.register_buffer("window", torch.hann_window(window_length), persistent=False)
        bins = window_length // 2 + 1
        self.bands = [(int(low * bins), int(high * bins)) for low, high in self.BANDS]

        def stack():
            return nn.ModuleList(
                [
                    weight_norm(nn.Conv2d(2, channels, (3, 9), (1, 1), padding=(1, 4))),
                    weight_norm(nn.Conv2d(channels, channels, (3, 9), (1, 2), padding=(1, 4))),
                    weight_norm(nn.Conv2d(channels, channels, (3, 9), (1, 2), padding=(1, 4))),
                    weight_norm(nn.Conv2d(channels, channels, (3, 9), (1, 2), padding=(1, 4))),
                    weight_norm(nn.Conv2d(channels, channels, (3, 3), (1, 1), padding=(1, 1))),
                ]
            )

        self.band_convs = nn.ModuleList(stack() for _ in self.bands)
        self.conditioning = _Conditioning(num_embeddings, channels)
        self.conv_post = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def spectrogram(self, audio: torch.Tensor) -> list[torch.Tensor]:
        audio = audio - audio.mean(dim=-1, keepdim=True)  # no DC offset
        audio = 0.8 * audio / (audio.abs().amax(dim=-1, keepdim=True) + 1e-9)  # peak-normalised
        spectrum = torch.stft(
            audio.float(), self.window_length, self.hop_length, self.window_length, self.window, return_complex=True
        )
        parts = torch.view_as_real(spectrum).permute(0, 3, 2, 1)  # (batch, freq, time, 2) -> (batch, 2, time, freq)
        return [parts[..., low:high] for low, high in self.bands]

    def forward(self, audio: torch.Tensor, bandwidth_id: torch.Tensor | None = None):
        features, outputs = [], []
        for band, stack in zip(self.spectrogram(audio), self.band_convs):
            for index, conv in enumerate(stack):
                band = nn.functional.leaky_relu(conv(band), 0.1)
                if index > 0:
                    features.append(band)
            outputs.append(band)
        hidden = torch.cat(outputs, dim=-1)
        conditioned = self.conditioning(hidden, bandwidth_id)
        hidden = self.conv_post(hidden)
        features.append(hidden)
        return hidden + conditioned, features


class MultiResolutionDiscriminator(nn.Module):
    def __init__(self, window_lengths=(2048, 1024, 512), num_embeddings: int | None = None):
        super().__init__()
        self.discriminators = nn.ModuleList(ResolutionDiscriminator(w, num_embeddings) for w in window_lengths)

    def forward(self, audio: torch.Tensor, bandwidth_id: torch.Tensor | None = None):
        """audio (batch, samples) -> (scores per sub-discriminator, feature maps per sub-discriminator)."""
        outputs = [discriminator(audio, bandwidth_id) for discriminator in self.discriminators]
        return [scores for scores, _ in outputs], [features for _, features in outputs]
