"""hf_vocos: the Vocos neural vocoder (Siuzdak 2023) as a Hugging Face transformers model.

Importing the package registers its classes with transformers' Auto factories, so `AutoConfig`, `AutoModel`,
`AutoFeatureExtractor` and `AutoProcessor` resolve `model_type="vocos"` checkpoints.
"""

from ._environment import check_environment

# Before anything imports transformers' audio classes: a broken torchaudio/torchcodec or an old transformers gives one
# clear message instead of a traceback from deep inside transformers.
check_environment()

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoProcessor  # noqa: E402

from .configuration_vocos import VocosConfig, VocosEncodecConfig  # noqa: E402
from .feature_extraction_vocos import VocosFeatureExtractor  # noqa: E402
from .inference_vocos import CPUTiledImplementation, InferenceImplementation  # noqa: E402
from .modeling_vocos import (  # noqa: E402
    VocosEncodecModel,
    VocosEncodecOutput,
    VocosEncodecPreTrainedModel,
    VocosModel,
    VocosOutput,
    VocosPreTrainedModel,
    VocosStreamingDecoder,
)
from .processing_vocos import VocosEncodecProcessor, VocosProcessor  # noqa: E402
from .sharing import with_remote_code  # noqa: E402
from .version import __version__  # noqa: E402

__all__ = [
    "CPUTiledImplementation",
    "InferenceImplementation",
    "VocosConfig",
    "VocosEncodecConfig",
    "VocosEncodecModel",
    "VocosEncodecOutput",
    "VocosEncodecPreTrainedModel",
    "VocosEncodecProcessor",
    "VocosFeatureExtractor",
    "VocosModel",
    "VocosOutput",
    "VocosPreTrainedModel",
    "VocosProcessor",
    "VocosStreamingDecoder",
    "with_remote_code",
    "__version__",
]

# Tolerant of a transformers that registers these model types itself (exist_ok).
for _config, _model, _processor in (
    (VocosConfig, VocosModel, VocosProcessor),
    (VocosEncodecConfig, VocosEncodecModel, VocosEncodecProcessor),
):
    AutoConfig.register(_config.model_type, _config, exist_ok=True)
    AutoModel.register(_config, _model, exist_ok=True)
    AutoFeatureExtractor.register(_config, VocosFeatureExtractor, exist_ok=True)
    AutoProcessor.register(_config, _processor, exist_ok=True)
del _config, _model, _processor
