"""hf_vocos: the Vocos neural vocoder (Siuzdak 2023) as a Hugging Face transformers model.

Importing the package registers its classes with transformers' Auto factories, so `AutoConfig`, `AutoModel`,
`AutoFeatureExtractor` and `AutoProcessor` resolve `model_type="vocos"` checkpoints.
"""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoProcessor

from .configuration_vocos import VocosConfig
from .feature_extraction_vocos import VocosFeatureExtractor
from .modeling_vocos import VocosModel, VocosOutput, VocosPreTrainedModel
from .processing_vocos import VocosProcessor

__version__ = "0.1.0"

__all__ = [
    "VocosConfig",
    "VocosFeatureExtractor",
    "VocosModel",
    "VocosOutput",
    "VocosPreTrainedModel",
    "VocosProcessor",
]

AutoConfig.register(VocosConfig.model_type, VocosConfig, exist_ok=True)
AutoModel.register(VocosConfig, VocosModel, exist_ok=True)
AutoFeatureExtractor.register(VocosConfig, VocosFeatureExtractor, exist_ok=True)
AutoProcessor.register(VocosConfig, VocosProcessor, exist_ok=True)
