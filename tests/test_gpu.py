"""The model on a CUDA GPU: parity with the original there, half precision, chunked and streaming decoding, ragged
batches, features made on the GPU, torch.compile (CUDA graphs included), save/load and ONNX export of a GPU model.

Skipped without CUDA (CI has none); run them where a GPU is: `pytest tests/test_gpu.py`. TF32 is turned off for the
parity tests (cuDNN convolutions use it by default, which rounds their inputs to 10 mantissa bits, for the original
and ours alike); the half-precision and compile tests run with the defaults a user has.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SMALL_ENCODEC, SMALL_MEL, model_for, ours_from_original, randomize_, small_config, speech_like
from reference import build_encodec_vocos, build_mel_vocos

from hf_vocos import (
    VocosConfig,
    VocosEncodecConfig,
    VocosEncodecModel,
    VocosFeatureExtractor,
    VocosModel,
    VocosProcessor,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


@pytest.fixture
def no_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.fixture(scope="module")
def mel_pair():
    original = build_mel_vocos(seed=0).to(CUDA)
    return original, ours_from_original(original, VocosConfig()).to(CUDA)


@pytest.fixture(scope="module")
def encodec_pair():
    original = build_encodec_vocos(seed=0).to(CUDA)
    return original, ours_from_original(original, VocosEncodecConfig()).to(CUDA)


def _speech_features(seconds: float, items: int = 2) -> torch.Tensor:
    clips = np.stack([speech_like(int(seconds * 24000), seed=seed) for seed in range(1, items + 1)])
    return torch.from_numpy(VocosFeatureExtractor()(clips, sampling_rate=24000)["input_features"])


def _snr_db(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    return float(10 * torch.log10(reference.square().sum() / (reference - estimate).square().sum()))


def test_mel_parity_with_original_on_gpu(mel_pair, no_tf32):
    original, ours = mel_pair
    features = _speech_features(2.0).to(CUDA)
    with torch.inference_mode():
        expected = original.decode(features)
        output = ours(input_features=features)
    assert output.audio.device.type == "cuda" and output.audio.dtype == torch.float32
    assert (
        output.audio.shape == expected.shape == (2, (features.shape[-1] - 1) * 256)
    )  # "center": n_fft // 2 trimmed each side
    torch.testing.assert_close(output.audio, expected, rtol=0, atol=1e-5)
    assert expected.abs().max() > 0.05


@pytest.mark.parametrize("bandwidth_id, bandwidth", list(enumerate([1.5, 3.0, 6.0, 12.0])))
def test_encodec_parity_with_original_on_gpu(encodec_pair, no_tf32, bandwidth_id, bandwidth):
    original, ours = encodec_pair
    quantizers = [2, 4, 8, 16][bandwidth_id]
    codes = torch.randint(0, 1024, (quantizers, 2, 150), generator=torch.Generator().manual_seed(bandwidth_id)).to(CUDA)
    with torch.inference_mode():
        expected = original.decode(
            original.codes_to_features(codes), bandwidth_id=torch.tensor([bandwidth_id], device=CUDA)
        )
        output = ours(codes=codes, bandwidth=bandwidth)
    assert output.audio.shape == expected.shape == (2, 150 * 320)
    torch.testing.assert_close(output.audio, expected, rtol=0, atol=1e-5)


def test_gpu_output_equals_cpu_output(mel_pair, no_tf32):
    _, ours = mel_pair
    features = _speech_features(1.0)
    cpu_model = model_for(ours.config).eval()
    cpu_model.load_state_dict(ours.state_dict())
    with torch.inference_mode():
        on_cpu = cpu_model(input_features=features).audio
        on_gpu = ours(input_features=features.to(CUDA)).audio
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=0, atol=1e-5)


def test_cpu_inputs_are_moved_to_the_models_device(encodec_pair):
    """Features, codes and masks made on the CPU (the processor's default) go to the model's device."""
    _, ours = encodec_pair
    codes = torch.randint(0, 1024, (8, 2, 60), generator=torch.Generator().manual_seed(3))
    mask = torch.ones(2, 60, dtype=torch.long)
    mask[1, 40:] = 0
    with torch.inference_mode():
        from_cpu = ours(codes=codes, bandwidth=6.0, attention_mask=mask)
        on_gpu = ours(codes=codes.to(CUDA), bandwidth=torch.tensor(6.0), attention_mask=mask.to(CUDA))
    assert from_cpu.audio.device.type == "cuda" and from_cpu.attention_mask.device.type == "cuda"
    torch.testing.assert_close(from_cpu.audio, on_gpu.audio, rtol=0, atol=0)
    assert int(from_cpu.attention_mask[1].sum()) == 40 * 320


@pytest.mark.parametrize("dtype, min_snr_db", [(torch.float16, 45.0), (torch.bfloat16, 30.0)])
@pytest.mark.parametrize("variant", ["mel", "encodec"])
def test_half_precision_on_gpu_keeps_its_snr(mel_pair, encodec_pair, variant, dtype, min_snr_db):
    _, ours = mel_pair if variant == "mel" else encodec_pair
    half = model_for(ours.config).eval()
    half.load_state_dict(ours.state_dict())
    half.to(CUDA, dtype)
    if variant == "mel":
        inputs = {"input_features": _speech_features(3.0).to(CUDA)}
    else:
        inputs = {
            "codes": torch.randint(0, 1024, (8, 2, 225), generator=torch.Generator().manual_seed(5)).to(CUDA),
            "bandwidth": 6.0,
        }
    with torch.inference_mode():
        reference = ours(**inputs).audio
        audio = half(**inputs).audio
    assert audio.dtype == torch.float32 and bool(torch.isfinite(audio).all())
    assert _snr_db(reference, audio) >= min_snr_db


VARIANTS = {
    "mel-center": ("mel", {}),
    "mel-same": ("mel", {"istft_padding": "same"}),
    "encodec-same": ("encodec", {}),
    "encodec-center": ("encodec", {"istft_padding": "center"}),
}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def small_case(request):
    model = randomize_(model_for(small_config(VARIANTS[request.param][0], **VARIANTS[request.param][1])), seed=3).to(
        CUDA
    )
    generator = torch.Generator().manual_seed(4)
    if model.config.is_codes_model:
        inputs = {"codes": torch.randint(0, 1024, (8, 2, 173), generator=generator).to(CUDA), "bandwidth": 6.0}
    else:
        inputs = {"input_features": torch.randn(2, 100, 173, generator=generator).to(CUDA)}
    return model, inputs


@pytest.mark.parametrize("chunk_size", [1, 7, 27, 61, 500])
def test_decode_chunked_on_gpu_equals_full_decode(small_case, no_tf32, chunk_size):
    model, inputs = small_case
    with torch.inference_mode():
        full = model(**inputs)
        output = model.decode_chunked(**inputs, chunk_size=chunk_size)
    assert output.audio.device.type == "cuda"
    torch.testing.assert_close(output.audio, full.audio, rtol=0, atol=1e-5)
    torch.testing.assert_close(output.attention_mask, full.attention_mask, rtol=0, atol=0)


def test_stream_on_gpu_equals_full_decode(small_case, no_tf32):
    model, inputs = small_case
    kwargs = {key: value for key, value in inputs.items() if key == "bandwidth"}
    (tensor,) = [value for key, value in inputs.items() if key != "bandwidth"]
    sizes = [5, 40, 1, 90, 37]
    pieces, start = [], 0
    for size in sizes:
        pieces.append(tensor[..., start : start + size])
        start += size
    with torch.inference_mode():
        full = model(**inputs).audio
        streamed = list(model.stream(iter(pieces), **kwargs))
    assert all(piece.device.type == "cuda" for piece in streamed)
    torch.testing.assert_close(torch.cat(streamed, dim=-1), full, rtol=0, atol=1e-5)


def test_ragged_batch_on_gpu_items_equal_solo(small_case, no_tf32):
    model, inputs = small_case
    (name,) = [key for key in inputs if key != "bandwidth"]
    tensor = inputs[name]
    lengths = [173, 101]
    mask = torch.zeros(2, 173, dtype=torch.long, device=CUDA)
    for item, length in enumerate(lengths):
        mask[item, :length] = 1
    kwargs = {key: value for key, value in inputs.items() if key == "bandwidth"}
    with torch.inference_mode():
        batch = model(**{name: tensor}, **kwargs, attention_mask=mask)
        for item, length in enumerate(lengths):
            solo_input = tensor[:, item : item + 1, :length] if name == "codes" else tensor[item : item + 1, :, :length]
            solo = model(**{name: solo_input}, **kwargs).audio[0]
            torch.testing.assert_close(batch.audio[item, : solo.shape[0]], solo, rtol=0, atol=1e-5)
            assert not batch.audio[item, solo.shape[0] :].any()


def test_features_made_on_the_gpu_equal_the_cpus():
    extractor = VocosFeatureExtractor()
    clips = [speech_like(24000 * 2, seed=7), speech_like(24000, seed=8)]
    on_cpu = extractor(clips, sampling_rate=24000, return_tensors="pt")
    on_gpu = extractor(clips, sampling_rate=24000, return_tensors="pt", device="cuda")
    assert on_gpu["input_features"].device.type == "cuda"
    # cuFFT and pocketfft round differently: the mel energies agree to float32 rounding of each clip's loudest bin
    # (as the CPU's agree with librosa's, tests/test_feature_extraction_vocos.py); the log magnifies that at the
    # quietest bins, within the same 5e-3 as the CPU against librosa.
    gpu, cpu = on_gpu["input_features"].cpu().double(), on_cpu["input_features"].double()
    relative = (gpu.exp() - cpu.exp()).abs().amax(dim=(1, 2)) / cpu.exp().amax(dim=(1, 2))
    assert float(relative.max()) < 1e-5
    torch.testing.assert_close(gpu, cpu, rtol=0, atol=5e-3)
    torch.testing.assert_close(on_gpu["attention_mask"].cpu(), on_cpu["attention_mask"], rtol=0, atol=0)


def test_processor_to_gpu_model_round_trip(tmp_path):
    """The user's path: processor on the CPU, model loaded onto the GPU with `device_map`, audio back."""
    model = randomize_(VocosModel(VocosConfig(**SMALL_MEL)), seed=9)
    model.save_pretrained(tmp_path)
    VocosProcessor(feature_extractor=VocosFeatureExtractor()).save_pretrained(tmp_path)
    loaded = VocosModel.from_pretrained(tmp_path, device_map="cuda")
    assert loaded.device.type == "cuda"
    processor = VocosProcessor.from_pretrained(tmp_path)
    inputs = processor(
        audio=[speech_like(24000, seed=1), speech_like(12000, seed=2)], sampling_rate=24000, return_tensors="pt"
    )
    with torch.inference_mode():
        on_gpu = loaded(**inputs)
        on_cpu = model.eval()(**inputs)
    torch.testing.assert_close(on_gpu.audio.cpu(), on_cpu.audio, rtol=0, atol=1e-4)
    lengths = [waveform.shape for waveform in processor.batch_decode(on_gpu)]
    assert lengths == [waveform.shape for waveform in processor.batch_decode(on_cpu)] == [(23808,), (11776,)]


@pytest.mark.parametrize("variant", ["mel", "encodec"])
def test_torch_compile_on_gpu_equals_eager(variant):
    config = small_config(variant)
    model = randomize_(model_for(config), seed=16).to(CUDA).eval()
    generator = torch.Generator().manual_seed(17)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, dynamic=True)
    for frames in (40, 57):
        mask = torch.ones(2, frames, dtype=torch.int32, device=CUDA)
        mask[1, 29:] = 0
        if variant == "mel":
            inputs = {"input_features": torch.randn(2, 100, frames, generator=generator).to(CUDA)}
        else:
            inputs = {"codes": torch.randint(0, 1024, (4, 2, frames), generator=generator).to(CUDA), "bandwidth": 3.0}
        with torch.inference_mode():
            output, expected = compiled(**inputs, attention_mask=mask), model(**inputs, attention_mask=mask)
        torch.testing.assert_close(output.audio, expected.audio, rtol=0, atol=1e-4)
        torch.testing.assert_close(output.attention_mask, expected.attention_mask, rtol=0, atol=0)


