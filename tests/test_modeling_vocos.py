"""VocosModel and VocosEncodecModel (modeling_vocos): parity with the original vocos/encodec classes (through every
inference implementation), ragged batches, save/load, the ISTFT head, bad inputs, torch.compile. The implementations
themselves and the switch: test_inference_vocos.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SMALL_ENCODEC, SMALL_MEL, model_for, randomize_, small_config, speech_like
from reference import build_encodec_vocos, decode_features, encodec_codes
from transformers import AutoModel

from hf_vocos import (
    VocosConfig,
    VocosEncodecConfig,
    VocosEncodecModel,
    VocosEncodecProcessor,
    VocosFeatureExtractor,
    VocosModel,
    VocosOutput,
)
from hf_vocos.inference_vocos import IMPLEMENTATIONS

BANDWIDTHS = [1.5, 3.0, 6.0, 12.0]
# Every implementation of inference, each forced (`"auto"` is one of them, chosen by the CPU at hand).
IMPLEMENTATION_NAMES = list(IMPLEMENTATIONS)


@pytest.mark.parametrize("implementation", ["auto", *IMPLEMENTATION_NAMES])
def test_mel_parity_with_original(mel_pair, implementation):
    original, ours = mel_pair
    extractor = VocosFeatureExtractor()
    clips = np.stack([speech_like(24000, seed=1), speech_like(24000, seed=2)])
    features = torch.from_numpy(extractor(clips, sampling_rate=24000)["input_features"])
    expected = decode_features(original, features)
    ours.inference_implementation = implementation
    with torch.no_grad():
        output = ours(input_features=features)
    ours.inference_implementation = "auto"
    assert isinstance(output, VocosOutput)
    assert output.audio.shape == expected.shape == (2, 93 * 256)
    assert output.audio.dtype == torch.float32
    torch.testing.assert_close(output.audio, expected, rtol=0, atol=1e-5)
    assert output.attention_mask.shape == output.audio.shape and bool(output.attention_mask.all())
    assert expected.abs().max() > 0.05  # a real signal, not a degenerate one


@pytest.mark.parametrize("implementation", ["auto", *IMPLEMENTATION_NAMES])
@pytest.mark.parametrize("bandwidth_id, bandwidth", list(enumerate(BANDWIDTHS)))
def test_encodec_parity_with_original(encodec_pair, bandwidth_id, bandwidth, implementation):
    original, ours = encodec_pair
    ours.inference_implementation = implementation
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
        torch.testing.assert_close(
            ours(input_features=features, bandwidth=bandwidth).audio, output.audio, rtol=0, atol=0
        )
    ours.inference_implementation = "auto"


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
    config = small_config(variant)
    model = randomize_(model_for(config), seed=1)
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
    model = randomize_(VocosEncodecModel(VocosEncodecConfig(**SMALL_ENCODEC)), seed=2)
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
    config = small_config(variant)
    model = randomize_(model_for(config), seed=4)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not (tmp_path / "pytorch_model.bin").exists()
    reloaded = VocosModel.from_pretrained(tmp_path).eval()
    auto = AutoModel.from_pretrained(tmp_path).eval()
    assert type(reloaded) is type(auto) is type(model)
    assert type(VocosEncodecModel.from_pretrained(tmp_path) if variant == "encodec" else reloaded) is type(model)
    # The window is saved (the Hub's format) and rebuilt from the config on load.
    torch.testing.assert_close(reloaded.decoder.window, torch.hann_window(config.n_fft), rtol=0, atol=0)
    features = torch.randn(2, config.input_channels, 30, generator=torch.Generator().manual_seed(5))
    kwargs = {} if variant == "mel" else {"bandwidth": 12.0}
    with torch.no_grad():
        expected = model(input_features=features, **kwargs).audio
        torch.testing.assert_close(reloaded(input_features=features, **kwargs).audio, expected, rtol=0, atol=0)
        torch.testing.assert_close(auto(input_features=features, **kwargs).audio, expected, rtol=0, atol=0)
    if variant == "encodec":
        assert torch.equal(reloaded.codebook_weights, model.codebook_weights)


def test_bfloat16_model_keeps_an_exact_float32_istft():
    model = VocosModel(VocosConfig(**SMALL_MEL)).to(torch.bfloat16)
    assert model.decoder.window.dtype == torch.bfloat16  # .to() casts buffers too
    window = model.decoder.fft_window()
    assert window.dtype == torch.float32 and torch.equal(window, torch.hann_window(1024))
    generator = torch.Generator().manual_seed(8)
    spectrum = torch.complex(torch.randn(2, 513, 40, generator=generator), torch.randn(2, 513, 40, generator=generator))
    expected = torch.istft(spectrum, 1024, 256, 1024, torch.hann_window(1024), center=True)
    frames = torch.fft.irfft(spectrum.transpose(1, 2), n=1024) * window
    torch.testing.assert_close(model.decoder.synthesize(frames), expected, rtol=0, atol=1e-5)
    for implementation in IMPLEMENTATION_NAMES:
        model.inference_implementation = implementation
        with torch.no_grad():
            audio = model(input_features=torch.randn(1, 100, 40, generator=generator)).audio
        assert audio.dtype == torch.float32 and bool(torch.isfinite(audio).all())
    # Training a cast model: autograd runs through the exact window too.
    features = torch.randn(1, 100, 40, generator=generator).to(torch.bfloat16).requires_grad_()
    model(input_features=features).audio.square().sum().backward()
    assert features.grad is not None and bool(torch.isfinite(features.grad.float()).all())


def test_return_dict_false_and_no_grad_needed():
    model = randomize_(VocosModel(VocosConfig(**SMALL_MEL)))
    features = torch.randn(1, 100, 12)
    audio, mask = model(input_features=features, return_dict=False)
    assert audio.shape == mask.shape == (1, 11 * 256)
    audio.sum().backward()  # trainable end to end
    assert model.embed.weight.grad is not None


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
        projected = model.decoder.out(hidden).transpose(1, 2)
        magnitude, phase = projected.chunk(2, dim=1)
        spectrum = torch.polar(torch.exp(magnitude).clip(max=100.0), phase)
        expected = torch.istft(spectrum, 512, 100, 400, torch.hann_window(400), center=True)
        torch.testing.assert_close(model.decoder(hidden), expected, rtol=0, atol=1e-5)
        assert model.decoder.window.shape == (400,)  # (saved as the Hub format does: win_length, not padded)


def test_same_padding_istft_equals_the_originals():
    original = build_encodec_vocos(seed=3).head.istft
    head = VocosEncodecModel(VocosEncodecConfig(**SMALL_ENCODEC)).decoder
    generator = torch.Generator().manual_seed(1)
    spectrum = torch.complex(torch.randn(2, 641, 29, generator=generator), torch.randn(2, 641, 29, generator=generator))
    frames = torch.fft.irfft(spectrum.transpose(1, 2), n=head.n_fft) * head.fft_window()
    torch.testing.assert_close(head.synthesize(frames), original(spectrum), rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def small_models():
    return randomize_(VocosModel(VocosConfig(**SMALL_MEL))), randomize_(
        VocosEncodecModel(VocosEncodecConfig(**SMALL_ENCODEC))
    )


@pytest.mark.parametrize(
    "variant, kwargs, error, match",
    [
        ("mel", {}, ValueError, "exactly one of `input_features`.*neither"),
        (
            "mel",
            {"input_features": torch.zeros(1, 100, 5), "codes": torch.zeros(2, 1, 5, dtype=torch.long)},
            ValueError,
            "exactly one.*both",
        ),
        ("mel", {"input_features": torch.zeros(1, 100, 5), "bandwidth": 1.5}, ValueError, "`bandwidth`.*mel model"),
        ("mel", {"codes": torch.zeros(2, 1, 5, dtype=torch.long)}, ValueError, "`codes`.*mel model"),
        (
            "mel",
            {"input_features": torch.zeros(1, 80, 5)},
            ValueError,
            r"`input_features`.*\(batch, 100, frames\).*\(1, 80, 5\)",
        ),
        (
            "mel",
            {"input_features": torch.zeros(1, 100, 5, dtype=torch.long)},
            TypeError,
            "`input_features`.*floating-point.*int64",
        ),
        ("mel", {"input_features": [[0.0] * 5] * 100}, TypeError, "`input_features`.*list"),
        ("mel", {"input_features": torch.zeros(1, 100, 0)}, ValueError, "`input_features`.*0 frames"),
        (
            "mel",
            {"input_features": torch.full((1, 100, 5), float("nan"))},
            ValueError,
            "`input_features`.*NaN or infinite",
        ),
        (
            "mel",
            {"input_features": torch.full((1, 100, 5), float("inf"))},
            ValueError,
            "`input_features`.*NaN or infinite",
        ),
        (
            "mel",
            {"input_features": torch.zeros(2, 100, 5), "attention_mask": torch.ones(2, 4)},
            ValueError,
            r"`attention_mask`.*\(2, 5\)",
        ),
        (
            "mel",
            {"input_features": torch.zeros(1, 100, 5), "attention_mask": torch.tensor([[0, 1, 1, 1, 1]])},
            ValueError,
            "`attention_mask`.*right padding",
        ),
        (
            "mel",
            {"input_features": torch.zeros(1, 100, 5), "attention_mask": torch.zeros(1, 5, dtype=torch.int32)},
            ValueError,
            "`attention_mask`.*no valid frame",
        ),
        ("encodec", {"codes": torch.zeros(8, 1, 5, dtype=torch.long)}, ValueError, "`bandwidth` is required"),
        ("encodec", {"input_features": torch.zeros(1, 128, 5)}, ValueError, "`bandwidth` is required"),
        ("encodec", {"codes": torch.zeros(8, 1, 5), "bandwidth": 6.0}, TypeError, "`codes`.*integer dtype.*float32"),
        (
            "encodec",
            {"codes": torch.full((8, 1, 5), 1024), "bandwidth": 6.0},
            ValueError,
            r"`codes` values.*\[0, 1024\).*\[1024, 1024\]",
        ),
        ("encodec", {"codes": torch.full((8, 1, 5), -1), "bandwidth": 6.0}, ValueError, r"`codes` values.*\[0, 1024\)"),
        (
            "encodec",
            {"codes": torch.zeros(4, 1, 5, dtype=torch.long), "bandwidth": 6.0},
            ValueError,
            r"`codes` has 4 codebooks.*6 kbps uses 8",
        ),
        (
            "encodec",
            {"codes": torch.zeros(2, 1, 1, 5, dtype=torch.long), "bandwidth": 1.5},
            ValueError,
            r"`codes` must have shape",
        ),
        (
            "encodec",
            {"codes": torch.zeros(8, 1, 5, dtype=torch.long), "bandwidth": 24.0},
            ValueError,
            r"`bandwidth`=24.0 kbps is not one of.*\[1.5, 3.0, 6.0, 12.0\]",
        ),
        (
            "encodec",
            {"codes": torch.zeros(8, 1, 5, dtype=torch.long), "bandwidth": "6"},
            TypeError,
            "`bandwidth` must be a number",
        ),
        (
            "encodec",
            {"codes": torch.zeros(8, 1, 5, dtype=torch.long), "bandwidth": torch.tensor([6.0, 3.0])},
            ValueError,
            "`bandwidth` must be a single number",
        ),
    ],
)
def test_bad_inputs_raise(small_models, variant, kwargs, error, match):
    model = small_models[0] if variant == "mel" else small_models[1]
    with pytest.raises(error, match=match):
        model(**kwargs)


@pytest.mark.parametrize("variant", ["mel", "encodec"])
def test_torch_compile_fullgraph_with_ragged_batch(variant):
    """The whole forward compiles as one graph (`fullgraph=True` raises on any graph break): the input checks that
    read values (finite features, codes in range, the mask's form) are skipped while compiling, and the output still
    equals eager, padding included."""
    config = small_config(variant)
    model = randomize_(model_for(config), seed=16)
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
    model = randomize_(VocosEncodecModel(VocosEncodecConfig(**SMALL_ENCODEC)), seed=14)
    compiled = torch.compile(model)
    generator = torch.Generator().manual_seed(15)
    with torch.no_grad():
        for frames in (40, 67):  # a second length exercises the dynamic-shape graph
            codes = torch.randint(0, 1024, (4, 2, frames), generator=generator)
            torch.testing.assert_close(
                compiled(codes=codes, bandwidth=3.0).audio, model(codes=codes, bandwidth=3.0).audio, rtol=0, atol=1e-5
            )


# ---------------------------------------------------------------------------------------------------------------------
# hardening: no silent noise, no raw errors from deep inside


@pytest.mark.parametrize("value", [-1e30, 3e38])
def test_extreme_features_raise_instead_of_non_finite_audio(value):
    model = model_for(small_config("mel"))
    features = torch.full((1, model.config.input_channels, 12), value)
    with pytest.raises(ValueError, match=r"the decoded audio is not finite: the input features lie in \[.*e\+?-?\d+"):
        model(input_features=features)
    with pytest.raises(ValueError, match="the decoded audio is not finite"):
        model.decode_chunked(input_features=features, chunk_size=5)
    with pytest.raises(ValueError, match="the decoded audio is not finite"):
        list(model.stream([features[..., :6], features[..., 6:]]))
    # ordinary features still decode
    assert torch.isfinite(model(input_features=torch.randn(1, model.config.input_channels, 12)).audio).all()


def test_weights_with_nan_are_refused_on_load(tmp_path):
    model = model_for(small_config("mel"))
    with torch.no_grad():
        model.layers[0].pwconv1.weight[0, 0] = float("nan")
        model.decoder.out.bias[3] = float("inf")
    model.save_pretrained(tmp_path)
    with pytest.raises(
        ValueError,
        match=r"the checkpoint is corrupt: 2 weight tensors hold NaN or infinite values "
        r"\((decoder.out.bias, layers.0.pwconv1.weight|layers.0.pwconv1.weight, decoder.out.bias)\)",
    ):
        VocosModel.from_pretrained(tmp_path)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_corrupt_safetensors_file_is_named(tmp_path, damage):
    model_for(small_config("mel")).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not safetensors" * 9)
    with pytest.raises(
        ValueError, match=r"weights file \(model.safetensors\) is corrupt or truncated .*force_download"
    ):
        VocosModel.from_pretrained(tmp_path)


def test_meta_tensors_are_named_as_having_no_data():
    model = model_for(small_config("mel"))
    channels = model.config.input_channels
    with pytest.raises(
        ValueError, match=r"`input_features` is on the meta device: it has a shape \(1, \d+, 8\) but no"
    ):
        model(input_features=torch.empty(1, channels, 8, device="meta"))
    with pytest.raises(ValueError, match="`attention_mask` is on the meta device"):
        model(input_features=torch.randn(1, channels, 8), attention_mask=torch.ones(1, 8, device="meta"))
    codes_model = model_for(small_config("encodec"))
    bandwidth = codes_model.config.bandwidths[0]
    n = codes_model.config.num_quantizers_for_bandwidth(bandwidth)
    with pytest.raises(ValueError, match="`codes` is on the meta device"):
        codes_model(codes=torch.zeros(n, 1, 8, dtype=torch.long, device="meta"), bandwidth=bandwidth)
    with pytest.raises(ValueError, match="`raw_speech` is on the meta device"):
        VocosFeatureExtractor()(torch.empty(24000, device="meta"), sampling_rate=24000)
    with pytest.raises(ValueError, match="`codes` is on the meta device"):
        processor = VocosEncodecProcessor(VocosFeatureExtractor(), encodec_name_or_path="facebook/encodec_24khz")
        processor(codes=torch.zeros(n, 8, dtype=torch.long, device="meta"), bandwidth=bandwidth)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("n_fft", 1023, "`n_fft` must be even"),
        ("hop_length", 0, "`hop_length` must be a positive integer, got 0"),
        ("hop_length", 4096, r"`hop_length` \(4096\) must be smaller than `win_length`"),
        ("n_fft", -2, "`n_fft` must be a positive integer, got -2"),
    ],
)
def test_configs_that_cannot_work_are_refused_when_loaded(tmp_path, field, value, message):
    import json

    model_for(small_config("mel")).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config[field] = value
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=message):
        VocosModel.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "mask, error, message",
    [
        (torch.full((2, 20), 0.5), TypeError, r"`attention_mask` must hold 0/1 as a bool or integer tensor.*float32"),
        (torch.full((2, 20), float("nan")), TypeError, r"`attention_mask` must hold 0/1 .*float32"),
        (torch.full((2, 20), 2), ValueError, r"`attention_mask` must hold only 0 and 1 .*got values in \[2, 2\]"),
        (torch.tensor([[1] * 20, [1] * 10 + [-1] * 10]), ValueError, r"only 0 and 1 .*\[-1, 1\]"),
    ],
)
def test_an_attention_mask_holds_only_zeros_and_ones(mask, error, message):
    """0.5, NaN, 2 or -1 are not a mask (they used to count as ones, silently)."""
    model = randomize_(model_for(small_config("mel")))
    with pytest.raises(error, match=message):
        model(torch.randn(2, 100, 20), attention_mask=mask)
    lengths = torch.tensor([[20], [12]])
    for valid in ((torch.arange(20)[None] < lengths), (torch.arange(20)[None] < lengths).int()):
        assert model(torch.randn(2, 100, 20), attention_mask=valid).attention_mask.shape == (2, 4864)


def test_empty_batches_and_unsigned_codes_are_named():
    mel, encodec = (randomize_(model_for(small_config(variant))) for variant in ("mel", "encodec"))
    with pytest.raises(ValueError, match=r"`input_features` has a batch of 0 items \(shape \(0, 100, 10\)\)"):
        mel(torch.zeros(0, 100, 10))
    with pytest.raises(ValueError, match=r"`codes` has a batch of 0 items \(shape \(4, 0, 10\)\)"):
        encodec(codes=torch.zeros(4, 0, 10, dtype=torch.long), bandwidth=3.0)
    codes = np.random.default_rng(0).integers(0, 1024, (4, 1, 10))
    expected = encodec(codes=torch.from_numpy(codes), bandwidth=3.0).audio
    for dtype in (np.uint64, np.uint32, np.uint16):
        torch.testing.assert_close(encodec(codes=codes.astype(dtype), bandwidth=3.0).audio, expected)
    with pytest.raises(ValueError, match=r"`codes` values must lie in \[0, 1024\), got values in \[5000, 5000\]"):
        encodec(codes=np.full((4, 1, 10), 5000, dtype=np.uint64), bandwidth=3.0)
    with pytest.raises(ValueError, match=r"`codes` values must lie in \[0, 1024\), got values above 2\*\*63"):
        encodec(codes=np.full((4, 1, 10), 2**64 - 1, dtype=np.uint64), bandwidth=3.0)


def test_save_pretrained_to_a_file_path_raises(tmp_path):
    """transformers logs an error and saves nothing for a file path: a script would go on without its checkpoint."""
    model = randomize_(model_for(small_config("mel")))
    model.save_pretrained(tmp_path)
    with pytest.raises(
        ValueError, match=r"`save_directory` '.*config\.json' is a file; save_pretrained writes a folder"
    ):
        model.save_pretrained(tmp_path / "config.json")
