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


# ---------------------------------------------------------------------------------------------------------------------
# The fast paths are invisible: users' habits (inference_mode, casts, reloads, in-place edits, copies, threads, ...)
# give each implementation the plain path's audio. Each scenario runs once per implementation and once with "eager",
# on identically prepared models; float32 must agree within 1e-4 of the peak, half precision within 30 dB SNR.


def _offered_implementations() -> dict:
    """Every implementation this machine offers, by test id: what "auto" picks here, each registered one, and the
    tiled path on small tiles that packs its weights for any call (where the CPU can pack the call's dtype)."""
    return {
        "auto": lambda: "auto",
        "cpu_tiled": lambda: "cpu_tiled",
        "cpu_tiled_small_tiles_packing": lambda: CPUTiledImplementation(tile_frames=16, pack_min_rows=0),
        "accelerator": lambda: "accelerator",
        "onnx": lambda: "onnx",
    }


def _matrix_model(variant: str, seed: int = 40):
    return randomize_(model_for(small_config(variant)), seed=seed)


def _matrix_inputs(variant: str, batch_size: int = 2, num_frames: int = 75, seed: int = 41) -> dict:
    generator = torch.Generator().manual_seed(seed)
    if variant == "mel":
        return {"input_features": torch.randn(batch_size, 100, num_frames, generator=generator) - 4}
    return {"codes": torch.randint(0, 1024, (4, batch_size, num_frames), generator=generator), "bandwidth": 3.0}