def test_cuda_graphs_through_compile_reduce_overhead():
    """`mode="reduce-overhead"` records the forward as a CUDA graph: nothing in it may sync with the host (the
    value checks are left out of compiled graphs), or inductor skips the graph, runs the kernels one by one and
    counts the skip; the replayed output equals eager."""
    from torch._dynamo.utils import counters

    model = randomize_(VocosEncodecModel(VocosEncodecConfig(**SMALL_ENCODEC)), seed=18).to(CUDA).eval()
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(model, mode="reduce-overhead", fullgraph=True)
    codes = torch.randint(0, 1024, (8, 2, 64), generator=torch.Generator().manual_seed(19)).to(CUDA)
    with torch.inference_mode():
        expected = model(codes=codes, bandwidth=6.0).audio
        for _ in range(3):  # warm-up, record, replay
            audio = compiled(codes=codes, bandwidth=6.0).audio.clone()
            torch.testing.assert_close(audio, expected, rtol=0, atol=1e-4)
    assert counters["inductor"]["cudagraph_skips"] == 0


def test_onnx_export_of_a_gpu_model(tmp_path):
    pytest.importorskip("onnxruntime")
    from hf_vocos.onnx_export import VocosOnnxModel, export_onnx

    model = randomize_(VocosModel(VocosConfig(**SMALL_MEL)), seed=20).to(CUDA).eval()
    export_onnx(model, tmp_path)
    assert model.device.type == "cuda"  # the export leaves the model where it was
    features = torch.randn(2, 100, 50, generator=torch.Generator().manual_seed(21))
    with torch.inference_mode():
        expected = model(input_features=features.to(CUDA)).audio.cpu()
    audio = VocosOnnxModel.from_pretrained(tmp_path)(input_features=features).audio
    torch.testing.assert_close(audio, expected, rtol=0, atol=1e-4)
