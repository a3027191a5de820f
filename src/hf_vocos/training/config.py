"""Training configuration: one dataclass, read from YAML or JSON, checked before anything runs."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TrainingConfig"]

KNOWN_LOSSES = ("mel", "mrstft", "adversarial", "feature_matching")
KNOWN_DISCRIMINATORS = ("mpd", "mrd")


@dataclass
class TrainingConfig:
    r"""
    Everything a training run reads. Defaults follow the original Vocos recipe (configs/vocos.yaml): AdamW with
    betas (0.8, 0.9) and a cosine schedule, hinge GAN losses on a multi-period and a multi-resolution discriminator,
    feature matching, and mel L1 weighted 45.

    Data (`train_data`, `validation_data`) is a folder of audio files (searched recursively), a dataset saved with
    `save_to_disk`, or a Hub dataset name; or, for fine-tuning on an acoustic model's output, `pairs`: a folder of
    `name.npy` features each beside `name.wav` (any audio format) of the matching audio.
    """

    output_dir: str = "vocos-training"
    # the generator: fine-tune `model` (Hub id or folder), or train from scratch with `model_config` (VocosConfig
    # kwargs) and `feature_extractor` (VocosFeatureExtractor kwargs; both default to the mel 24 kHz release)
    model: str | None = None
    model_config: dict = field(default_factory=dict)
    feature_extractor: dict = field(default_factory=dict)

    # data
    train_data: str | None = None
    validation_data: str | None = None
    data_format: str = "audio"  # "audio" or "pairs"
    audio_column: str = "audio"
    crop_seconds: float = 1.0
    validation_clips: int = 8
    validation_seconds: float = 6.0

    # optimisation
    max_steps: int = 10000
    max_time_seconds: float | None = (
        None  # stop (checkpoint and final model saved) at the first step past this wall time
    )
    batch_size: int = 16
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-4
    betas: tuple[float, float] = (0.8, 0.9)
    weight_decay: float = 0.01
    warmup_steps: int = 0
    max_grad_norm: float | None = 1000.0
    mixed_precision: str = "no"  # "no", "bf16", "fp16" (accelerate)

    # objective
    losses: list[str] = field(default_factory=lambda: ["mel", "adversarial", "feature_matching"])
    discriminators: list[str] = field(default_factory=lambda: ["mpd", "mrd"])
    mel_loss_weight: float = 45.0
    mrstft_loss_weight: float = 1.0
    mrd_loss_weight: float = 0.1
    mel_warmup_steps: int = 0  # steps with the reconstruction losses only (the original's pretrain_mel_steps)

    # bookkeeping
    seed: int = 0
    log_every: int = 50
    eval_every: int = 1000
    save_every: int = 1000
    keep_checkpoints: int = 2
    resume_from: str | None = None  # a checkpoint folder, or "latest" (the newest under output_dir)

    def __post_init__(self):
        self.betas = tuple(self.betas)
        self.losses = list(self.losses)
        self.discriminators = list(self.discriminators)
        unknown = [name for name in self.losses if name not in KNOWN_LOSSES]
        if unknown:
            raise ValueError(f"losses: unknown loss {unknown[0]!r}; known: {list(KNOWN_LOSSES)}")
        if not {"mel", "mrstft"} & set(self.losses):
            raise ValueError("losses: include 'mel' and/or 'mrstft'; the GAN losses alone do not train a vocoder")
        unknown = [name for name in self.discriminators if name not in KNOWN_DISCRIMINATORS]
        if unknown:
            raise ValueError(
                f"discriminators: unknown discriminator {unknown[0]!r}; known: {list(KNOWN_DISCRIMINATORS)}"
            )
        if {"adversarial", "feature_matching"} & set(self.losses) and not self.discriminators:
            raise ValueError("losses: 'adversarial' and 'feature_matching' need at least one discriminator")
        if self.data_format not in ("audio", "pairs"):
            raise ValueError(f"data_format: expected 'audio' or 'pairs', got {self.data_format!r}")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ValueError(f"mixed_precision: expected 'no', 'bf16' or 'fp16', got {self.mixed_precision!r}")
        for name in (
            "max_steps",
            "batch_size",
            "gradient_accumulation_steps",
            "log_every",
            "eval_every",
            "save_every",
            "keep_checkpoints",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        for name in ("warmup_steps", "mel_warmup_steps", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected a non-negative integer, got {value!r}")
        if self.max_time_seconds is not None and (
            isinstance(self.max_time_seconds, bool)
            or not isinstance(self.max_time_seconds, (int, float))
            or not math.isfinite(self.max_time_seconds)
            or self.max_time_seconds <= 0
        ):
            raise ValueError(
                f"max_time_seconds: expected a positive number of seconds or None, got {self.max_time_seconds!r}"
            )
        for name in ("crop_seconds", "learning_rate", "validation_seconds"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name}: expected a positive number, got {value!r}")
        if self.train_data is None:
            raise ValueError("train_data: required (an audio folder, a saved dataset, a Hub dataset, or pairs)")

    @property
    def uses_gan(self) -> bool:
        return bool({"adversarial", "feature_matching"} & set(self.losses))

    @classmethod
    def from_file(cls, path: str | Path, **overrides) -> "TrainingConfig":
        """Read a YAML (.yaml/.yml) or JSON file; `overrides` replace its values (e.g. from the command line)."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"--config {path}: no such file")
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix.lower() in (".yaml", ".yml"):
                import yaml

                values = yaml.safe_load(text) or {}
            else:
                values = json.loads(text)
        except Exception as error:  # yaml and json raise their own kinds
            raise ValueError(f"--config {path}: cannot parse it ({type(error).__name__}: {error})") from None
        if not isinstance(values, dict):
            raise ValueError(f"--config {path}: expected a mapping of settings")
        values.update({key: value for key, value in overrides.items() if value is not None})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"--config {path}: unknown settings {unknown}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["betas"] = list(self.betas)
        return values
