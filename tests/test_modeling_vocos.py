"""VocosModel: parity with the original vocos/encodec classes, ragged batches, save/load, bad inputs."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from conftest import RELEASE_ENCODEC, SMALL_ENCODEC, SMALL_MEL, randomize_, require_packed_linear, speech_like
from reference import build_encodec_vocos, build_mel_vocos, decode_codes, decode_features, encodec_codes
from transformers import AutoModel

from hf_vocos import VocosConfig, VocosFeatureExtractor, VocosModel, VocosOutput
from hf_vocos.conversion import convert_original_state_dict

BANDWIDTHS = [1.5, 3.0, 6.0, 12.0]


def ours_from_original(original: torch.nn.Module, config: VocosConfig) -> VocosModel:
    """Our model holding the original's weights (all keys accounted for, derived buffers checked)."""
    weights, dropped = convert_original_state_dict(original.state_dict())
    model = VocosModel(config).eval()
    model.load_state_dict(weights, strict=True)
    torch.testing.assert_close(dropped["head.istft.window"], model.head.istft.window, rtol=0, atol=0)
    return model


@pytest.fixture(scope="module")
def mel_pair():
    original = build_mel_vocos(seed=0)
    return original, ours_from_original(original, VocosConfig())


@pytest.fixture(scope="module")
def encodec_pair():
    original = build_encodec_vocos(seed=0)
    return original, ours_from_original(original, VocosConfig(**RELEASE_ENCODEC))


def test_mel_parity_with_original(mel_pair):
    original, ours = mel_pair
    extractor = VocosFeatureExtractor()
    clips = np.stack([speech_like(24000, seed=1), speech_like(24000, seed=2)])
    features = torch.from_numpy(extractor(clips, sampling_rate=24000)["input_features"])
    expected = decode_features(original, features)
    with torch.no_grad():
        output = ours(input_features=features)
    assert isinstance(output, VocosOutput)
    assert output.audio.shape == expected.shape == (2, 93 * 256)
    assert output.audio.dtype == torch.float32
    torch.testing.assert_close(output.audio, expected, rtol=0, atol=1e-5)
    assert output.attention_mask.shape == output.audio.shape and bool(output.attention_mask.all())
    assert expected.abs().max() > 0.05  # a real signal, not a degenerate one


@pytest.mark.parametrize("bandwidth_id, bandwidth", list(enumerate(BANDWIDTHS)))
def test_encodec_parity_with_original(encodec_pair, bandwidth_id, bandwidth):
    original, ours = encodec_pair
    audio = torch.from_numpy(np.stack([speech_like(24000, seed=4), speech_like(24000, seed=5)]))
    # The original's whole copy-synthesis: its EnCodec encodes, its codebook table embeds, its backbone decodes.
    with torch.inference_mode():
        expected = original(audio, bandwidth_id=torch.tensor([bandwidth_id]))
    codes = encodec_codes(original.feature_extractor.encodec, audio, bandwidth)
    assert codes.shape == (ours.config.num_quantizers_for_bandwidth(bandwidth), 2, 75)
    with torch.no_grad():
        output = ours(codes=codes, bandwidth=bandwidth)
        features = ours.codes_to_features(codes, bandwidth)
    assert output.audio.shape == expected.shape == (2, 75 * 320)
    torch.testing.assert_close(output.audio, expected, rtol=0, atol=1e-5)
    with torch.inference_mode():
        torch.testing.assert_close(features, original.codes_to_features(codes), rtol=0, atol=1e-6)
    # The features path (embedding computed elsewhere) gives the same audio.
    with torch.no_grad():
        torch.testing.assert_close(ours(input_features=features, bandwidth=bandwidth).audio, output.audio, rtol=0, atol=0)


