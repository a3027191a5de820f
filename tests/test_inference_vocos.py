"""The inference implementations behind `model.inference_implementation` (inference_vocos): each against the plain
(eager) path, the switch itself, the tiled CPU path's pieces (blocks across tile edges, overlap-add by tiles, packed
weights), the ONNX path's DFT-basis ISTFT, half precision and autocast on every implementation."""

from __future__ import annotations

import re

import pytest
import torch
from conftest import SMALL_MEL, model_for, randomize_, require_packed_linear, small_config, speech_like

from hf_vocos import CPUTiledImplementation, VocosConfig, VocosFeatureExtractor, VocosModel
from hf_vocos.inference_vocos import IMPLEMENTATIONS

# Every implementation of inference, each forced (`"auto"` is one of them, chosen by the CPU at hand).
IMPLEMENTATION_NAMES = list(IMPLEMENTATIONS)


def _spectrum_to_hidden_free_frames(head, spectrum, implementation):
    """Windowed frames of a complex spectrum (batch, bins, frames) as an implementation makes them from the head's
    projection: here the projection is bypassed, so eager's irfft and onnx's DFT-basis matmul are compared directly."""
    real, imag = spectrum.real.transpose(1, 2), spectrum.imag.transpose(1, 2)
    if implementation == "onnx":
        return torch.cat([real, imag], dim=-1) @ IMPLEMENTATIONS["onnx"].inverse_dft_basis(head)
    return torch.fft.irfft(torch.complex(real, imag), n=head.n_fft) * head.fft_window()


