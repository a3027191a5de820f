"""Training data: audio (or feature/audio pairs) held in memory at the model's rate, and random hop-aligned crops.

Crops are drawn from a generator seeded with (seed, step, process): batch `step` is the same on every run, so a
resumed run sees exactly the batches an uninterrupted one would, with no data-loader state to save.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..audio_io import AUDIO_SUFFIXES, AudioError, find_files, load_audio, resample, to_mono

__all__ = ["AudioCorpus", "CropSampler", "PairCorpus", "load_corpus"]

logger = logging.getLogger("hf_vocos")


@dataclass
class AudioCorpus:
    """Mono float32 clips at `sampling_rate`, and their names."""

    clips: list[np.ndarray]
    names: list[str]
    sampling_rate: int


@dataclass
class PairCorpus:
    """(features (channels, frames), audio) pairs for fine-tuning on an acoustic model's output: audio[i] holds the
    `num_samples(frames)` samples the features describe."""

    features: list[np.ndarray]
    clips: list[np.ndarray]
    names: list[str]
    sampling_rate: int


def load_corpus(
    source: str, sampling_rate: int, audio_column: str = "audio", data_format: str = "audio", num_samples=None
):
    """Read a training or validation source (see `TrainingConfig`). Raises ValueError for a source with no audio."""
    if data_format == "pairs":
        return _load_pairs(Path(source), sampling_rate, num_samples)
    clips, names = [], []
    for name, value in _audio_values(source, audio_column):
        try:
            audio, rate = load_audio(value, name=name)
        except AudioError as error:
            logger.warning(f"skipping {error}")
            continue
        audio, _ = to_mono(audio)
        clips.append(resample(audio, rate, sampling_rate))
        names.append(name)
    if not clips:
        raise ValueError(f"train/validation data {source}: no readable audio found")
    return AudioCorpus(clips, names, sampling_rate)


def _audio_values(source: str, audio_column: str):
    from ..dataset_vocos import is_saved_dataset, load_source

    path = Path(source)
    if path.is_dir() and not is_saved_dataset(path):  # a plain folder: read it without datasets, naming each file
        for file in find_files(path):
            yield str(file.relative_to(path)), file
        return

    dataset = load_source(source, None, audio_column)
    for index, value in enumerate(dataset[audio_column]):
        yield f"row {index}", value


def _load_pairs(folder: Path, sampling_rate: int, num_samples) -> PairCorpus:
    if not folder.is_dir():
        raise ValueError(f"pairs data {folder}: no such folder")
    features, clips, names = [], [], []
    for feature_file in sorted(folder.rglob("*.npy")):
        audio_files = [
            feature_file.with_suffix(suffix)
            for suffix in sorted(AUDIO_SUFFIXES)
            if feature_file.with_suffix(suffix).exists()
        ]
        if not audio_files:
            logger.warning(f"skipping {feature_file}: no audio file beside it")
            continue
        array = np.load(feature_file, allow_pickle=False).astype(np.float32)
        audio, rate = load_audio(audio_files[0])
        audio = resample(to_mono(audio)[0], rate, sampling_rate)
        expected = num_samples(array.shape[-1])
        if abs(len(audio) - expected) > num_samples(2) - num_samples(1):  # more than a hop off: not the same utterance
            raise ValueError(
                f"pairs data {feature_file}: {array.shape[-1]} frames describe {expected} samples, but "
                f"{audio_files[0].name} has {len(audio)}"
            )
        clips.append(np.pad(audio, (0, max(0, expected - len(audio))))[:expected])
        features.append(array)
        names.append(str(feature_file.relative_to(folder)))
    if not features:
        raise ValueError(f"pairs data {folder}: no name.npy features with a name.wav (or other audio) beside them")
    return PairCorpus(features, clips, names, sampling_rate)


class CropSampler:
    """Random hop-aligned crops of `crop_frames` frames (`crop_frames * hop_length` samples for audio)."""

    def __init__(
        self,
        corpus,
        crop_frames: int,
        hop_length: int,
        batch_size: int,
        seed: int,
        process_index: int = 0,
        num_samples=None,
    ):
        self.corpus, self.crop_frames, self.hop_length = corpus, crop_frames, hop_length
        self.batch_size, self.seed, self.process_index = batch_size, seed, process_index
        self.num_samples = num_samples
        lengths = np.array([len(clip) for clip in corpus.clips], dtype=np.float64)
        self.weights = lengths / lengths.sum()  # longer clips are drawn more often: every second equally likely

    def batch(self, step: int, micro_step: int = 0):
        """Audio crops (batch, samples) for audio corpora; (features (batch, channels, crop_frames), audio crops) for
        pairs. A pure function of (seed, step, micro_step, process)."""
        rng = np.random.default_rng([self.seed, step, micro_step, self.process_index])
        choices = rng.choice(len(self.corpus.clips), size=self.batch_size, p=self.weights)
        if isinstance(self.corpus, PairCorpus):
            features, audio = [], []
            length = self.num_samples(self.crop_frames)
            for index in choices:
                frames = self.corpus.features[index]
                start = int(rng.integers(0, max(1, frames.shape[-1] - self.crop_frames + 1)))
                crop = frames[:, start : start + self.crop_frames]
                clip = self.corpus.clips[index][start * self.hop_length : start * self.hop_length + length]
                if crop.shape[-1] < self.crop_frames:  # a short utterance: pad with the features of silence
                    crop = np.pad(
                        crop, ((0, 0), (0, self.crop_frames - crop.shape[-1])), constant_values=float(frames.min())
                    )
                features.append(crop)
                audio.append(np.pad(clip, (0, length - len(clip))))
            return torch.from_numpy(np.stack(features)), torch.from_numpy(np.stack(audio))
        length = self.crop_frames * self.hop_length
        crops = []
        for index in choices:
            clip = self.corpus.clips[index]
            start = self.hop_length * int(rng.integers(0, max(1, (len(clip) - length) // self.hop_length + 1)))
            crop = clip[start : start + length]
            crops.append(np.pad(crop, (0, length - len(crop))))
        return torch.from_numpy(np.stack(crops))