def test_unbatched_codes_and_features(encodec_pair):
    _, ours = encodec_pair
    codes = torch.randint(0, 1024, (8, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        unbatched = ours(codes=codes, bandwidth=6.0).audio
        batched = ours(codes=codes[:, None], bandwidth=6.0).audio
        from_numpy = ours(codes=codes.numpy().astype(np.int32), bandwidth=np.float32(6.0)).audio
    assert unbatched.shape == (1, 40 * 320)
    torch.testing.assert_close(unbatched, batched, rtol=0, atol=0)
    torch.testing.assert_close(from_numpy, batched, rtol=0, atol=0)


def _ragged_features(lengths, channels, seed=0):
    generator = torch.Generator().manual_seed(seed)
    items = [torch.randn(channels, length, generator=generator) for length in lengths]
    batch = torch.zeros(len(items), channels, max(lengths))
    for index, item in enumerate(items):
        batch[index, :, : item.shape[-1]] = item
    mask = (torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]).long()
    return items, batch, mask


@pytest.mark.parametrize("variant", ["mel", "encodec"])
def test_ragged_batch_items_equal_solo(variant):
    config = VocosConfig(**(SMALL_MEL if variant == "mel" else SMALL_ENCODEC))
    model = randomize_(VocosModel(config), seed=1)
    lengths = [37, 90, 1, 2, 64]
    kwargs = {} if variant == "mel" else {"bandwidth": 3.0}
    items, batch, mask = _ragged_features(lengths, config.input_channels)
    # Garbage in the padding must not leak into any item.
    batch = batch + (1 - mask[:, None, :]) * 100.0
    with torch.no_grad():
        output = model(input_features=batch, attention_mask=mask, **kwargs)
        solos = [model(input_features=item, **kwargs).audio[0] for item in items]
    hop = config.hop_length
    expected_lengths = [(n - 1) * hop if variant == "mel" else n * hop for n in lengths]
    assert output.attention_mask.sum(dim=1).tolist() == expected_lengths
    assert output.audio.shape[1] == max(expected_lengths)
    for index, solo in enumerate(solos):
        assert solo.shape[0] == expected_lengths[index]
        torch.testing.assert_close(output.audio[index, : solo.shape[0]], solo, rtol=0, atol=1e-5)
        assert torch.all(output.audio[index, solo.shape[0] :] == 0)


def test_ragged_codes_items_equal_solo():
    config = VocosConfig(**SMALL_ENCODEC)
    model = randomize_(VocosModel(config), seed=2)
    generator = torch.Generator().manual_seed(3)
    lengths = [20, 7, 33]
    items = [torch.randint(0, 1024, (4, n), generator=generator) for n in lengths]
    codes = torch.zeros(4, 3, 33, dtype=torch.long)
    for index, item in enumerate(items):
        codes[:, index, : item.shape[1]] = item
    mask = (torch.arange(33)[None, :] < torch.tensor(lengths)[:, None]).int()
    with torch.no_grad():
        output = model(codes=codes, bandwidth=3.0, attention_mask=mask)
        for index, item in enumerate(items):
            solo = model(codes=item, bandwidth=3.0).audio[0]
            torch.testing.assert_close(output.audio[index, : solo.shape[0]], solo, rtol=0, atol=1e-5)


@pytest.mark.parametrize("variant", ["mel", "encodec"])
def test_save_load_round_trip(tmp_path, variant):
    config = VocosConfig(**(SMALL_MEL if variant == "mel" else SMALL_ENCODEC))
    model = randomize_(VocosModel(config), seed=4)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not (tmp_path / "pytorch_model.bin").exists()
    reloaded = VocosModel.from_pretrained(tmp_path).eval()
    auto = AutoModel.from_pretrained(tmp_path).eval()
    assert type(auto) is VocosModel
    # The ISTFT window is not saved: it must come back from the config, not uninitialised memory.
    torch.testing.assert_close(reloaded.head.istft.window, torch.hann_window(config.n_fft), rtol=0, atol=0)
    features = torch.randn(2, config.input_channels, 30, generator=torch.Generator().manual_seed(5))
    kwargs = {} if variant == "mel" else {"bandwidth": 12.0}
    with torch.no_grad():
        expected = model(input_features=features, **kwargs).audio
        torch.testing.assert_close(reloaded(input_features=features, **kwargs).audio, expected, rtol=0, atol=0)
        torch.testing.assert_close(auto(input_features=features, **kwargs).audio, expected, rtol=0, atol=0)


def test_bfloat16_model_keeps_an_exact_float32_istft():
    model = VocosModel(VocosConfig(**SMALL_MEL)).to(torch.bfloat16)
    assert model.head.istft.window.dtype == torch.bfloat16  # .to() casts buffers too
    generator = torch.Generator().manual_seed(8)
    spectrum = torch.complex(torch.randn(2, 513, 40, generator=generator), torch.randn(2, 513, 40, generator=generator))
    expected = torch.istft(spectrum, 1024, 256, 1024, torch.hann_window(1024), center=True)
    real, imag = spectrum.real.transpose(1, 2), spectrum.imag.transpose(1, 2)  # (batch, frames, bins)
    torch.testing.assert_close(model.head.istft(real, imag), expected, rtol=0, atol=1e-5)
    with torch.no_grad():
        audio = model(input_features=torch.randn(1, 100, 40, generator=generator)).audio
    assert audio.dtype == torch.float32 and bool(torch.isfinite(audio).all())
    # The exact window is made once (CPU inference asks for it on every tile), not per call...
    model = VocosModel(VocosConfig(**SMALL_MEL)).to(torch.bfloat16)
    with torch.inference_mode():
        model(input_features=torch.randn(1, 100, 40, generator=generator))
    window = model.head.istft._float_window()
    assert window.dtype == torch.float32 and torch.equal(window, model.head.istft.make_window())
    assert model.head.istft._float_window() is window
    # ... and, though first made under inference mode, autograd can save it (training a cast model).
    features = torch.randn(1, 100, 40, generator=generator).to(torch.bfloat16).requires_grad_()
    model(input_features=features).audio.square().sum().backward()
    assert features.grad is not None and bool(torch.isfinite(features.grad.float()).all())


def test_return_dict_false_and_no_grad_needed():
    model = randomize_(VocosModel(VocosConfig(**SMALL_MEL)))
    features = torch.randn(1, 100, 12)
    audio, mask = model(input_features=features, return_dict=False)
    assert audio.shape == mask.shape == (1, 11 * 256)
    audio.sum().backward()  # trainable end to end
    assert model.backbone.embed.weight.grad is not None


def test_activation_checkpointing_gives_the_same_gradients():
    model = randomize_(VocosModel(VocosConfig(**SMALL_MEL))).train()
    features = torch.randn(2, 100, 30, generator=torch.Generator().manual_seed(6))
    model(input_features=features).audio.square().sum().backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.activation_checkpointing_enable()
    assert model.is_activation_checkpointing
    model(input_features=features).audio.square().sum().backward()
    for parameter, gradient in zip(model.parameters(), expected):
        torch.testing.assert_close(parameter.grad, gradient, rtol=0, atol=1e-6)


def test_window_shorter_than_fft_matches_torch_istft():
    config = VocosConfig(**SMALL_MEL, n_fft=512, win_length=400, hop_length=100)
    model = randomize_(VocosModel(config))
    hidden = torch.randn(2, 25, config.hidden_size)
    with torch.no_grad():
        projected = model.head.out(hidden).transpose(1, 2)
        magnitude, phase = projected.chunk(2, dim=1)
        spectrum = torch.polar(torch.exp(magnitude).clip(max=100.0), phase)
        expected = torch.istft(spectrum, 512, 100, 400, torch.hann_window(400), center=True)
        torch.testing.assert_close(model.head(hidden), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("n_fft, hop, win", [(1024, 256, 1024), (1280, 320, 1280), (512, 100, 400), (600, 150, 600)])
@pytest.mark.parametrize("use_dft_matmul", [False, True])
def test_istft_equals_torch_istft(n_fft, hop, win, use_dft_matmul):
    """Both overlap-add paths (shifted adds when hop divides n_fft, fold otherwise) and both inverse transforms (FFT,
    DFT-basis matmul for export) equal torch.istft(center=True)."""
    istft = VocosModel(VocosConfig(**SMALL_MEL, n_fft=n_fft, hop_length=hop, win_length=win)).head.istft
    istft.use_dft_matmul = use_dft_matmul
    generator = torch.Generator().manual_seed(n_fft)
    spectrum = torch.complex(torch.randn(2, n_fft // 2 + 1, 37, generator=generator), torch.randn(2, n_fft // 2 + 1, 37, generator=generator))
    expected = torch.istft(spectrum, n_fft, hop, win, torch.hann_window(win), center=True)
    torch.testing.assert_close(istft(spectrum.real.transpose(1, 2), spectrum.imag.transpose(1, 2)), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "n_fft, hop, win, padding",
    [(1024, 256, 1024, "center"), (1280, 320, 1280, "same"), (512, 128, 400, "center"), (48, 12, 40, "same"), (600, 150, 600, "center")],
)
@pytest.mark.parametrize("num_frames, tile_frames", [(1, 4), (5, 1), (6, 2), (37, 3), (37, 16), (37, 64)])
@pytest.mark.parametrize("masked", [False, True])
def test_tiled_overlap_add_equals_synthesize(n_fft, hop, win, padding, num_frames, tile_frames, masked):
    """CPU inference overlap-adds each tile of frames as soon as the head makes it (and divides by a periodic
    envelope when no mask is given): bit for bit the audio of `synthesize` on the whole frames tensor, across tile
    edges, short inputs, ragged masks, windows shorter than n_fft."""
    config = VocosConfig(**SMALL_MEL, n_fft=n_fft, hop_length=hop, win_length=win, istft_padding=padding)
    istft = VocosModel(config).head.istft
    generator = torch.Generator().manual_seed(num_frames * tile_frames)
    frames = torch.randn(2, num_frames, n_fft, generator=generator)
    frame_mask = None
    if masked:
        frame_mask = torch.ones(2, num_frames, 1)
        frame_mask[1, (num_frames + 1) // 2 :] = 0
    requested = []

    def make_frames(start, stop, out):
        requested.append((start, stop))
        out.copy_(frames[:, start:stop])

    tiled = istft.synthesize_tiles(make_frames, 2, num_frames, frame_mask, tile_frames)
    expected = istft.synthesize(frames if frame_mask is None else frames * frame_mask, frame_mask)
    assert tiled.shape == expected.shape == (2, config.num_samples(num_frames)) and tiled.is_contiguous()
    assert torch.equal(tiled, expected)
    with torch.no_grad():  # eager inference (a GPU's path): without a mask, divided in place by the periodic envelope
        inference = istft.synthesize(frames if frame_mask is None else frames * frame_mask, frame_mask)
    assert inference.is_contiguous() and torch.equal(inference, expected)
    assert requested == [(start, min(start + tile_frames, num_frames)) for start in range(0, num_frames, tile_frames)]


def test_hop_that_does_not_divide_n_fft_falls_back_to_synthesize():
    """That case overlap-adds by `fold`: CPU inference's forward falls back to `synthesize` for it (same audio as
    the grad path), and the tiled overlap-add refuses it with a message instead of mis-adding."""
    model = randomize_(VocosModel(VocosConfig(**SMALL_MEL, n_fft=512, hop_length=100, win_length=400)), seed=20)
    features = torch.randn(2, 100, 30, generator=torch.Generator().manual_seed(21))
    with torch.no_grad():
        inference = model(input_features=features).audio
    with torch.enable_grad():
        plain = model(input_features=features).audio.detach()
    assert inference.shape == (2, model.config.num_samples(30))
    torch.testing.assert_close(inference, plain, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match=r"hop_length \(100\) to divide n_fft \(512\)"):
        model.head.istft.synthesize_tiles(lambda start, stop, out: None, 1, 10)


@pytest.mark.parametrize("tile_frames", [0, -3, 2.5, True])
def test_tiled_overlap_add_refuses_a_bad_tile_size(tile_frames):
    istft = VocosModel(VocosConfig(**SMALL_MEL)).head.istft
    with pytest.raises(ValueError, match=r"`tile_frames` must be a positive integer, got " + re.escape(repr(tile_frames))):
        istft.synthesize_tiles(lambda start, stop, out: None, 1, 10, tile_frames=tile_frames)


def test_same_padding_istft_equals_the_originals():
    original = build_encodec_vocos(seed=3).head.istft
    istft = VocosModel(VocosConfig(**SMALL_ENCODEC)).head.istft
    generator = torch.Generator().manual_seed(1)
    spectrum = torch.complex(torch.randn(2, 641, 29, generator=generator), torch.randn(2, 641, 29, generator=generator))
    for use_dft_matmul in (False, True):
        istft.use_dft_matmul = use_dft_matmul
        torch.testing.assert_close(istft(spectrum.real.transpose(1, 2), spectrum.imag.transpose(1, 2)), original(spectrum), rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def small_models():
    return randomize_(VocosModel(VocosConfig(**SMALL_MEL))), randomize_(VocosModel(VocosConfig(**SMALL_ENCODEC)))


@pytest.mark.parametrize(
    "variant, kwargs, error, match",
    [
        ("mel", {}, ValueError, "exactly one of `input_features`.*neither"),
        ("mel", {"input_features": torch.zeros(1, 100, 5), "codes": torch.zeros(2, 1, 5, dtype=torch.long)}, ValueError, "exactly one.*both"),
        ("mel", {"input_features": torch.zeros(1, 100, 5), "bandwidth": 1.5}, ValueError, "`bandwidth`.*mel model"),
        ("mel", {"codes": torch.zeros(2, 1, 5, dtype=torch.long)}, ValueError, "`codes`.*mel model"),
        ("mel", {"input_features": torch.zeros(1, 80, 5)}, ValueError, r"`input_features`.*\(batch, 100, frames\).*\(1, 80, 5\)"),
        ("mel", {"input_features": torch.zeros(1, 100, 5, dtype=torch.long)}, TypeError, "`input_features`.*floating-point.*int64"),
        ("mel", {"input_features": [[0.0] * 5] * 100}, TypeError, "`input_features`.*list"),
        ("mel", {"input_features": torch.zeros(1, 100, 0)}, ValueError, "`input_features`.*0 frames"),
        ("mel", {"input_features": torch.full((1, 100, 5), float("nan"))}, ValueError, "`input_features`.*NaN or infinite"),
        ("mel", {"input_features": torch.full((1, 100, 5), float("inf"))}, ValueError, "`input_features`.*NaN or infinite"),
        ("mel", {"input_features": torch.zeros(2, 100, 5), "attention_mask": torch.ones(2, 4)}, ValueError, r"`attention_mask`.*\(2, 5\)"),
        ("mel", {"input_features": torch.zeros(1, 100, 5), "attention_mask": torch.tensor([[0, 1, 1, 1, 1]])}, ValueError, "`attention_mask`.*right padding"),
        ("mel", {"input_features": torch.zeros(1, 100, 5), "attention_mask": torch.zeros(1, 5)}, ValueError, "`attention_mask`.*no valid frame"),
        ("encodec", {"codes": torch.zeros(8, 1, 5, dtype=torch.long)}, ValueError, "`bandwidth` is required"),
        ("encodec", {"input_features": torch.zeros(1, 128, 5)}, ValueError, "`bandwidth` is required"),
        ("encodec", {"codes": torch.zeros(8, 1, 5), "bandwidth": 6.0}, TypeError, "`codes`.*integer dtype.*float32"),
        ("encodec", {"codes": torch.full((8, 1, 5), 1024), "bandwidth": 6.0}, ValueError, r"`codes` values.*\[0, 1024\).*\[1024, 1024\]"),
        ("encodec", {"codes": torch.full((8, 1, 5), -1), "bandwidth": 6.0}, ValueError, r"`codes` values.*\[0, 1024\)"),
        ("encodec", {"codes": torch.zeros(4, 1, 5, dtype=torch.long), "bandwidth": 6.0}, ValueError, r"`codes` has 4 codebooks.*6 kbps uses 8"),
        ("encodec", {"codes": torch.zeros(2, 1, 1, 5, dtype=torch.long), "bandwidth": 1.5}, ValueError, r"`codes` must have shape"),
        ("encodec", {"codes": torch.zeros(8, 1, 5, dtype=torch.long), "bandwidth": 24.0}, ValueError, r"`bandwidth`=24.0 kbps is not one of.*\[1.5, 3.0, 6.0, 12.0\]"),
        ("encodec", {"codes": torch.zeros(8, 1, 5, dtype=torch.long), "bandwidth": "6"}, TypeError, "`bandwidth` must be a number"),
        ("encodec", {"codes": torch.zeros(8, 1, 5, dtype=torch.long), "bandwidth": torch.tensor([6.0, 3.0])}, ValueError, "`bandwidth` must be a single number"),
    ],
)
def test_bad_inputs_raise(small_models, variant, kwargs, error, match):
    model = small_models[0] if variant == "mel" else small_models[1]
    with pytest.raises(error, match=match):
        model(**kwargs)


def _snr_db(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    return float(10 * torch.log10(reference.square().sum() / (reference - estimate).square().sum()))


@pytest.mark.parametrize("dtype, min_snr_db", [(torch.bfloat16, 30.0), (torch.float16, 45.0)])
def test_half_precision_inference_keeps_its_snr(mel_pair, dtype, min_snr_db):
    """Half-precision weights and activations (bfloat16: the fast CPU path; float16: GPUs) with the spectrum and the
    ISTFT in float32: the audio stays float32 and within its SNR bound of the float32 output (measured 38 and 55 dB;
    float16 keeps 3 more mantissa bits)."""
    _, ours = mel_pair
    extractor = VocosFeatureExtractor()
    features = torch.from_numpy(extractor(speech_like(3 * 24000, seed=11), sampling_rate=24000)["input_features"])
    half = VocosModel(ours.config).eval()
    half.load_state_dict(ours.state_dict())
    half.to(dtype)
    with torch.no_grad():
        reference = ours(input_features=features).audio
        audio = half(input_features=features).audio
    assert audio.dtype == torch.float32
    assert _snr_db(reference, audio) >= min_snr_db


def test_tiled_fused_mlp_equals_the_plain_path(monkeypatch, tiled_cpu_path):
    """CPU inference tiles the MLP (and fuses GELU into oneDNN's matmul where available) and the head with its
    inverse FFT (or DFT matmul) into one frames buffer; training runs them whole. Both must compute the same
    function, across tile edges and for every item of a batch."""
    import hf_vocos.modeling_vocos as modeling

    monkeypatch.setattr(modeling, "_MLP_TILE_FRAMES", 64)  # several tiles on a short input
    model = randomize_(VocosModel(VocosConfig(**SMALL_MEL)), seed=12)
    features = torch.randn(2, 100, 150, generator=torch.Generator().manual_seed(13))
    with torch.no_grad():
        tiled = model(input_features=features).audio
    with torch.enable_grad():
        plain = model(input_features=features).audio.detach()
    torch.testing.assert_close(tiled, plain, rtol=0, atol=1e-5)
    model.pack_cpu_weights = False
    with torch.no_grad():
        torch.testing.assert_close(model(input_features=features).audio, plain, rtol=0, atol=1e-5)
    model.head.istft.use_dft_matmul = True
    with torch.no_grad():
        torch.testing.assert_close(model(input_features=features).audio, plain, rtol=0, atol=1e-5)


@pytest.mark.parametrize("variant", ["mel", "encodec"])
def test_accelerator_inference_path_equals_the_original(monkeypatch, mel_pair, encodec_pair, variant):
    """Eager inference off the CPU runs whole-sequence ops (no tiles), makes the spectrum complex in one
    `torch.polar` and overlap-adds by one fold; the EnCodec model's norms take their bandwidth rows as views (no
    lookup kernels). This is the GPU's path, run here on the CPU: it must give the original's audio, both variants,
    without one embedding lookup in the norms."""
    import hf_vocos.modeling_vocos as modeling
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    original, ours = mel_pair if variant == "mel" else encodec_pair
    audio = torch.from_numpy(np.stack([speech_like(24000, seed=6), speech_like(24000, seed=7)]))
    if variant == "mel":
        features = VocosFeatureExtractor()(audio.numpy(), sampling_rate=24000)["input_features"]
        inputs = {"input_features": torch.from_numpy(features)}
        expected = decode_features(original, inputs["input_features"])
    else:
        codes = encodec_codes(original.feature_extractor.encodec, audio, 6.0)
        inputs = {"codes": codes, "bandwidth": 6.0}
        expected = decode_codes(original, codes, BANDWIDTHS.index(6.0))
    monkeypatch.setattr(modeling, "_tiled_cpu_inference", lambda tensor: False)
    monkeypatch.setattr(modeling, "_accelerator_inference", lambda tensor: modeling._eager_inference())
    ops = Ops()
    with torch.inference_mode(), ops:
        output = ours(**inputs).audio
    torch.testing.assert_close(output, expected, rtol=0, atol=1e-5)
    assert "polar" in ops.names and "fft_irfft" in ops.names and "col2im" in ops.names  # (the fold)
    assert "pad" not in ops.names
    assert ops.names.count("embedding") == 0


def test_bandwidth_rows_as_views_equal_the_lookup():
    """`bandwidth_id` is a CPU tensor; outside tracing the adaptive norms take their rows as views, the same rows as
    the embedding lookup (which tracing keeps). A row out of range is refused, not wrapped around as Python indexing
    would."""
    model = randomize_(VocosModel(VocosConfig(**SMALL_ENCODEC)), seed=21)
    norm = model.backbone.norm
    for row, bandwidth in enumerate(model.config.bandwidths):
        bandwidth_id = model.bandwidth_id(bandwidth)
        assert bandwidth_id.device.type == "cpu" and bandwidth_id.tolist() == [row]
        scale, shift = norm.affine(bandwidth_id)
        assert scale.data_ptr() == norm.scale.weight[row].data_ptr()  # a view: nothing looked up
        torch.testing.assert_close(scale, norm.scale(torch.tensor([row]))[0], rtol=0, atol=0)
        torch.testing.assert_close(shift, norm.shift(torch.tensor([row]))[0], rtol=0, atol=0)
    for bad in (-1, len(model.config.bandwidths)):
        with pytest.raises(ValueError, match=rf"`bandwidth_id` must be a bandwidth row from 0 to 3, got {bad}"):
            norm.affine(torch.tensor([bad]))
    with pytest.raises(ValueError, match=r"`bandwidth_id` must hold one bandwidth row \(shape \(1,\)\).*got shape \(2,\)"):
        norm.affine(torch.tensor([0, 1]))  # the lookup took the first and dropped the rest, silently
    with pytest.raises(TypeError, match=r"`bandwidth_id` must be an integer tensor \(a bandwidth row\), got dtype torch.float32"):
        norm.affine(torch.tensor([1.5]))  # would have been truncated to row 1
    features = torch.randn(1, model.config.input_channels, 20)
    for bad, name in ((None, "NoneType"), (2, "int"), ([1], "list")):  # the low-level entry points take it as given
        with pytest.raises(TypeError, match=rf"`bandwidth_id` must be the tensor `model.bandwidth_id\(bandwidth\)` gives .*got {name}"):
            model.decode_frames(features, None, bad)


def test_packed_weights_follow_weight_changes(tiled_cpu_path):
    """CPU inference multiplies by packed copies of the MLP weights (layer scale folded in) and of the head's
    projection, cached per module: any change to the weights must reach the output, and the cache must stay off the
    module (copies, state dicts)."""
    import copy

    require_packed_linear(torch.float32)

    model = randomize_(VocosModel(VocosConfig(**SMALL_MEL)), seed=15)
    features = torch.randn(1, 100, 40, generator=torch.Generator().manual_seed(16))

    def check(model):
        with torch.no_grad():
            cached = model(input_features=features).audio
        with torch.enable_grad():
            plain = model(input_features=features).audio.detach()
        torch.testing.assert_close(cached, plain, rtol=0, atol=1e-5)
        return cached

    before = check(model)
    with torch.no_grad():
        model.backbone.convnext[-1].gamma.mul_(3.0)  # in place: same tensor, new version
    changed = check(model)
    assert (changed - before).abs().max() > 1e-3
    with torch.no_grad():
        model.head.out.weight[: model.config.n_fft // 2 + 1].mul_(0.5)  # the head's packed halves must follow too
    assert (check(model) - changed).abs().max() > 1e-3
    other = randomize_(VocosModel(VocosConfig(**SMALL_MEL)), seed=17)
    model.load_state_dict(other.state_dict())
    torch.testing.assert_close(check(model), check(other), rtol=0, atol=0)
    model.backbone.convnext[0].pwconv1.weight = torch.nn.Parameter(torch.zeros_like(model.backbone.convnext[0].pwconv1.weight))
    check(model)
    twin = copy.deepcopy(model)
    assert set(twin.state_dict()) == set(model.state_dict())
    torch.testing.assert_close(check(twin), check(model), rtol=0, atol=0)
    reference = check(model)
    require_packed_linear(torch.bfloat16)
    half = model.to(torch.bfloat16)  # same parameters, cast: the cache must repack them in bf16
    with torch.no_grad():
        cached = half(input_features=features).audio
    with torch.enable_grad():
        plain = half(input_features=features).audio.detach()
    assert _snr_db(reference, cached) >= 30 and _snr_db(plain, cached) >= 30


def test_pack_cpu_weights_turns_the_packed_copies_off_and_frees_them(tmp_path, tiled_cpu_path):
    """`model.pack_cpu_weights = False` frees the model's packed weight copies at once and runs the plain products
    (the same audio to float32 rounding); `True` packs again. A runtime setting: copies keep it, saves do not."""
    import copy
    import gc
    import weakref

    import hf_vocos.modeling_vocos as modeling

    require_packed_linear(torch.float32)
    model = randomize_(VocosModel(VocosConfig(**SMALL_MEL)), seed=18)
    features = torch.randn(2, 100, 50, generator=torch.Generator().manual_seed(19))
    modules = [*model.backbone.convnext, model.head]
    assert model.pack_cpu_weights is True
    with torch.no_grad():
        packed = model(input_features=features).audio
    copies = [weakref.ref(modeling._PACKED_WEIGHTS[module][1][0]) for module in modules]

    model.pack_cpu_weights = False
    assert model.pack_cpu_weights is False
    gc.collect()
    assert all(module not in modeling._PACKED_WEIGHTS for module in modules)
    assert all(copy_() is None for copy_ in copies)  # freed, not just forgotten
    with torch.no_grad():
        plain = model(input_features=features).audio
    assert all(module not in modeling._PACKED_WEIGHTS for module in modules)  # and not packed again
    torch.testing.assert_close(plain, packed, rtol=0, atol=1e-5)
    with torch.enable_grad():
        torch.testing.assert_close(plain, model(input_features=features).audio.detach(), rtol=0, atol=1e-5)
    assert copy.deepcopy(model).pack_cpu_weights is False

    model.save_pretrained(tmp_path)
    assert VocosModel.from_pretrained(tmp_path).pack_cpu_weights is True
    model.pack_cpu_weights = True
    with torch.no_grad():
        assert torch.equal(model(input_features=features).audio, packed)
    assert all(module in modeling._PACKED_WEIGHTS for module in modules)
    for value in ("yes", 1, None):
        with pytest.raises(TypeError, match=r"`pack_cpu_weights` must be True or False, got"):
            model.pack_cpu_weights = value


@pytest.mark.parametrize("tile_frames", [1, 3, 4, 7, 29, 30, 64])
@pytest.mark.parametrize("variant", ["mel", "encodec"])
def test_tiled_block_equals_the_plain_path_across_tile_edges(monkeypatch, tiled_cpu_path, tile_frames, variant):
    """In CPU inference a block runs its depthwise convolution, norm and MLP over tiles of frames, each tile's
    convolution reading `kernel_size // 2` frames beyond it, and may write its output over its input (a tile's result
    held back until the next tile has read the frames it overlaps). Every tile size, down to fewer frames than the
    convolution's reach, must give the plain path's output, masked or not, for each item of a batch; and a caller
    that does not give its tensor up (a user calling a block) keeps it unchanged."""
    import hf_vocos.modeling_vocos as modeling

    monkeypatch.setattr(modeling, "_MLP_TILE_FRAMES", tile_frames)
    config = VocosConfig(**(SMALL_MEL if variant == "mel" else SMALL_ENCODEC))
    model = randomize_(VocosModel(config), seed=20)
    block = model.backbone.convnext[0]
    generator = torch.Generator().manual_seed(21)
    hidden = torch.randn(2, 30, config.hidden_size, generator=generator)
    bandwidth_id = model.bandwidth_id(3.0) if config.use_adaptive_norm else None
    kept_input = hidden.clone()
    frame_mask = (torch.arange(30)[None, :] < torch.tensor([[30], [17]])).float()[..., None]
    for mask in (None, frame_mask):
        with torch.enable_grad():
            plain = block(hidden, mask, bandwidth_id).detach()
        with torch.no_grad():
            kept = block(hidden, mask, bandwidth_id)
            assert torch.equal(hidden, kept_input)
            overwritten = hidden.clone()
            reused = block(overwritten, mask, bandwidth_id, reuse_input=True)
        torch.testing.assert_close(kept, plain, rtol=0, atol=1e-5)
        torch.testing.assert_close(reused, plain, rtol=0, atol=1e-5)
        if mask is None:
            assert reused.data_ptr() == overwritten.data_ptr()  # written over the input it was given


@pytest.mark.parametrize("variant", ["mel", "encodec"])
def test_backbone_is_its_stages_in_order(variant):
    """`forward_stage` (what the streaming decoder runs on new frames) composes to the backbone's forward, its
    radii add up to the receptive field, a stage leaves a caller's tensor alone, and a bad index is refused."""
    config = VocosConfig(**(SMALL_MEL if variant == "mel" else SMALL_ENCODEC))
    model = randomize_(VocosModel(config), seed=22)
    backbone = model.backbone
    assert backbone.stage_radii == [3] + [config.kernel_size // 2] * config.num_hidden_layers + [0]
    assert backbone.receptive_radius == 3 + config.num_hidden_layers * (config.kernel_size // 2)
    features = torch.randn(2, config.input_channels, 37, generator=torch.Generator().manual_seed(23))
    bandwidth_id = model.bandwidth_id(6.0) if config.use_adaptive_norm else None
    with torch.no_grad():
        hidden = features.transpose(1, 2)
        for index in range(len(backbone.stage_radii)):
            given = hidden.clone()
            output = backbone.forward_stage(index, hidden, bandwidth_id)
            assert torch.equal(hidden, given)
            hidden = output
        assert torch.equal(hidden, backbone(features, None, bandwidth_id))
    last = config.num_hidden_layers + 1
    for index in (-1, last + 1):
        with pytest.raises(ValueError, match=rf"`index` must be a stage from 0 to {last}, got {index}"):
            backbone.forward_stage(index, hidden)
    for index in (1.5, True, "1"):
        with pytest.raises(TypeError, match=rf"`index` must be an integer stage from 0 to {last}, got"):
            backbone.forward_stage(index, hidden)
    with pytest.raises(ValueError, match=rf"`hidden_states` of stage 0 must be time-major frames \(batch, frames, {config.input_channels}\), got shape \(2, 37, {config.hidden_size}\)"):
        backbone.forward_stage(0, hidden)
    with pytest.raises(ValueError, match=r"`hidden_states` of stage 1 must be time-major frames"):
        backbone.forward_stage(1, features)


@pytest.mark.parametrize("variant", ["mel", "encodec"])
def test_torch_compile_fullgraph_with_ragged_batch(variant):
    """The whole forward compiles as one graph (`fullgraph=True` raises on any graph break): the input checks that
    read values (finite features, codes in range, the mask's form) are skipped while compiling, and the output still
    equals eager, padding included."""
    config = VocosConfig(**(SMALL_MEL if variant == "mel" else SMALL_ENCODEC))
    model = randomize_(VocosModel(config), seed=16)
    generator = torch.Generator().manual_seed(17)
    torch._dynamo.reset()
    # dynamic=True: the lengths and a float bandwidth are symbols in the graph (the bandwidth checks are comparisons,
    # which take symbols; `math.isfinite`/`math.isclose` do not).
    compiled = torch.compile(model, fullgraph=True, dynamic=True)
    for frames in (40, 57):
        mask = torch.ones(2, frames, dtype=torch.int32)
        mask[1, 29:] = 0
        if variant == "mel":
            inputs = {"input_features": torch.randn(2, 100, frames, generator=generator)}
        else:
            inputs = {"codes": torch.randint(0, 1024, (4, 2, frames), generator=generator), "bandwidth": 3.0}
        with torch.no_grad():
            output, expected = compiled(**inputs, attention_mask=mask), model(**inputs, attention_mask=mask)
        torch.testing.assert_close(output.audio, expected.audio, rtol=0, atol=1e-5)
        torch.testing.assert_close(output.attention_mask, expected.attention_mask, rtol=0, atol=0)
        assert output.attention_mask[1].sum().item() == config.num_samples(29)
    # Eager calls still check values.
    with pytest.raises(ValueError, match="right padding"):
        model(**inputs, attention_mask=mask.flip(1))


def test_torch_compile_equals_eager():
    model = randomize_(VocosModel(VocosConfig(**SMALL_ENCODEC)), seed=14)
    compiled = torch.compile(model)
    generator = torch.Generator().manual_seed(15)
    with torch.no_grad():
        for frames in (40, 67):  # a second length exercises the dynamic-shape graph
            codes = torch.randint(0, 1024, (4, 2, frames), generator=generator)
            torch.testing.assert_close(compiled(codes=codes, bandwidth=3.0).audio, model(codes=codes, bandwidth=3.0).audio, rtol=0, atol=1e-5)
