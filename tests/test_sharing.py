"""Sharing (sharing): checkpoints that carry their code load with plain transformers; model cards."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import SMALL_MEL, model_for, randomize_, small_config, speech_like, tiny_encodec_model

import hf_vocos
from hf_vocos import VocosConfig, VocosEncodecProcessor, VocosFeatureExtractor, VocosModel, VocosProcessor
from hf_vocos.sharing import model_card

BLOCK_HF_VOCOS = """
import sys

class BlockHfVocos:
    def find_spec(self, name, path=None, target=None):
        if name == "hf_vocos" or name.startswith("hf_vocos."):
            raise ImportError("hf_vocos is blocked in this test")
        return None

sys.meta_path.insert(0, BlockHfVocos())
"""


@pytest.mark.parametrize("variant", ["mel", "encodec"])
def test_checkpoint_with_code_loads_without_hf_vocos(tmp_path, variant):
    config = small_config(variant)
    model = randomize_(model_for(config), seed=41)
    if variant == "mel":
        processor = VocosProcessor(VocosFeatureExtractor())
    else:
        processor = VocosEncodecProcessor(VocosFeatureExtractor(), audio_tokenizer=tiny_encodec_model(seed=42))
    with hf_vocos.with_remote_code():
        model.save_pretrained(tmp_path / "checkpoint")
        processor.save_pretrained(tmp_path / "checkpoint")
    # The model's code and nothing of the tooling (conversion, command line, training, benchmarks) travels.
    assert {module.name for module in (tmp_path / "checkpoint").glob("*.py")} == {
        "capabilities.py",
        "checkpoint_formats.py",
        "configuration_vocos.py",
        "feature_extraction_vocos.py",
        "inference_vocos.py",
        "modeling_vocos.py",
        "processing_vocos.py",
        "streaming_vocos.py",
    }
    for module in (tmp_path / "checkpoint").glob("*.py"):  # the code that travels imports no hf_vocos
        assert not re.search(r"^\s*(from|import)\s+hf_vocos", module.read_text(), re.MULTILINE), module.name
    names = (
        ("VocosModel", "VocosProcessor", "VocosConfig")
        if variant == "mel"
        else ("VocosEncodecModel", "VocosEncodecProcessor", "VocosEncodecConfig")
    )

    clip = speech_like(20000, seed=43)
    np.save(tmp_path / "clip.npy", clip)
    kwargs = "" if variant == "mel" else ", bandwidth=6.0"
    script = BLOCK_HF_VOCOS + textwrap.dedent(
        f"""
        import numpy as np, torch
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoProcessor
        folder = {str(tmp_path / "checkpoint")!r}
        model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
        processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
        assert type(model).__name__ == {names[0]!r} and type(processor).__name__ == {names[1]!r}
        assert type(AutoConfig.from_pretrained(folder, trust_remote_code=True)).__name__ == {names[2]!r}
        extractor = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True)
        assert type(extractor).__name__ == "VocosFeatureExtractor"
        with torch.no_grad():
            audio = model(**processor(audio=np.load({str(tmp_path / "clip.npy")!r}), sampling_rate=24000{kwargs})).audio
        np.save({str(tmp_path / "audio.npy")!r}, audio.numpy())
        assert not any(name.split(".")[0] == "hf_vocos" for name in sys.modules)
        """
    )
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    with torch.no_grad():
        expected = model(
            **processor(audio=clip, sampling_rate=24000, **({} if variant == "mel" else {"bandwidth": 6.0}))
        ).audio
    np.testing.assert_allclose(np.load(tmp_path / "audio.npy"), expected.numpy(), rtol=0, atol=1e-6)


def test_saves_carry_no_code_by_default(tmp_path):
    model = VocosModel(VocosConfig(**SMALL_MEL))
    processor = VocosProcessor(VocosFeatureExtractor())
    with hf_vocos.with_remote_code():
        model.save_pretrained(tmp_path / "with")
        processor.save_pretrained(tmp_path / "with")
    assert "auto_map" in json.loads((tmp_path / "with" / "config.json").read_text())
    # The same objects saved again outside the block: no code, and no auto_map naming files that are not there.
    model.save_pretrained(tmp_path / "without")
    processor.save_pretrained(tmp_path / "without")
    assert not list((tmp_path / "without").glob("*.py"))
    assert "auto_map" not in json.loads((tmp_path / "without" / "config.json").read_text())
    saved = json.loads((tmp_path / "without" / "preprocessor_config.json").read_text())  # a mel processor: its FE
    assert "auto_map" not in saved
    assert VocosModel._auto_class is None and VocosConfig._auto_class is None


@pytest.mark.parametrize("variant", ["mel", "encodec"])
def test_model_card_names_the_repository_and_both_ways_to_load(variant):
    config = small_config(variant)
    card = model_card(config, VocosFeatureExtractor(), "charactr/vocos-x", "mit", repo_id="me/my-vocos")
    assert card.startswith("---\nlibrary_name: hf_vocos\nlicense: mit\n")
    assert card.count('from_pretrained("me/my-vocos")') == 2
    assert card.count('from_pretrained("me/my-vocos", trust_remote_code=True)') == 2
    assert "source checkpoint: `charactr/vocos-x`" in card and "sampling rate: 24000 Hz" in card
    assert ("bandwidth=6.0" in card) == (variant == "encodec")
    # A checkpoint saved without its code must not promise the trust_remote_code route.
    without = model_card(
        config, VocosFeatureExtractor(), "charactr/vocos-x", "mit", repo_id="me/my-vocos", with_code=False
    )
    assert "trust_remote_code" not in without and without.count('from_pretrained("me/my-vocos")') == 2
