"""The exact user calls, `from_pretrained("hf-audio/vocos-...")`, resolved through huggingface_hub from a Hub cache
that the test fills itself, with `HF_HUB_OFFLINE=1` (no network here). They run in a fresh interpreter, since
huggingface_hub reads `HF_HUB_CACHE` when it is imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import SMALL_ENCODEC, SMALL_MEL, fill_hub_cache, randomize_, speech_like, tiny_encodec_model

from hf_vocos import (
    VocosConfig,
    VocosEncodecConfig,
    VocosEncodecModel,
    VocosEncodecProcessor,
    VocosFeatureExtractor,
    VocosModel,
    VocosProcessor,
)

USER_CODE = {
    "encodec": """
        processor = VocosProcessor.from_pretrained("hf-audio/vocos-encodec-24khz")
        model = VocosModel.from_pretrained("hf-audio/vocos-encodec-24khz")
        assert type(model).__name__ == "VocosEncodecModel" and type(processor).__name__ == "VocosEncodecProcessor"
        assert processor.audio_tokenizer is not None
        audio = model(**processor(audio=x, bandwidth=6.0, sampling_rate=24000)).audio
    """,
    "codes": """
        model = VocosModel.from_pretrained("hf-audio/vocos-encodec-24khz")
        processor = VocosProcessor.from_pretrained("hf-audio/vocos-encodec-24khz")
        codes = processor(audio=x, bandwidth=6.0, sampling_rate=24000)["codes"]
        audio = model(codes=codes, bandwidth=6.0).audio
    """,
    "mel": """
        processor = VocosProcessor.from_pretrained("hf-audio/vocos-mel-24khz")
        model = VocosModel.from_pretrained("hf-audio/vocos-mel-24khz")
        assert processor.audio_tokenizer is None
        audio = model(**processor(audio=x, sampling_rate=24000)).audio
    """,
    "auto": """
        from transformers import AutoFeatureExtractor, AutoModel, AutoProcessor
        processor = AutoProcessor.from_pretrained("hf-audio/vocos-encodec-24khz")
        model = AutoModel.from_pretrained("hf-audio/vocos-encodec-24khz")
        assert type(processor).__name__ == "VocosEncodecProcessor" and type(model).__name__ == "VocosEncodecModel"
        for repo in ("hf-audio/vocos-encodec-24khz", "hf-audio/vocos-mel-24khz"):
            assert type(AutoFeatureExtractor.from_pretrained(repo)).__name__ == "VocosFeatureExtractor"
        mel = AutoProcessor.from_pretrained("hf-audio/vocos-mel-24khz")
        mel_model = AutoModel.from_pretrained("hf-audio/vocos-mel-24khz")
        assert type(mel).__name__ == "VocosProcessor" and type(mel_model).__name__ == "VocosModel"
        audio = model(**processor(audio=x, bandwidth=6.0, sampling_rate=24000)).audio
    """,
}


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    """A cache holding small random checkpoints under the two released names, saved as hf_vocos saves (the Hub's
    format: the EnCodec processor names facebook/encodec_24khz, which the cache holds too, small and random);
    returns it and the in-process models and processors that were saved there."""
    root = tmp_path_factory.mktemp("hub")
    tokenizer = tiny_encodec_model(seed=12)
    tokenizer.save_pretrained(root / "encodec")
    fill_hub_cache(root / "cache", "facebook/encodec_24khz", root / "encodec")
    checkpoints = {
        "encodec": (
            randomize_(VocosEncodecModel(VocosEncodecConfig(**SMALL_ENCODEC)), seed=11),
            VocosEncodecProcessor(VocosFeatureExtractor(), encodec_name_or_path="facebook/encodec_24khz"),
        ),
        "mel": (randomize_(VocosModel(VocosConfig(**SMALL_MEL)), seed=13), VocosProcessor(VocosFeatureExtractor())),
    }
    for name, (model, processor) in checkpoints.items():
        folder = root / f"checkpoint-{name}"
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
        fill_hub_cache(root / "cache", f"hf-audio/vocos-{name}-24khz", folder)
    checkpoints["encodec"][1].audio_tokenizer = tokenizer  # (what the pointer resolves to, for the expected audio)
    return root / "cache", checkpoints


@pytest.mark.parametrize("call", sorted(USER_CODE))
def test_user_call_from_offline_hub_cache(tmp_path, hub_cache, call):
    cache, checkpoints = hub_cache
    np.save(tmp_path / "x.npy", speech_like(20000, seed=21))
    script = "import numpy as np, torch\nfrom hf_vocos import VocosModel, VocosProcessor\n"
    script += f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
    script += "with torch.no_grad():\n" + textwrap.indent(textwrap.dedent(USER_CODE[call]), "    ")
    script += f"np.save({str(tmp_path / 'audio.npy')!r}, audio.numpy())\n"
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(cache),
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    env.pop("HF_TOKEN", None)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "You are using a model of type" not in result.stderr  # no type-mismatch warning
    assert "LOAD REPORT" not in result.stderr  # nothing missing or unexpected to report

    model, processor = checkpoints["mel" if call == "mel" else "encodec"]
    kwargs = {} if call == "mel" else {"bandwidth": 6.0}
    with torch.no_grad():
        expected = model(**processor(audio=np.load(tmp_path / "x.npy"), sampling_rate=24000, **kwargs)).audio
    np.testing.assert_array_equal(np.load(tmp_path / "audio.npy"), expected.numpy())


def test_audio_input_without_encodec_offline_says_what_is_needed(tmp_path):
    """Offline, with nothing cached: audio input names the EnCodec model, how to fetch it, and that codes work."""
    script = textwrap.dedent(
        """
        import numpy as np, torch
        from hf_vocos import VocosEncodecProcessor, VocosFeatureExtractor
        processor = VocosEncodecProcessor(VocosFeatureExtractor(), encodec_name_or_path="facebook/encodec_24khz")
        codes = processor(codes=torch.zeros(8, 10, dtype=torch.long), bandwidth=6.0)["codes"]
        assert tuple(codes.shape) == (8, 1, 10)
        try:
            processor(audio=np.zeros(24000, np.float32), bandwidth=6.0, sampling_rate=24000)
        except OSError as error:
            print("MESSAGE", error)
        """
    )
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(tmp_path / "empty"),
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    message = result.stdout.split("MESSAGE", 1)[1]
    assert "the EnCodec model 'facebook/encodec_24khz' is needed to encode audio to codes" in message
    assert "hf download facebook/encodec_24khz" in message and "works without it" in message
