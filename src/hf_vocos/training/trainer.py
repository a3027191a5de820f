"""The training loop: the original Vocos objective on accelerate (mixed precision, gradient accumulation, several
processes or GPUs), checkpoints with optimizer state, exact resumption, validation metrics and logging."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..audio_io import atomic_path
from ..configuration_vocos import VocosConfig
from ..feature_extraction_vocos import VocosFeatureExtractor
from ..modeling_vocos import VocosEncodecModel, VocosModel
from ..processing_vocos import VocosProcessor
from .config import TrainingConfig
from .data import CropSampler, PairCorpus, load_corpus
from .discriminators import MultiPeriodDiscriminator, MultiResolutionDiscriminator
from .losses import (
    LogMelSpectrogram,
    MultiResolutionSTFTLoss,
    discriminator_hinge_loss,
    feature_matching_loss,
    generator_hinge_loss,
)
from .metrics import audio_metrics

__all__ = ["VocosTrainer"]

logger = logging.getLogger("hf_vocos")

CHECKPOINT_PREFIX = "checkpoint-"
STATE_FILE = "training_state.pt"


class VocosTrainer:
    """Set up a run from a `TrainingConfig`: `train()` runs it to `max_steps`, `step()` runs one step."""

    def __init__(self, config: TrainingConfig):
        from accelerate import Accelerator
        from transformers import get_cosine_schedule_with_warmup

        self.config = config
        self.accelerator = Accelerator(mixed_precision=config.mixed_precision, cpu=not torch.cuda.is_available())
        torch.manual_seed(config.seed)
        if config.model is not None:
            self.model = VocosModel.from_pretrained(config.model)
            self.extractor = VocosProcessor.from_pretrained(config.model).feature_extractor
        else:
            model_config = VocosConfig.from_dict(dict(config.model_config))  # (an EnCodec model's gives its class)
            self.model = (VocosEncodecModel if model_config.is_codes_model else VocosModel)(model_config)
            self.extractor = VocosFeatureExtractor(**config.feature_extractor)
        model_config = self.model.config
        if model_config.is_codes_model:
            raise ValueError("model: training EnCodec (codes) models is not supported; train a mel model")
        if (self.extractor.feature_size, self.extractor.hop_length, self.extractor.sampling_rate) != (
            model_config.input_channels,
            model_config.hop_length,
            model_config.sampling_rate,
        ):
            raise ValueError(
                f"feature_extractor: {self.extractor.feature_size} mels, hop {self.extractor.hop_length} at "
                f"{self.extractor.sampling_rate} Hz do not fit the model ({model_config.input_channels} input "
                "channels, "
                f"hop {model_config.hop_length} at {model_config.sampling_rate} Hz)"
            )
        hop = model_config.hop_length
        self.crop_frames = max(1, round(config.crop_seconds * model_config.sampling_rate / hop))
        crop_samples = (
            model_config.num_samples(self.crop_frames) if config.data_format == "pairs" else self.crop_frames * hop
        )
        if crop_samples < max(
            model_config.n_fft, self.extractor.n_fft, 2048 if config.uses_gan or "mrstft" in config.losses else 0
        ):
            raise ValueError(
                f"crop_seconds: {config.crop_seconds} s ({crop_samples} samples) is shorter than the FFTs it must hold "
                f"(n_fft {model_config.n_fft}, and 2048 for the multi-resolution losses and discriminators)"
            )
        corpus = load_corpus(
            config.train_data,
            model_config.sampling_rate,
            config.audio_column,
            config.data_format,
            model_config.num_samples,
        )
        self.sampler = CropSampler(
            corpus,
            self.crop_frames,
            hop,
            config.batch_size,
            config.seed,
            self.accelerator.process_index,
            model_config.num_samples,
        )
        self.validation = None
        if config.validation_data:
            self.validation = load_corpus(
                config.validation_data,
                model_config.sampling_rate,
                config.audio_column,
                config.data_format,
                model_config.num_samples,
            )

        self.log_mel = LogMelSpectrogram(self.extractor)
        self.stft_loss = MultiResolutionSTFTLoss()
        self.discriminators = nn.ModuleDict()
        if config.uses_gan:
            if "mpd" in config.discriminators:
                self.discriminators["mpd"] = MultiPeriodDiscriminator()
            if "mrd" in config.discriminators:
                self.discriminators["mrd"] = MultiResolutionDiscriminator()
        self.generator_optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.learning_rate, betas=config.betas, weight_decay=config.weight_decay
        )
        self.generator_scheduler = get_cosine_schedule_with_warmup(
            self.generator_optimizer, config.warmup_steps, config.max_steps
        )
        self.discriminator_optimizer = self.discriminator_scheduler = None
        if len(self.discriminators):
            self.discriminator_optimizer = torch.optim.AdamW(
                self.discriminators.parameters(),
                lr=config.learning_rate,
                betas=config.betas,
                weight_decay=config.weight_decay,
            )
            self.discriminator_scheduler = get_cosine_schedule_with_warmup(
                self.discriminator_optimizer, config.warmup_steps, config.max_steps
            )
        self.model.train()
        prepared = self.accelerator.prepare(
            self.model,
            self.discriminators,
            self.generator_optimizer,
            *([self.discriminator_optimizer] if self.discriminator_optimizer else []),
        )
        self.model, self.discriminators, self.generator_optimizer = prepared[:3]
        if self.discriminator_optimizer is not None:
            self.discriminator_optimizer = prepared[3]
        self.log_mel.to(self.accelerator.device)
        self.stft_loss.to(self.accelerator.device)
        self.global_step = 0
        self.output_dir = Path(config.output_dir)
        self._writer = None
        if config.resume_from:
            self.load_checkpoint(self._checkpoint_path(config.resume_from))

    # ---- one step ---------------------------------------------------------------------------------------------------

    def _inputs(self, micro_step: int):
        batch = self.sampler.batch(self.global_step, micro_step)
        device = self.accelerator.device
        if isinstance(self.sampler.corpus, PairCorpus):
            features, audio = batch
            return features.to(device), audio.to(device)
        audio = batch.to(device)
        with torch.no_grad():
            return self.log_mel(audio), audio

    def step(self) -> dict[str, float]:
        """One optimisation step (of `gradient_accumulation_steps` micro-batches); returns the losses."""
        config, accelerator = self.config, self.accelerator
        adversarial = config.uses_gan and self.global_step >= config.mel_warmup_steps
        accumulate = config.gradient_accumulation_steps
        logs: dict[str, float] = {}

        def add(name, value):
            logs[name] = logs.get(name, 0.0) + float(value.detach() if torch.is_tensor(value) else value) / accumulate

        micro_batches = [self._inputs(micro) for micro in range(accumulate)]
        if adversarial:
            self.discriminator_optimizer.zero_grad(set_to_none=True)
            for features, audio in micro_batches:
                with torch.no_grad(), accelerator.autocast():
                    generated = self.model(input_features=features).audio
                with accelerator.autocast():
                    loss = self._discriminator_loss(audio, generated.detach())
                accelerator.backward(loss / accumulate)
                add("discriminator/total", loss)
            self._clip(self.discriminators.parameters())
            self.discriminator_optimizer.step()
            self.discriminator_scheduler.step()

        self.generator_optimizer.zero_grad(set_to_none=True)
        for features, audio in micro_batches:
            with accelerator.autocast():
                generated = self.model(input_features=features).audio
                losses = self._generator_losses(audio, generated, adversarial)
            total = sum(losses.values())
            accelerator.backward(total / accumulate)
            for name, value in losses.items():
                add(f"generator/{name}", value)
            add("generator/total", total)
        self._clip(self.model.parameters())
        self.generator_optimizer.step()
        self.generator_scheduler.step()
        self.global_step += 1
        logs["learning_rate"] = self.generator_scheduler.get_last_lr()[0]
        return logs

    def _discriminator_loss(self, audio: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
        total = 0.0
        for name, discriminator in self.discriminators.items():
            real, _ = discriminator(audio)
            fake, _ = discriminator(generated)
            weight = self.config.mrd_loss_weight if name == "mrd" else 1.0
            total = total + weight * discriminator_hinge_loss(real, fake)
        return total

    def _generator_losses(
        self, audio: torch.Tensor, generated: torch.Tensor, adversarial: bool
    ) -> dict[str, torch.Tensor]:
        config = self.config
        losses = {}
        if "mel" in config.losses:
            losses["mel"] = config.mel_loss_weight * nn.functional.l1_loss(self.log_mel(generated), self.log_mel(audio))
        if "mrstft" in config.losses:
            losses["mrstft"] = config.mrstft_loss_weight * self.stft_loss(generated, audio)
        if adversarial:
            for name, discriminator in self.discriminators.items():
                weight = config.mrd_loss_weight if name == "mrd" else 1.0
                fake, fake_features = discriminator(generated)
                if "adversarial" in config.losses:
                    losses[f"adversarial_{name}"] = weight * generator_hinge_loss(fake)
                if "feature_matching" in config.losses:
                    with torch.no_grad():
                        _, real_features = discriminator(audio)
                    losses[f"feature_matching_{name}"] = weight * feature_matching_loss(real_features, fake_features)
        return losses

    def _clip(self, parameters) -> None:
        if self.config.max_grad_norm is not None:
            self.accelerator.clip_grad_norm_(parameters, self.config.max_grad_norm)

    # ---- the run ----------------------------------------------------------------------------------------------------

    def train(self) -> dict[str, float]:
        """Run from the current step to `max_steps`: log, validate and checkpoint on schedule; save the final model to
        `output_dir/model`. Returns the last validation metrics (or the last losses without validation data)."""
        config = self.config
        last: dict[str, float] = {}
        started, since = time.perf_counter(), self.global_step
        while self.global_step < config.max_steps:
            logs = self.step()
            final = self.global_step == config.max_steps or self._out_of_time(started)
            if self.global_step % config.log_every == 0 or final:
                rate = (self.global_step - since) / (time.perf_counter() - started)
                self.log({**logs, "steps_per_second": rate})
                last = logs
            if self.validation is not None and (self.global_step % config.eval_every == 0 or final):
                last = self.evaluate()
                self.log(last)
            if self.global_step % config.save_every == 0 or final:
                self.save_checkpoint()
            if final:
                break
        if self.accelerator.is_main_process:
            self.save_model(self.output_dir / "model")
        self.accelerator.wait_for_everyone()
        return last

    def _out_of_time(self, started: float) -> bool:
        """Whether `max_time_seconds` has passed; with several processes all take the main process's answer, so all
        stop at the same step."""
        if self.config.max_time_seconds is None:
            return False
        out_of_time = time.perf_counter() - started > self.config.max_time_seconds
        if self.accelerator.num_processes > 1:
            from accelerate.utils import broadcast

            flag = torch.tensor([float(out_of_time)], device=self.accelerator.device)
            out_of_time = bool(broadcast(flag, from_process=0).item())
        if out_of_time:
            logger.info(f"max_time_seconds {self.config.max_time_seconds} reached at step {self.global_step}; stopping")
        return out_of_time

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean metrics over the validation clips (each cut to `validation_seconds`), decoded from their features."""
        model = self.accelerator.unwrap_model(self.model)
        model.eval()
        rate = model.config.sampling_rate
        sums: dict[str, list[float]] = {}
        for index in range(min(self.config.validation_clips, len(self.validation.clips))):
            reference = self.validation.clips[index][: int(self.config.validation_seconds * rate)]
            if isinstance(self.validation, PairCorpus):
                frames = self.validation.features[index][
                    :, : max(1, int(self.config.validation_seconds * model.config.frame_rate))
                ]
                features = torch.from_numpy(frames)[None]
                reference = self.validation.clips[index][: model.config.num_samples(frames.shape[-1])]
            else:
                features = torch.from_numpy(self.extractor(reference, sampling_rate=rate)["input_features"])
            generated = model(input_features=features.to(self.accelerator.device)).audio[0].float().cpu().numpy()
            for name, value in audio_metrics(reference, generated, rate, self.extractor).items():
                sums.setdefault(name, []).append(value)
        model.train()
        return {f"validation/{name}": float(np.nanmean(values)) for name, values in sums.items()}

    def log(self, values: dict[str, float]) -> None:
        if not self.accelerator.is_main_process:
            return
        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(self.output_dir / "logs"))
            except ImportError:
                self._writer = False
        if self._writer:
            for name, value in values.items():
                self._writer.add_scalar(name, value, self.global_step)
        line = "  ".join(f"{name} {value:.4g}" for name, value in values.items())
        logger.info(f"step {self.global_step}: {line}")

    # ---- checkpoints ------------------------------------------------------------------------------------------------

    def save_model(self, folder: Path) -> None:
        """The generator and its processor, loadable with VocosModel/VocosProcessor.from_pretrained."""
        self.accelerator.unwrap_model(self.model).save_pretrained(folder)
        VocosProcessor(self.extractor).save_pretrained(folder)

    def save_checkpoint(self) -> Path:
        """`output_dir/checkpoint-<step>`: the model (save_pretrained) plus optimizer, scheduler and discriminator
        state; only the newest `keep_checkpoints` are kept."""
        folder = self.output_dir / f"{CHECKPOINT_PREFIX}{self.global_step:07d}"
        if self.accelerator.is_main_process:
            state = {
                "step": self.global_step,
                "generator_optimizer": self.generator_optimizer.state_dict(),
                "generator_scheduler": self.generator_scheduler.state_dict(),
                "discriminators": self.accelerator.unwrap_model(self.discriminators).state_dict(),
            }
            if self.discriminator_optimizer is not None:
                state["discriminator_optimizer"] = self.discriminator_optimizer.state_dict()
                state["discriminator_scheduler"] = self.discriminator_scheduler.state_dict()
            with atomic_path(folder, folder=True) as temporary:  # an interrupted save leaves nothing
                self.save_model(temporary)
                torch.save(state, temporary / STATE_FILE)
                (temporary / "training_config.json").write_text(json.dumps(self.config.to_dict(), indent=2))
            for old in sorted(self.output_dir.glob(f"{CHECKPOINT_PREFIX}*[0-9]"))[: -self.config.keep_checkpoints]:
                shutil.rmtree(old)
        self.accelerator.wait_for_everyone()
        return folder

    def load_checkpoint(self, folder: Path) -> None:
        """Continue exactly where `folder` was saved: weights, optimizers, schedulers, step (the data is a function
        of the step)."""
        from safetensors.torch import load_file

        if not (folder / STATE_FILE).is_file():
            raise ValueError(f"resume_from: {folder} is not a checkpoint of this trainer (no {STATE_FILE})")
        state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
        model = self.accelerator.unwrap_model(self.model)
        model.load_state_dict(load_file(folder / "model.safetensors"))
        self.accelerator.unwrap_model(self.discriminators).load_state_dict(state["discriminators"])
        self.generator_optimizer.load_state_dict(state["generator_optimizer"])
        self.generator_scheduler.load_state_dict(state["generator_scheduler"])
        if self.discriminator_optimizer is not None and "discriminator_optimizer" in state:
            self.discriminator_optimizer.load_state_dict(state["discriminator_optimizer"])
            self.discriminator_scheduler.load_state_dict(state["discriminator_scheduler"])
        self.global_step = int(state["step"])
        logger.info(f"resumed from {folder} at step {self.global_step}")

    def _checkpoint_path(self, resume_from: str) -> Path:
        if resume_from != "latest":
            return Path(resume_from)
        checkpoints = sorted(self.output_dir.glob(f"{CHECKPOINT_PREFIX}*[0-9]"))
        if not checkpoints:
            raise ValueError(f"resume_from: 'latest', but {self.output_dir} holds no {CHECKPOINT_PREFIX}* folder")
        return checkpoints[-1]