@pytest.mark.parametrize("n_fft, hop, win", [(1024, 256, 1024), (1280, 320, 1280), (512, 100, 400), (600, 150, 600)])
@pytest.mark.parametrize("implementation", ["eager", "onnx"])
def test_istft_equals_torch_istft(n_fft, hop, win, implementation):
    """Both inverse transforms (FFT; DFT-basis matmul for export) and both overlap-adds (fold; shifted additions for
    export, fold again when the hop does not divide n_fft) equal torch.istft(center=True)."""
    head = VocosModel(VocosConfig(**SMALL_MEL, n_fft=n_fft, hop_length=hop, win_length=win)).decoder
    generator = torch.Generator().manual_seed(n_fft)
    spectrum = torch.complex(
        torch.randn(2, n_fft // 2 + 1, 37, generator=generator), torch.randn(2, n_fft // 2 + 1, 37, generator=generator)
    )
    expected = torch.istft(spectrum, n_fft, hop, win, torch.hann_window(win), center=True)
    frames = _spectrum_to_hidden_free_frames(head, spectrum, implementation)
    if implementation == "onnx":
        onnx = IMPLEMENTATIONS["onnx"]
        audio, envelope = onnx.overlap_add(head, frames), onnx.window_envelope(head, None, 37)
        audio = head.normalize(
            audio[:, head.trim : audio.shape[-1] - head.trim], envelope[:, head.trim : envelope.shape[-1] - head.trim]
        )
    else:
        audio = head.synthesize(frames)
    torch.testing.assert_close(audio, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "n_fft, hop, win, padding",
    [
        (1024, 256, 1024, "center"),
        (1280, 320, 1280, "same"),
        (512, 128, 400, "center"),
        (48, 12, 40, "same"),
        (600, 150, 600, "center"),
    ],
)
@pytest.mark.parametrize("num_frames, tile_frames", [(1, 4), (5, 1), (6, 2), (37, 3), (37, 16), (37, 64)])
@pytest.mark.parametrize("masked", [False, True])
def test_tiled_overlap_add_equals_synthesize(n_fft, hop, win, padding, num_frames, tile_frames, masked):
    """The tiled CPU path overlap-adds each tile of frames as soon as the head makes it (and divides by a periodic
    envelope when no mask is given): the audio of `synthesize` on the whole frames tensor, across tile edges, short
    inputs, ragged masks, windows shorter than n_fft."""
    config = VocosConfig(**SMALL_MEL, n_fft=n_fft, hop_length=hop, win_length=win, istft_padding=padding)
    head = VocosModel(config).decoder
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

    tiled = CPUTiledImplementation(tile_frames).synthesize_tiles(head, make_frames, 2, num_frames, frame_mask)
    expected = head.synthesize(frames if frame_mask is None else frames * frame_mask, frame_mask)
    assert tiled.shape == expected.shape == (2, config.num_samples(num_frames)) and tiled.is_contiguous()
    torch.testing.assert_close(tiled, expected, rtol=0, atol=2e-6)
    assert requested == [(start, min(start + tile_frames, num_frames)) for start in range(0, num_frames, tile_frames)]


def test_hop_that_does_not_divide_n_fft():
    """That case overlap-adds by `fold` in every implementation: the tiled CPU path makes its frames a tile at a time
    and folds them whole, with the eager audio."""
    model = randomize_(VocosModel(VocosConfig(**SMALL_MEL, n_fft=512, hop_length=100, win_length=400)), seed=20)
    features = torch.randn(2, 100, 30, generator=torch.Generator().manual_seed(21))
    outputs = {}
    for implementation in IMPLEMENTATION_NAMES:
        model.inference_implementation = CPUTiledImplementation(7) if implementation == "cpu_tiled" else implementation
        with torch.no_grad():
            outputs[implementation] = model(input_features=features).audio
    assert outputs["eager"].shape == (2, model.config.num_samples(30))
    for implementation, audio in outputs.items():
        torch.testing.assert_close(audio, outputs["eager"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("tile_frames", [0, -3, 2.5, True])
def test_tiled_implementation_refuses_a_bad_tile_size(tile_frames):
    with pytest.raises(
        ValueError, match=r"`tile_frames` must be a positive integer, got " + re.escape(repr(tile_frames))
    ):
        CPUTiledImplementation(tile_frames)


def _snr_db(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    return float(10 * torch.log10(reference.square().sum() / (reference - estimate).square().sum()))


@pytest.mark.parametrize("implementation", IMPLEMENTATION_NAMES)
@pytest.mark.parametrize("dtype, min_snr_db", [(torch.bfloat16, 30.0), (torch.float16, 45.0)])
def test_half_precision_inference_keeps_its_snr(mel_pair, dtype, min_snr_db, implementation):
    """Half-precision weights and activations with the spectrum and the ISTFT in float32, on every implementation
    (the tiled CPU path packs bfloat16 only where oneDNN runs it, and never float16): the audio stays float32 and
    within its SNR bound of the float32 output (measured 38 and 55 dB; float16 keeps 3 more mantissa bits)."""
    _, ours = mel_pair
    extractor = VocosFeatureExtractor()
    features = torch.from_numpy(extractor(speech_like(3 * 24000, seed=11), sampling_rate=24000)["input_features"])
    half = VocosModel(ours.config).eval()
    half.load_state_dict(ours.state_dict())
    half.to(dtype)
    half.inference_implementation = implementation
    with torch.no_grad():
        reference = ours(input_features=features).audio
        audio = half(input_features=features).audio
    assert audio.dtype == torch.float32
    assert _snr_db(reference, audio) >= min_snr_db


@pytest.mark.parametrize("implementation", IMPLEMENTATION_NAMES)
def test_bfloat16_autocast_on_every_implementation(mel_pair, implementation):
    """A float32 model under `torch.autocast("cpu", dtype=torch.bfloat16)`: the products run in bfloat16 (the tiled
    path steps aside from its float32-packed weights, which would bypass autocast and failed under it)."""
    _, ours = mel_pair
    features = torch.randn(1, 100, 120, generator=torch.Generator().manual_seed(30)) - 5
    with torch.no_grad():
        reference = ours(input_features=features).audio
        ours.inference_implementation = implementation
        with torch.autocast("cpu", dtype=torch.bfloat16):
            audio = ours(input_features=features).audio
    ours.inference_implementation = "auto"
    assert audio.dtype == torch.float32
    assert 30 <= _snr_db(reference, audio) < 80  # bfloat16 did run


@pytest.mark.parametrize("implementation", ["cpu_tiled", "accelerator", "onnx"])
@pytest.mark.parametrize("variant", ["mel", "encodec"])
def test_every_implementation_equals_eager(variant, implementation):
    """Each implementation against the plain path, on a ragged batch, with tiles smaller than the input (the tiled
    path's tile edges, its held-back tiles and its overlap-add across them)."""
    config = small_config(variant)
    model = randomize_(model_for(config), seed=12)
    generator = torch.Generator().manual_seed(13)
    features = torch.randn(3, config.input_channels, 150, generator=generator)
    mask = (torch.arange(150)[None, :] < torch.tensor([[150], [61], [150]])).int()
    kwargs = {} if variant == "mel" else {"bandwidth": 3.0}
    outputs = {}
    for name in ("eager", implementation):
        model.inference_implementation = CPUTiledImplementation(tile_frames=64) if name == "cpu_tiled" else name
        with torch.no_grad():
            outputs[name] = (
                model(input_features=features, **kwargs).audio,
                model(input_features=features, attention_mask=mask, **kwargs).audio,
            )
    for plain, other in zip(outputs["eager"], outputs[implementation]):
        torch.testing.assert_close(other, plain, rtol=0, atol=1e-5)


def test_the_switch():
    """`inference_implementation`: "auto" by default, validated, a runtime setting (copies keep it, saves do not),
    settable at load; "auto" picks by device, autograd and the CPU's capability; a forced fast path steps aside to
    eager where it cannot run."""
    import copy

    from hf_vocos.capabilities import tiled_cpu_path_preferred

    model = randomize_(VocosModel(VocosConfig(**SMALL_MEL)), seed=18)
    features = torch.randn(1, 100, 20)
    assert model.inference_implementation == "auto"
    with torch.no_grad():
        assert model.implementation_for(features).name == ("cpu_tiled" if tiled_cpu_path_preferred() else "eager")
        assert model.implementation_for(features.to("meta")).name == "accelerator"  # any device but the CPU
    assert model.implementation_for(features).name == "eager"  # autograd: the training path
    model.inference_implementation = "cpu_tiled"
    assert model.implementation_for(features).name == "eager"  # forced, but cannot run with autograd
    with torch.no_grad():
        assert model.implementation_for(features).name == "cpu_tiled"
        assert model.implementation_for(features.to("meta")).name == "eager"  # the tiled path is the CPU's
    assert copy.deepcopy(model).inference_implementation == "cpu_tiled"
    for bad in ("fast", None, 1):
        with pytest.raises(
            ValueError,
            match=r"`inference_implementation` must be one of \['auto', 'eager', 'cpu_tiled', 'accelerator', 'onnx'\]",
        ):
            model.inference_implementation = bad


def test_the_switch_is_not_saved_and_is_settable_at_load(tmp_path):
    model = randomize_(VocosModel(VocosConfig(**SMALL_MEL)), seed=18)
    model.inference_implementation = "accelerator"
    model.save_pretrained(tmp_path)
    assert "inference_implementation" not in (tmp_path / "config.json").read_text()
    assert VocosModel.from_pretrained(tmp_path).inference_implementation == "auto"
    assert VocosModel.from_pretrained(tmp_path, inference_implementation="eager").inference_implementation == "eager"


def test_packed_weights_follow_weight_changes_and_are_freed():
    """The tiled CPU path multiplies by packed copies of the MLP weights (layer scale folded in) and of the head's
    projection, cached per module: any change to the weights must reach the output, the cache stays off the module
    (copies, state dicts), and choosing another implementation frees the copies."""
    import copy
    import gc
    import weakref

    require_packed_linear(torch.float32)
    tiled = CPUTiledImplementation()
    model = randomize_(VocosModel(VocosConfig(**SMALL_MEL)), seed=15)
    model.inference_implementation = tiled
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
        model.layers[-1].layer_scale_parameter.mul_(3.0)  # in place: same tensor, new version
    changed = check(model)
    assert (changed - before).abs().max() > 1e-3
    with torch.no_grad():
        model.decoder.out.weight[: model.config.n_fft // 2 + 1].mul_(0.5)  # the head's packed halves must follow too
    assert (check(model) - changed).abs().max() > 1e-3
    other = randomize_(VocosModel(VocosConfig(**SMALL_MEL)), seed=17)
    other.inference_implementation = tiled
    model.load_state_dict(other.state_dict())
    torch.testing.assert_close(check(model), check(other), rtol=0, atol=0)
    twin = copy.deepcopy(model)
    assert set(twin.state_dict()) == set(model.state_dict())
    torch.testing.assert_close(check(twin), check(model), rtol=0, atol=0)
    copies = [weakref.ref(tiled._packed._entries[module][2][0]) for module in (*model.layers, model.decoder)]
    model.inference_implementation = "eager"
    gc.collect()
    assert all(module not in tiled._packed for module in (*model.layers, model.decoder))
    assert all(packed() is None for packed in copies)  # freed, not just forgotten
    require_packed_linear(torch.bfloat16)
    model.inference_implementation = tiled
    reference = check(model)
    half = model.to(torch.bfloat16)  # same parameters, cast: the cache must repack them in bf16
    with torch.no_grad():
        cached = half(input_features=features).audio
    with torch.enable_grad():
        plain = half(input_features=features).audio.detach()
    assert _snr_db(reference, cached) >= 30 and _snr_db(plain, cached) >= 30


@pytest.mark.parametrize("tile_frames", [1, 3, 4, 7, 29, 30, 64])
@pytest.mark.parametrize("variant", ["mel", "encodec"])
def test_tiled_block_equals_the_plain_block_across_tile_edges(tile_frames, variant):
    """The tiled path runs a block's depthwise convolution, norm and MLP over tiles of frames, each tile's
    convolution reading `kernel_size // 2` frames beyond it, and may write its output over its input (a tile's result
    held back until the next tile has read the frames it overlaps). Every tile size, down to fewer frames than the
    convolution's reach, must give the plain block's output, masked or not, for each item of a batch; and a caller
    that does not give its tensor up keeps it unchanged."""
    config = small_config(variant)
    model = randomize_(model_for(config), seed=20)
    block = model.layers[0]
    tiled = CPUTiledImplementation(tile_frames)
    generator = torch.Generator().manual_seed(21)
    hidden = torch.randn(2, 30, config.hidden_size, generator=generator)
    bandwidth_id = model.bandwidth_id(3.0) if config.use_adaptive_norm else None
    kept_input = hidden.clone()
    frame_mask = (torch.arange(30)[None, :] < torch.tensor([[30], [17]])).float()[..., None]
    for mask in (None, frame_mask):
        with torch.no_grad():
            plain = block(hidden, bandwidth_id, mask)
            kept = tiled.block(block, hidden, bandwidth_id, mask)
            assert torch.equal(hidden, kept_input)
            overwritten = hidden.clone()
            reused = tiled.block(block, overwritten, bandwidth_id, mask, reuse_input=True)
        torch.testing.assert_close(kept, plain, rtol=0, atol=1e-5)
        torch.testing.assert_close(reused, plain, rtol=0, atol=1e-5)
        if mask is None:
            assert reused.data_ptr() == overwritten.data_ptr()  # written over the input it was given


@pytest.mark.parametrize("variant", ["mel", "encodec"])
def test_backbone_is_its_stages_in_order(variant):
    """`stage` (what the streaming decoder runs on new frames) composes to the backbone, its radii add up to the
    receptive field, and every implementation's stage equals the plain one and leaves a caller's tensor alone."""
    config = small_config(variant)
    model = randomize_(model_for(config), seed=22)
    assert model.stage_radii == [3] + [config.kernel_size // 2] * config.num_layers + [0]
    assert model.receptive_radius == 3 + config.num_layers * (config.kernel_size // 2)
    features = torch.randn(2, config.input_channels, 37, generator=torch.Generator().manual_seed(23))
    bandwidth_id = model.bandwidth_id(6.0) if config.use_adaptive_norm else None
    implementations = [IMPLEMENTATIONS[name] for name in IMPLEMENTATION_NAMES] + [CPUTiledImplementation(5)]
    with torch.no_grad():
        hidden = features.transpose(1, 2)
        for index in range(len(model.stage_radii)):
            output = model.stage(index, hidden, bandwidth_id)
            for implementation in implementations:
                given = hidden.clone()
                torch.testing.assert_close(
                    implementation.stage(model, index, given, bandwidth_id), output, rtol=0, atol=1e-5
                )
                assert torch.equal(given, hidden)
            hidden = output
        assert torch.equal(hidden, model.backbone(features, None, bandwidth_id))
