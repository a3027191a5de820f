"""Quality metrics of generated audio against a reference: log-mel L1, multi-resolution STFT distance, and PESQ (wide
band) and STOI when the `pesq` / `pystoi` packages are installed (`pip install "hf_vocos[train]"`)."""

from __future__ import annotations

import numpy as np
import torch

from ..audio_io import resample
from ..feature_extraction_vocos import VocosFeatureExtractor
from .losses import MultiResolutionSTFTLoss

__all__ = ["audio_metrics", "griffin_lim"]

_STFT_DISTANCE = MultiResolutionSTFTLoss()


def _aligned(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    length = min(len(reference), len(estimate))
    return reference[:length].astype(np.float32), estimate[:length].astype(np.float32)


def audio_metrics(
    reference: np.ndarray, estimate: np.ndarray, sampling_rate: int, extractor: VocosFeatureExtractor
) -> dict:
    """Metrics of `estimate` against `reference` (mono, same rate; compared over their common length):
    `log_mel_l1` (lower is better), `mrstft` (lower), and where installed `pesq_wb` (1-4.6, higher) and `stoi`
    (0-1, higher)."""
    reference, estimate = _aligned(reference, estimate)
    mels = extractor([reference, estimate], sampling_rate=extractor.sampling_rate)["input_features"]
    pair = torch.from_numpy(np.stack([reference, estimate]))
    with torch.no_grad():
        results = {
            "log_mel_l1": float(np.abs(mels[0] - mels[1]).mean()),
            "mrstft": float(_STFT_DISTANCE(pair[1:], pair[:1])),
        }
    try:
        from pesq import NoUtterancesError, pesq

        narrow = [resample(x, sampling_rate, 16000) for x in (reference, estimate)]
        try:
            results["pesq_wb"] = float(pesq(16000, narrow[0], narrow[1], "wb"))
        except (NoUtterancesError, ValueError):  # no speech found, or a silent estimate
            results["pesq_wb"] = float("nan")
    except ImportError:
        pass
    try:
        from pystoi import stoi

        results["stoi"] = float(stoi(reference, estimate, sampling_rate, extended=False))
    except ImportError:
        pass
    return results


def griffin_lim(
    log_mel: np.ndarray, extractor: VocosFeatureExtractor, iterations: int = 32, seed: int = 0
) -> np.ndarray:
    """Audio from a log-mel spectrogram (n_mels, frames) by Griffin-Lim: magnitudes from the mel by the filters'
    pseudo-inverse (clamped to non-negative), then `iterations` rounds of phase estimation. The classic baseline for a
    neural vocoder. Features with `center` padding only."""
    if extractor.padding != "center":
        raise ValueError(f"griffin_lim: extractor.padding {extractor.padding!r} is not supported; expected 'center'")
    if log_mel.ndim != 2 or log_mel.shape[0] != extractor.feature_size:
        raise ValueError(
            f"griffin_lim: log_mel must have shape ({extractor.feature_size}, frames), got {log_mel.shape}"
        )
    filters = torch.from_numpy(extractor.mel_filters)  # (freq, mels)
    mel = torch.from_numpy(np.exp(log_mel).astype(np.float32))  # (mels, frames)
    magnitude = (torch.linalg.pinv(filters.T) @ mel).clamp_min(0)  # least-norm inverse of the filters, (freq, frames)
    window = torch.from_numpy(extractor.window)
    generator = torch.Generator().manual_seed(seed)
    angles = torch.exp(2j * torch.pi * torch.rand(magnitude.shape, generator=generator))
    length = (magnitude.shape[-1] - 1) * extractor.hop_length
    for _ in range(iterations):
        audio = torch.istft(
            magnitude * angles,
            extractor.n_fft,
            extractor.hop_length,
            extractor.win_length,
            window,
            center=True,
            length=length,
        )
        spectrum = torch.stft(
            audio, extractor.n_fft, extractor.hop_length, extractor.win_length, window, center=True, return_complex=True
        )
        angles = torch.exp(1j * torch.angle(spectrum[..., : magnitude.shape[-1]]))
    return torch.istft(
        magnitude * angles,
        extractor.n_fft,
        extractor.hop_length,
        extractor.win_length,
        window,
        center=True,
        length=length,
    ).numpy()
