"""Mel front-ends as their own projects compute them, re-implemented from their documented parameters for the tests
(torchaudio cannot load with the CPU torch build, so its MelSpectrogram is written out here in its own float32
arithmetic):

- `torchaudio_filterbank`: torchaudio's `melscale_fbanks`, in float32 as torchaudio computes it (the buffer an
  original Vocos checkpoint stores);
- `vocos_log_mel`: the `vocos` package's MelSpectrogramFeatures (and the `matcha` fork's, which adds f_min, f_max,
  norm and mel_scale and clamps at 1e-5), F5-TTS's "vocos" mel;
- `matcha_log_mel`: Matcha-TTS's `mel_spectrogram` (HiFi-GAN's), also used by CosyVoice.
"""

from __future__ import annotations

import math

import librosa
import torch

_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def _hz_to_mel(frequency: float, mel_scale: str) -> float:
    if mel_scale == "htk":
        return 2595.0 * math.log10(1.0 + frequency / 700.0)
    if frequency < _MIN_LOG_HZ:
        return frequency / _F_SP
    return _MIN_LOG_MEL + math.log(frequency / _MIN_LOG_HZ) / _LOGSTEP


def _mel_to_hz(mels: torch.Tensor, mel_scale: str) -> torch.Tensor:
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    frequencies = _F_SP * mels
    logarithmic = mels >= _MIN_LOG_MEL
    frequencies[logarithmic] = _MIN_LOG_HZ * torch.exp(_LOGSTEP * (mels[logarithmic] - _MIN_LOG_MEL))
    return frequencies


def torchaudio_filterbank(sample_rate, n_fft, n_mels, f_min=0.0, f_max=None, norm=None, mel_scale="htk"):
    """(n_fft // 2 + 1, n_mels) triangular filters, float32 throughout, as torchaudio's MelScale builds them."""
    f_max = float(sample_rate // 2) if f_max is None else float(f_max)
    all_frequencies = torch.linspace(0, sample_rate // 2, n_fft // 2 + 1)
    mel_points = torch.linspace(_hz_to_mel(f_min, mel_scale), _hz_to_mel(f_max, mel_scale), n_mels + 2)
    points = _mel_to_hz(mel_points, mel_scale)
    widths = points[1:] - points[:-1]
    slopes = points.unsqueeze(0) - all_frequencies.unsqueeze(1)
    down = (-1.0 * slopes[:, :-2]) / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    filters = torch.max(torch.zeros(1), torch.min(down, up))
    if norm == "slaney":
        filters *= (2.0 / (points[2 : n_mels + 2] - points[:n_mels])).unsqueeze(0)
    return filters


def vocos_log_mel(
    audio: torch.Tensor,
    sample_rate=24000,
    n_fft=1024,
    hop_length=256,
    n_mels=100,
    padding="center",
    f_min=0.0,
    f_max=None,
    norm=None,
    mel_scale="htk",
    clip_val=1e-7,
) -> torch.Tensor:
    """(batch, n_mels, frames): torchaudio's MelSpectrogram(power=1) on (batch, samples) audio, reflect-padded by
    (n_fft - hop) // 2 first for "same" padding, then log(clamp(mel, clip_val))."""
    if padding == "same":
        pad = (n_fft - hop_length) // 2
        audio = torch.nn.functional.pad(audio[:, None], (pad, pad), mode="reflect")[:, 0]
    spectrum = torch.stft(
        audio,
        n_fft,
        hop_length,
        n_fft,
        torch.hann_window(n_fft),
        center=padding == "center",
        pad_mode="reflect",
        return_complex=True,
    ).abs()
    filters = torchaudio_filterbank(sample_rate, n_fft, n_mels, f_min, f_max, norm, mel_scale)
    mel = torch.matmul(spectrum.transpose(-1, -2), filters).transpose(-1, -2)
    return torch.log(torch.clamp(mel, min=clip_val))


def matcha_log_mel(audio: torch.Tensor, n_fft, num_mels, sampling_rate, hop_size, win_size, fmin, fmax) -> torch.Tensor:
    """(batch, num_mels, frames): Matcha-TTS's mel_spectrogram (center=False): librosa's slaney filters, reflect
    padding of (n_fft - hop) / 2, sqrt(re^2 + im^2 + 1e-9), log(clamp(mel, 1e-5))."""
    filters = torch.from_numpy(
        librosa.filters.mel(sr=sampling_rate, n_fft=n_fft, n_mels=num_mels, fmin=fmin, fmax=fmax)
    ).float()
    pad = int((n_fft - hop_size) / 2)
    audio = torch.nn.functional.pad(audio.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spectrum = torch.view_as_real(
        torch.stft(
            audio,
            n_fft,
            hop_length=hop_size,
            win_length=win_size,
            window=torch.hann_window(win_size),
            center=False,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
    )
    spectrum = torch.sqrt(spectrum.pow(2).sum(-1) + 1e-9)
    return torch.log(torch.clamp(torch.matmul(filters, spectrum), min=1e-5))


def _matcha_recipe(sampling_rate: int, n_fft: int, hop_length: int, num_mels: int = 80, f_max: float = 8000.0):
    """A Matcha-TTS-style front-end (window = n_fft) and the VocosFeatureExtractor arguments that reproduce it."""

    def frontend(audio):
        return matcha_log_mel(audio, n_fft, num_mels, sampling_rate, hop_length, n_fft, 0, f_max)

    arguments = {
        "feature_size": num_mels,
        "sampling_rate": sampling_rate,
        "n_fft": n_fft,
        "hop_length": hop_length,
        "f_max": f_max,
        "mel_scale": "slaney",
        "mel_norm": "slaney",
        "padding": "same",
        "log_floor": 1e-5,
        "magnitude_epsilon": 1e-9,
    }
    return frontend, arguments


# The front-ends of the docs page "Vocos behind your TTS": their own mel, and the VocosFeatureExtractor arguments that
# reproduce it.
RECIPES = {
    "matcha-22khz": _matcha_recipe(22050, 1024, 256),
    "cosyvoice-24khz": _matcha_recipe(24000, 1920, 480),
    "f5-tts-24khz": (
        lambda audio: vocos_log_mel(audio, clip_val=1e-5),
        {"feature_size": 100, "sampling_rate": 24000, "n_fft": 1024, "hop_length": 256, "log_floor": 1e-5},
    ),
}
