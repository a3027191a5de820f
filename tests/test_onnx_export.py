"""ONNX export: the exported graph on onnxruntime equals the eager model, with dynamic batch and length."""

from __future__ import annotations

import pytest
import torch
from conftest import SMALL_ENCODEC, SMALL_MEL, randomize_

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from hf_vocos import VocosConfig, VocosModel  # noqa: E402
from hf_vocos.onnx_export import VocosOnnxModel, export_onnx  # noqa: E402

CONFIGS = {
    "mel-center": SMALL_MEL,
    # hop does not divide n_fft (the fold overlap-add) and a window shorter than the FFT
    "mel-fold-short-window": {**SMALL_MEL, "n_fft": 512, "hop_length": 100, "win_length": 400, "istft_padding": "same"},
    "encodec-same": SMALL_ENCODEC,
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def exported(request, tmp_path_factory):
    model = randomize_(VocosModel(VocosConfig(**CONFIGS[request.param])), seed=9)
    folder = tmp_path_factory.mktemp(request.param)
    path = export_onnx(model, folder)
    assert path.name == "model.onnx" and (folder / "config.json").exists()
    return model, VocosOnnxModel.from_pretrained(folder)


def test_onnx_equals_eager_with_dynamic_shapes(exported):
    model, onnx_model = exported
    generator = torch.Generator().manual_seed(10)
    for batch_size, frames in ((1, 2), (3, 211), (2, 57)):
        lengths = torch.linspace(frames, 2, batch_size).round().long()
        mask = (torch.arange(frames)[None, :] < lengths[:, None]).int()
        if model.config.is_codes_model:
            bandwidths = model.config.bandwidths
        else:
            bandwidths = [None]
        for bandwidth in bandwidths:
            if bandwidth is None:
                inputs = {"input_features": torch.randn(batch_size, 100, frames, generator=generator)}
            else:
                quantizers = model.config.num_quantizers_for_bandwidth(bandwidth)
                inputs = {
                    "codes": torch.randint(0, 1024, (quantizers, batch_size, frames), generator=generator),
                    "bandwidth": bandwidth,
                }
            with torch.no_grad():
                expected = model(**inputs, attention_mask=mask)
            output = onnx_model(**inputs, attention_mask=mask)
            assert output.audio.shape == expected.audio.shape
            torch.testing.assert_close(output.audio, expected.audio, rtol=0, atol=1e-4)
            torch.testing.assert_close(output.attention_mask, expected.attention_mask, rtol=0, atol=0)


def test_onnx_runner_checks_inputs_like_the_model(exported):
    model, onnx_model = exported
    if model.config.is_codes_model:
        with pytest.raises(ValueError, match="`codes` has 4 codebooks, but 6 kbps uses 8"):
            onnx_model(codes=torch.zeros(4, 1, 10, dtype=torch.long), bandwidth=6.0)
        with pytest.raises(ValueError, match="`bandwidth` is required"):
            onnx_model(codes=torch.zeros(8, 1, 10, dtype=torch.long))
        with pytest.raises(ValueError, match="this ONNX model takes EnCodec `codes`"):
            onnx_model(input_features=torch.zeros(1, 128, 10), bandwidth=6.0)
    else:
        with pytest.raises(ValueError, match=r"`input_features` must have shape \(batch, 100, frames\)"):
            onnx_model(input_features=torch.zeros(1, 80, 10))
        with pytest.raises(ValueError, match="`codes`.*mel model"):
            onnx_model(codes=torch.zeros(2, 1, 10, dtype=torch.long), bandwidth=1.5)
    with pytest.raises(ValueError, match="exactly one"):
        onnx_model()


def test_onnx_runner_session_does_not_spin_unless_told(exported, tmp_path):
    """onnxruntime's workers spin after each run by default, taking a core from torch's threads in the same process;
    the runner's own session turns that off, and session options the caller passes are used as given."""
    import onnxruntime

    model, onnx_model = exported
    entry = "session.intra_op.allow_spinning"
    assert onnx_model.session.get_session_options().get_session_config_entry(entry) == "0"
    export_onnx(model, tmp_path)
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry(entry, "1")
    options.intra_op_num_threads = 1
    chosen = VocosOnnxModel.from_pretrained(tmp_path, session_options=options).session.get_session_options()
    assert chosen.get_session_config_entry(entry) == "1" and chosen.intra_op_num_threads == 1


def test_export_refuses_bfloat16(tmp_path):
    model = VocosModel(VocosConfig(**SMALL_MEL)).to(torch.bfloat16)
    with pytest.raises(ValueError, match="float32"):
        export_onnx(model, tmp_path)
