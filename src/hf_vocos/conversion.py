"""Mapping from the original `vocos` package's state dict to `VocosModel`'s."""

from __future__ import annotations

import torch

__all__ = ["convert_original_state_dict"]

# Original keys that hold no weights of ours: buffers we derive from the config (windows, torchaudio's mel filters)
# and EnCodec's own weights, which belong to the processor's audio tokenizer, not to the vocoder.
_DERIVED_PREFIXES = (
    "head.istft.window",
    "feature_extractor.mel_spec.",
    "feature_extractor.encodec.",
)
_RENAMED = {"feature_extractor.codebook_weights": "codebook_embedding.weight"}
_KEPT_PREFIXES = ("backbone.", "head.out.")


def convert_original_state_dict(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Rename an original Vocos state dict (`backbone.*`, `head.*`, `feature_extractor.*`) to `VocosModel` names.

    Returns `(converted, dropped)`: `dropped` holds the derived buffers left out (e.g. `head.istft.window` and the
    torchaudio mel buffers), so a caller can check them against what we compute. Raises `ValueError` naming any key
    this mapping does not know, so that an unsupported architecture never loads silently.
    """
    converted, dropped, unknown = {}, {}, []
    for key, value in state_dict.items():
        if key in _RENAMED:
            converted[_RENAMED[key]] = value
        elif key.startswith(_DERIVED_PREFIXES):
            dropped[key] = value
        elif key.startswith(_KEPT_PREFIXES):
            converted[key] = value
        else:
            unknown.append(key)
    if unknown:
        shown = ", ".join(sorted(unknown)[:8]) + (" ..." if len(unknown) > 8 else "")
        raise ValueError(f"The original state dict has {len(unknown)} keys this conversion does not know: {shown}.")
    return converted, dropped
