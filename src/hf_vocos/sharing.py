"""Sharing checkpoints on the Hub: checkpoints that carry their code (so plain transformers loads them with
`trust_remote_code=True`), and model cards.

    import hf_vocos

    with hf_vocos.with_remote_code():
        model.push_to_hub("me/my-vocos")
        processor.push_to_hub("me/my-vocos")

The code written is the package's own modules (configuration, feature extraction, processing, modeling and the
modules they import), copied by transformers' `custom_object_save`: no second copy to drift, and nothing in them
imports `hf_vocos`.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import yaml

__all__ = ["model_card", "source_license", "with_remote_code"]

AUTO_CLASSES = {
    "VocosConfig": "AutoConfig",
    "VocosEncodecConfig": "AutoConfig",
    "VocosModel": "AutoModel",
    "VocosEncodecModel": "AutoModel",
    "VocosFeatureExtractor": "AutoFeatureExtractor",
    "VocosProcessor": "AutoProcessor",
    "VocosEncodecProcessor": "AutoProcessor",
}


@contextlib.contextmanager
def with_remote_code():
    """Within this block, `save_pretrained` and `push_to_hub` of hf_vocos configs, models, feature extractors and
    processors also write their code and an `auto_map`, so the checkpoint loads with plain transformers:
    `AutoModel.from_pretrained(repo, trust_remote_code=True)` (and AutoProcessor, AutoFeatureExtractor, AutoConfig).
    Loading with hf_vocos installed is unaffected (its own classes are used)."""
    from .configuration_vocos import VocosConfig, VocosEncodecConfig
    from .feature_extraction_vocos import VocosFeatureExtractor
    from .modeling_vocos import VocosEncodecModel, VocosModel
    from .processing_vocos import VocosEncodecProcessor, VocosProcessor

    classes = [
        VocosConfig,
        VocosEncodecConfig,
        VocosModel,
        VocosEncodecModel,
        VocosFeatureExtractor,
        VocosProcessor,
        VocosEncodecProcessor,
    ]
    saved = {cls: cls.__dict__.get("_auto_class", _UNSET) for cls in classes}
    try:
        for cls in classes:
            cls.register_for_auto_class(AUTO_CLASSES[cls.__name__])
        yield
    finally:
        for cls, value in saved.items():
            if value is _UNSET:
                del cls._auto_class
            else:
                cls._auto_class = value


_UNSET = object()


def model_card(
    config, extractor, source: str, license: str | None, repo_id: str | None = None, with_code: bool = True
) -> str:
    """A model card (README.md) for a converted checkpoint: what it is, where it comes from and under which license,
    how to load it with hf_vocos and, when the checkpoint carries its code (`with_code`), with plain transformers,
    and its audio settings."""
    repo = repo_id or "path/to/this/checkpoint"
    variant = "EnCodec codes" if config.is_codes_model else f"{extractor.feature_size}-bin log-mel spectrograms"
    if config.is_codes_model:
        call = "inputs = processor(audio=waveform, bandwidth=6.0, sampling_rate=processor.sampling_rate)"
        decode = "audio = model(**inputs).audio            # or model(codes=codes, bandwidth=6.0).audio"
        settings = (
            f"- input: EnCodec 24 kHz codes at {config.frame_rate:g} frames/s; bandwidths {config.bandwidths} kbps use "
            f"{[config.num_quantizers_for_bandwidth(b) for b in config.bandwidths]} codebooks"
        )
    else:
        call = "inputs = processor(audio=waveform, sampling_rate=processor.sampling_rate)"
        decode = "audio = model(**inputs).audio            # or model(input_features=mel).audio"
        settings = (
            f"- input: log-mel, {extractor.feature_size} bins, n_fft {extractor.n_fft}, hop {extractor.hop_length}, "
            f"{extractor.f_min:g}-{extractor.f_max:g} Hz, {extractor.mel_scale} scale, norm {extractor.mel_norm}, "
            f"'{extractor.padding}' padding, natural log clamped at {extractor.log_floor:g}"
        )
    license_line = license or "unknown (not stated by the source checkpoint)"
    remote_code_usage = (
        f"""## Usage with plain transformers

The repository carries the model's code, so transformers and torch suffice:

```python
from transformers import AutoModel, AutoProcessor

processor = AutoProcessor.from_pretrained("{repo}", trust_remote_code=True)
model = AutoModel.from_pretrained("{repo}", trust_remote_code=True)
{call}
{decode}
```

"""
        if with_code
        else ""
    )
    return f"""---
library_name: hf_vocos
license: {license or "other"}
tags:
- audio
- vocoder
- vocos
---

# Vocos ({variant} to audio)

A [Vocos](https://arxiv.org/abs/2306.00814) neural vocoder for the transformers-style `hf_vocos` package
(`VocosModel`, `VocosProcessor`), converted from `{source}`. Its outputs equal the original `vocos` package's to
float32 rounding.

- source checkpoint: `{source}`
- license: {license_line}, as the source checkpoint

## Usage with hf_vocos (`pip install hf_vocos`)

```python
from hf_vocos import VocosModel, VocosProcessor

processor = VocosProcessor.from_pretrained("{repo}")
model = VocosModel.from_pretrained("{repo}")
{call}
{decode}
```

{remote_code_usage}## Audio settings

- sampling rate: {config.sampling_rate} Hz
{settings}
- inverse STFT: n_fft {config.n_fft}, hop {config.hop_length}, '{config.istft_padding}' padding
- backbone: {config.num_hidden_layers} ConvNeXt blocks, width {config.hidden_size}, inner {config.intermediate_size}
"""


def source_license(readme_path: str | os.PathLike | None) -> str | None:
    """The `license:` of a model card's YAML front matter, if any."""
    if readme_path is None or not Path(readme_path).is_file():
        return None
    text = Path(readme_path).read_text(encoding="utf-8", errors="replace")
    match = re.match(r"^---\s*\n(.*?)\n---", text, re.DOTALL)
    if not match:
        return None
    try:
        metadata = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None
    license = metadata.get("license") if isinstance(metadata, dict) else None
    return str(license) if license else None
