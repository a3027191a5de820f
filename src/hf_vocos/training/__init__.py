"""Training and fine-tuning Vocos with the original objective, on accelerate (`pip install "hf_vocos[train]"`).

    from hf_vocos.training import TrainingConfig, VocosTrainer

    config = TrainingConfig(
        train_data="my_voice/", validation_data="my_voice_heldout/", model="hf-audio/vocos-mel-24khz"
    )
    VocosTrainer(config).train()          # or: hf-vocos train --config config.yaml

See docs/training.md.
"""

from .config import TrainingConfig
from .trainer import VocosTrainer

__all__ = ["TrainingConfig", "VocosTrainer"]
