"""hf_vocos: the Vocos neural vocoder (Siuzdak 2023) as a Hugging Face transformers model.

Importing the package registers its classes with transformers' Auto factories, so `AutoConfig`, `AutoModel`,
`AutoFeatureExtractor` and `AutoProcessor` resolve `model_type="vocos"` checkpoints.
"""

from ._environment import check_environment

# Before anything imports transformers' audio classes: a broken torchaudio/torchcodec or an old transformers gives one
# clear message instead of a traceback from deep inside transformers.
check_environment()

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoProcessor  # noqa: E402

from .configuration_vocos import VocosConfig  # noqa: E402
from .feature_extraction_vocos import VocosFeatureExtractor  # noqa: E402
from .modeling_vocos import VocosModel, VocosOutput, VocosPreTrainedModel  # noqa: E402
from .processing_vocos import VocosProcessor  # noqa: E402
from .sharing import with_remote_code  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "VocosConfig",
    "VocosFeatureExtractor",
    "VocosModel",
    "VocosOutput",
    "VocosPreTrainedModel",
    "VocosProcessor",
    "with_remote_code",
]

AutoConfig.register(VocosConfig.model_type, VocosConfig, exist_ok=True)
AutoModel.register(VocosConfig, VocosModel, exist_ok=True)
AutoFeatureExtractor.register(VocosConfig, VocosFeatureExtractor, exist_ok=True)
AutoProcessor.register(VocosConfig, VocosProcessor, exist_ok=True)