def _edit_in_place(model) -> None:
    """What an optimizer step or a weight surgery does: the same tensors, new values."""
    model.layers[0].pwconv1.weight.mul_(1.5)
    model.layers[-1].layer_scale_parameter.add_(0.25)
    model.decoder.out.weight[: model.config.n_fft // 2 + 1].mul_(0.5)
    model.norm.weight.mul_(0.75)


def _scenario_outputs(name: str, variant: str, implementation, tmp_path) -> list[torch.Tensor]:
    """The audio a user gets in scenario `name` with `implementation` forced."""
    import copy
    import pickle
    import threading

    inputs = _matrix_inputs(variant)

    def run(model, grad_mode: str = "no_grad", **kwargs):
        model.inference_implementation = implementation
        arguments = {**inputs, **kwargs}
        if grad_mode == "grad":
            with torch.enable_grad():
                return model(**arguments).audio.detach()
        context = torch.inference_mode() if grad_mode == "inference_mode" else torch.no_grad()
        with context:
            return model(**arguments).audio.clone()

    if name == "built_in_inference_mode":
        with torch.inference_mode():
            model = _matrix_model(variant)
            return [run(model, "inference_mode"), run(model, "no_grad")]
    if name == "loaded_in_inference_mode":
        folder = tmp_path / "saved"
        if not folder.exists():
            _matrix_model(variant).save_pretrained(folder)
        with torch.inference_mode():
            model = VocosModel.from_pretrained(folder)
            return [run(model, "inference_mode")]
    if name == "cast_in_inference_mode":
        model = _matrix_model(variant)
        with torch.inference_mode():
            model.to(torch.bfloat16)
            return [run(model, "inference_mode")]
    if name == "called_three_ways":
        model = _matrix_model(variant)
        return [run(model, mode) for mode in ("grad", "no_grad", "inference_mode")]
    if name == "reloaded_after_a_call":
        model, other = _matrix_model(variant), _matrix_model(variant, seed=42)
        first = run(model)
        model.load_state_dict(other.state_dict())
        return [first, run(model)]
    if name == "edited_in_place_after_a_call":
        model = _matrix_model(variant)
        first = run(model)
        with torch.no_grad():
            _edit_in_place(model)
        return [first, run(model)]
    if name == "inference_tensors_edited_in_place":
        with torch.inference_mode():
            model = _matrix_model(variant)
            first = run(model, "inference_mode")
            _edit_in_place(model)
            return [first, run(model, "inference_mode")]
    if name == "copied_after_a_call":
        model = _matrix_model(variant)
        first = run(model)
        twin, unpickled = copy.deepcopy(model), pickle.loads(pickle.dumps(model))
        with torch.no_grad():
            _edit_in_place(twin)  # the copy's weights are its own
        return [first, run(twin), run(unpickled), run(model)]
    if name == "float32_bfloat16_float32":
        model = _matrix_model(variant)
        first = run(model)
        half = run(model.to(torch.bfloat16))
        return [first, half, run(model.to(torch.float32))]
    if name == "float16":
        model = _matrix_model(variant)
        try:
            return [run(model.to(torch.float16))]
        except (RuntimeError, NotImplementedError) as error:
            pytest.skip(f"float16 inference does not run on this CPU's torch: {error}")
    if name == "autocast_bfloat16":
        model = _matrix_model(variant)
        run(model)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return [run(model)]
    if name == "threads_on_one_model":
        model = _matrix_model(variant)
        model.inference_implementation = implementation
        results: dict[int, torch.Tensor] = {}

        def work(seed: int) -> None:
            with torch.no_grad():
                results[seed] = model(**_matrix_inputs(variant, seed=seed)).audio

        threads = [threading.Thread(target=work, args=(seed,)) for seed in range(50, 54)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [results[seed] for seed in range(50, 54)]
    if name == "ragged_batch_with_a_mask":
        model = _matrix_model(variant)
        mask = (torch.arange(75)[None, :] < torch.tensor([[75], [33]])).int()
        return [run(model, attention_mask=mask)]
    if name == "decode_chunked_and_stream":
        model = _matrix_model(variant)
        model.inference_implementation = implementation
        with torch.no_grad():
            chunked = model.decode_chunked(**inputs, chunk_size=20).audio
            if variant == "mel":
                pieces = [inputs["input_features"][..., start : start + 7] for start in range(0, 75, 7)]
            else:
                pieces = [inputs["codes"][..., start : start + 7] for start in range(0, 75, 7)]
            streamed = torch.cat(list(model.stream(pieces, bandwidth=inputs.get("bandwidth"))), dim=-1)
        return [chunked, streamed]
    raise AssertionError(name)


_HALF_PRECISION_OUTPUTS = {"cast_in_inference_mode": {0}, "float32_bfloat16_float32": {1}, "float16": {0}}
_HALF_PRECISION_OUTPUTS["autocast_bfloat16"] = {0}
_SCENARIOS = [
    "built_in_inference_mode",
    "loaded_in_inference_mode",
    "cast_in_inference_mode",
    "called_three_ways",
    "reloaded_after_a_call",
    "edited_in_place_after_a_call",
    "inference_tensors_edited_in_place",
    "copied_after_a_call",
    "float32_bfloat16_float32",
    "float16",
    "autocast_bfloat16",
    "threads_on_one_model",
    "ragged_batch_with_a_mask",
    "decode_chunked_and_stream",
]


@pytest.mark.parametrize("implementation", list(_offered_implementations()))
@pytest.mark.parametrize("scenario", _SCENARIOS)
@pytest.mark.parametrize("variant", ["mel", "encodec"])
def test_fast_paths_are_invisible(variant, scenario, implementation, tmp_path):
    """Each implementation the machine offers gives the plain path's audio whatever the user did to the model before
    (or while) calling it: float32 within 1e-4 of the peak, half precision at least 30 dB SNR."""
    chosen = _offered_implementations()[implementation]()
    outputs = _scenario_outputs(scenario, variant, chosen, tmp_path)
    references = _scenario_outputs(scenario, variant, "eager", tmp_path)
    assert len(outputs) == len(references)
    for index, (output, reference) in enumerate(zip(outputs, references)):
        assert output.shape == reference.shape and output.dtype == torch.float32
        assert bool(torch.isfinite(output).all())
        if index in _HALF_PRECISION_OUTPUTS.get(scenario, ()):
            assert _snr_db(reference, output) >= 30, (index, _snr_db(reference, output))
        else:
            error = float((output - reference).abs().max())
            assert error <= 1e-4 * float(reference.abs().max()), (index, error)
    if scenario in ("reloaded_after_a_call", "edited_in_place_after_a_call", "inference_tensors_edited_in_place"):
        assert float((outputs[1] - outputs[0]).abs().max()) > 1e-3  # the change reached the audio


def test_the_tiled_path_keeps_nothing_between_calls():
    """Packed weights live as long as the call that made them: the implementation holds no tensor afterwards (so no
    second copy of the weights), and a call too short to pay for packing multiplies by the weights themselves."""
    import gc

    require_packed_linear(torch.float32)
    tiled = CPUTiledImplementation(tile_frames=16, pack_min_rows=0)
    model = _matrix_model("mel")
    model.inference_implementation = tiled
    with torch.no_grad():
        model(**_matrix_inputs("mel"))
    gc.collect()
    assert not any(isinstance(value, torch.Tensor) for value in vars(tiled).values())
    assert tiled.packs(model.layers[0].pwconv1.weight, rows=1)
    assert not CPUTiledImplementation().packs(model.layers[0].pwconv1.weight, rows=1023)
    with pytest.raises(ValueError, match=r"`pack_min_rows` must be an integer >= 0, got -1"):
        CPUTiledImplementation(pack_min_rows=-1)


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
