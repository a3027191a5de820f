"""The reference helper leaves no torchaudio stand-in behind, and the stand-in computes nothing."""

from __future__ import annotations

import sys

import pytest
import reference
from transformers.utils.import_utils import is_torchaudio_available


def test_stand_in_is_removed_after_import():
    assert not any(name == "torchaudio" or name.startswith("torchaudio.") for name in sys.modules)
    assert not is_torchaudio_available()
    from transformers import SequenceFeatureExtractor  # noqa: F401  (would fail with a broken torchaudio)


def test_stand_in_refuses_to_compute():
    with pytest.raises(RuntimeError, match="stand-in"):
        reference.original.vocos_feature_extractors.MelSpectrogramFeatures()
