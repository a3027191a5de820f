"""Chunked and streaming decoding: equal to the full decode, for both variants and both ISTFT paddings."""

from __future__ import annotations

import pytest
import torch
from conftest import SMALL_ENCODEC, SMALL_MEL, model_for, randomize_, small_config

from hf_vocos import (
    VocosConfig,
    VocosEncodecConfig,
    VocosEncodecModel,
    VocosFeatureExtractor,
    VocosModel,
    VocosProcessor,
)
from hf_vocos.inference_vocos import EagerImplementation
from hf_vocos.streaming_vocos import VocosStreamingDecoder

VARIANTS = {
    "mel-center": ("mel", {}),
    "mel-same": ("mel", {"istft_padding": "same"}),
    "encodec-same": ("encodec", {}),
    "encodec-center": ("encodec", {"istft_padding": "center"}),
}
CHUNK_SIZES = [1, 2, 7, 26, 27, 28, 61, 173, 500]


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def case(request):
    model = randomize_(model_for(small_config(VARIANTS[request.param][0], **VARIANTS[request.param][1])), seed=3)
    generator = torch.Generator().manual_seed(4)
    if model.config.is_codes_model:
        inputs, kwargs = {"codes": torch.randint(0, 1024, (8, 2, 173), generator=generator)}, {"bandwidth": 6.0}
    else:
        inputs, kwargs = {"input_features": torch.randn(2, 100, 173, generator=generator)}, {}
    with torch.no_grad():
        full = model(**inputs, **kwargs)
    return model, inputs, kwargs, full


@pytest.mark.parametrize("implementation", ["auto", "eager", "cpu_tiled", "accelerator"])
@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_decode_chunked_equals_full_decode(case, chunk_size, implementation):
    """Chunked decoding runs the stages and the head through the model's implementation, as forward does."""
    model, inputs, kwargs, full = case
    model.inference_implementation = implementation
    with torch.no_grad():
        output = model.decode_chunked(**inputs, **kwargs, chunk_size=chunk_size)
    model.inference_implementation = "auto"
    assert output.audio.shape == full.audio.shape
    torch.testing.assert_close(output.audio, full.audio, rtol=0, atol=1e-5)
    torch.testing.assert_close(output.attention_mask, full.attention_mask, rtol=0, atol=0)


@pytest.mark.parametrize("piece_sizes", [[13], [1], [5, 40, 1, 90, 3], [173]])
def test_stream_equals_full_decode(case, piece_sizes):
    model, inputs, kwargs, full = case
    (tensor,) = inputs.values()
    pieces, start, index = [], 0, 0
    while start < tensor.shape[-1]:
        size = piece_sizes[index % len(piece_sizes)]
        pieces.append(tensor[..., start : start + size])
        start, index = start + size, index + 1
    with torch.no_grad():
        streamed = list(model.stream(iter(pieces), **kwargs))
    assert all(piece.shape[0] == 2 and piece.shape[1] > 0 for piece in streamed)
    torch.testing.assert_close(torch.cat(streamed, dim=-1), full.audio, rtol=0, atol=1e-5)


def test_stream_takes_numpy_and_empty_chunks(case):
    """Chunks may be numpy arrays (as `forward` takes them) and may hold 0 frames (a producer's step that yields
    nothing): the audio is the same."""
    model, inputs, kwargs, full = case
    (tensor,) = inputs.values()
    empty = tensor[..., :0]
    pieces = [
        empty,
        tensor[..., :50].numpy(),
        empty.numpy(),
        tensor[..., 50:51],
        empty,
        tensor[..., 51:].numpy(),
        empty,
    ]
    with torch.no_grad():
        streamed = list(model.stream(pieces, **kwargs))
    assert all(piece.shape[0] == 2 and piece.shape[1] > 0 for piece in streamed)
    torch.testing.assert_close(torch.cat(streamed, dim=-1), full.audio, rtol=0, atol=1e-5)
    decoder = VocosStreamingDecoder(model, **kwargs)
    assert decoder.push(empty).shape == (2, 0)
    # An empty chunk is checked like any other: the wrong channel or codebook count is refused.
    if model.config.is_codes_model:
        bad, match = (
            empty[:7],
            r"^`chunk` \(codes of shape \(7, 2, 0\), pushed after 0 frames\): `codes` has 7 codebooks",
        )
    else:
        bad, match = (
            empty[:, :99],
            r"^`chunk` \(features of shape \(2, 99, 0\), pushed after 0 frames\): `input_features` must",
        )
    with pytest.raises(ValueError, match=match):
        decoder.push(bad)
    assert decoder.flush().shape == (2, 0)


def test_bad_stream_arguments_raise_at_the_call():
    """`stream` is not a plain generator function: a bad `chunks`, `bandwidth` or `context_frames` raises when it is
    called, not at the first `next()`. A single tensor is refused: iterating it would split its batch axis."""
    mel = randomize_(VocosModel(VocosConfig(**SMALL_MEL)))
    encodec = randomize_(VocosEncodecModel(VocosEncodecConfig(**SMALL_ENCODEC)))
    with pytest.raises(
        TypeError, match=r"`chunks` must be an iterable of chunks .* got a single Tensor of shape \(2, 100, 30\)"
    ):
        mel.stream(torch.randn(2, 100, 30))
    with pytest.raises(TypeError, match=r"`chunks` must be an iterable .* got a single ndarray"):
        mel.stream(torch.randn(2, 100, 30).numpy())
    with pytest.raises(TypeError, match="`chunks` must be an iterable of feature or code chunks, got int"):
        mel.stream(5)
    with pytest.raises(ValueError, match="`bandwidth` is required"):
        encodec.stream([torch.zeros(4, 1, 5, dtype=torch.long)])
    with pytest.raises(ValueError, match="`context_frames`=3 is too small"):
        mel.stream([], context_frames=3)
    decoder = VocosStreamingDecoder(mel)
    decoder.push(torch.randn(2, 100, 0))
    with pytest.raises(ValueError, match="batch size 1, but this stream started with 2"):
        decoder.push(torch.randn(1, 100, 4))
    assert list(mel.stream([])) == []


def test_audio_comes_out_after_the_receptive_field():
    model = randomize_(VocosModel(VocosConfig(**SMALL_MEL)))
    decoder = VocosStreamingDecoder(model)
    radius = model.receptive_radius
    assert radius == decoder.latency_frames == 3 + 2 * 3
    with torch.no_grad():
        assert decoder.push(torch.randn(1, 100, radius)).shape == (1, 0)
        # Frame 0..4 become final: 5 hops, minus the 512-sample "center" trim.
        assert decoder.push(torch.randn(100, 5)).shape == (1, 5 * 256 - 512)
        assert decoder.flush().shape[-1] > 0
    with pytest.raises(RuntimeError, match="flushed"):
        decoder.push(torch.randn(1, 100, 3))
    decoder.reset()
    with torch.no_grad():
        assert decoder.push(torch.randn(1, 100, 40)).shape[-1] > 0


def test_more_context_frames_only_delays_the_audio(case):
    model, inputs, kwargs, full = case
    (tensor,) = inputs.values()
    radius = model.receptive_radius
    decoder = VocosStreamingDecoder(model, context_frames=radius + 10, **kwargs)
    hop = model.config.hop_length
    with torch.no_grad():
        assert decoder.push(tensor[..., : radius + 10]).shape[-1] == 0
        first = decoder.push(tensor[..., radius + 10 : radius + 30])  # frames 0..19 become final
        rest = decoder.push(tensor[..., radius + 30 :])
        pieces = [first, rest, decoder.flush()]
    assert first.shape[-1] == 20 * hop - model.decoder.trim
    torch.testing.assert_close(torch.cat(pieces, dim=-1), full.audio, rtol=0, atol=1e-5)


def test_bfloat16_stream_equals_the_bfloat16_forward(case):
    """A bf16 model streams its own forward's audio (float32 out), not a float32 model's."""
    model, inputs, kwargs, _ = case
    half = model_for(model.config).eval()
    half.load_state_dict(model.state_dict())
    half = half.to(torch.bfloat16)
    (tensor,) = inputs.values()
    with torch.no_grad():
        full = half(**inputs, **kwargs).audio
        streamed = torch.cat(
            list(half.stream((tensor[..., start : start + 11] for start in range(0, 173, 11)), **kwargs)), -1
        )
    assert streamed.dtype == full.dtype == torch.float32

    # bfloat16 products may round differently for another number of rows (CPUs without native bfloat16 emulate them,
    # blocked by the row count), so the stream matches its forward to bfloat16 rounding, far closer than the float32
    # model's audio.
    def snr_db(reference, estimate):
        return float(10 * torch.log10(reference.square().sum() / (reference - estimate).square().sum()))

    assert snr_db(full, streamed) >= 50
    assert snr_db(full, streamed) >= snr_db(case[3].audio, streamed) + 10


def test_ragged_batch_decodes_each_item_as_alone(monkeypatch):
    """Items of equal length share one stream (here 3 streams for 5 items), and each equals its solo decode."""
    model = randomize_(VocosEncodecModel(VocosEncodecConfig(**SMALL_ENCODEC)), seed=5)
    lengths = [50, 13, 31, 13, 50]
    codes = torch.randint(0, 1024, (4, 5, 50), generator=torch.Generator().manual_seed(6))
    mask = (torch.arange(50)[None, :] < torch.tensor(lengths)[:, None]).int()
    streams = []
    original_init = VocosStreamingDecoder.__init__

    def counting_init(self, *args, **kwargs):
        streams.append(self)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(VocosStreamingDecoder, "__init__", counting_init)
    with torch.no_grad():
        full = model(codes=codes, bandwidth=3.0, attention_mask=mask)
        chunked = model.decode_chunked(codes=codes, bandwidth=3.0, attention_mask=mask, chunk_size=8)
        solo = [model(codes=codes[:, i : i + 1, :length], bandwidth=3.0).audio[0] for i, length in enumerate(lengths)]
    assert sorted((stream._batch_size, stream._received) for stream in streams) == [(1, 31), (2, 13), (2, 50)]
    for item, audio in enumerate(solo):
        torch.testing.assert_close(chunked.audio[item, : audio.shape[0]], audio, rtol=0, atol=1e-5)
        assert not chunked.audio[item, audio.shape[0] :].any()
    torch.testing.assert_close(chunked.attention_mask, full.attention_mask, rtol=0, atol=0)
    torch.testing.assert_close(chunked.audio, full.audio, rtol=0, atol=1e-5)


def test_memory_does_not_grow_with_the_stream():
    """The decoder keeps only each stage's context and the overlap-add tail, whatever the length."""
    model = randomize_(VocosModel(VocosConfig(**SMALL_MEL)))
    decoder = VocosStreamingDecoder(model)
    radii = model.stage_radii
    with torch.no_grad():
        for _ in range(50):
            decoder.push(torch.randn(1, 100, 64))
            assert [kept.shape[1] for kept in decoder._inputs] == [2 * radius for radius in radii]
            assert decoder._hidden.shape[1] == 0  # default latency: every final hidden state is decoded at once
            assert decoder._signal.shape[-1] == 1024 - 256


@pytest.mark.parametrize("variant", ["mel-center", "encodec-same"])
def test_each_frame_goes_through_the_network_once(variant):
    """A push runs each backbone stage on its new frames plus that stage's own context (2 x kernel_size // 2), not
    on the new frames plus the whole receptive field; the head sees each frame once."""
    model = randomize_(model_for(small_config(VARIANTS[variant][0], **VARIANTS[variant][1])), seed=8)
    kwargs = {"bandwidth": 6.0} if model.config.is_codes_model else {}
    radii = model.stage_radii
    stage_calls, head_frames = [], []

    class Counting(EagerImplementation):  # the plain path, counting what it is given (selected by the switch)
        def stage(self, model, index, hidden_states, bandwidth_id, own_input=False):
            stage_calls.append((index, hidden_states.shape[1]))
            return super().stage(model, index, hidden_states, bandwidth_id, own_input)

        def frames(self, model, hidden_states):
            head_frames.append(hidden_states.shape[1])
            return super().frames(model, hidden_states)

    if model.config.is_codes_model:
        tensor = torch.randint(0, 1024, (8, 1, 120), generator=torch.Generator().manual_seed(9))
        inputs = {"codes": tensor}
    else:
        tensor = torch.randn(1, 100, 120, generator=torch.Generator().manual_seed(9))
        inputs = {"input_features": tensor}
    with torch.no_grad():
        full = model(**inputs, **kwargs).audio
        model.inference_implementation = Counting()
        decoder = VocosStreamingDecoder(model, **kwargs)
        streamed = [decoder.push(tensor[..., start : start + 5]) for start in range(0, 120, 5)]
        pushed_calls = list(stage_calls)
        streamed.append(decoder.flush())
    torch.testing.assert_close(torch.cat(streamed, dim=-1), full, rtol=0, atol=1e-5)
    assert sum(head_frames) == 120
    assert {index for index, _ in pushed_calls} == set(range(len(radii)))
    # While pushing, a stage's window is the 5 new frames and its own context; at the end it also takes the frames
    # each stage before it held back for their right context.
    assert all(frames <= 5 + 2 * radii[index] for index, frames in pushed_calls)
    for index, radius in enumerate(radii):
        assert sum(frames for i, frames in stage_calls if i == index) <= 120 + 24 * 2 * radius


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"chunk_size": 0}, ValueError, "`chunk_size` must be at least 1 frame, got 0"),
        ({"chunk_size": -5}, ValueError, "`chunk_size` must be at least 1 frame, got -5"),
        ({"chunk_size": 2.5}, TypeError, "`chunk_size` must be an integer"),
        ({"chunk_size": 16, "context_frames": 3}, ValueError, "`context_frames`=3 is too small.*at least 9 frames"),
        ({"chunk_size": 16, "context_frames": "all"}, TypeError, "`context_frames` must be an integer"),
        ({"chunk_size": 16, "bandwidth": 6.0}, ValueError, "`bandwidth`.*mel model"),
    ],
)
def test_bad_arguments_raise(kwargs, error, match):
    model = randomize_(VocosModel(VocosConfig(**SMALL_MEL)))
    with pytest.raises(error, match=match):
        model.decode_chunked(input_features=torch.randn(1, 100, 20), **kwargs)


def test_bad_stream_inputs_raise():
    model = randomize_(VocosEncodecModel(VocosEncodecConfig(**SMALL_ENCODEC)))
    with pytest.raises(ValueError, match="`bandwidth` is required"):
        VocosStreamingDecoder(model)
    decoder = VocosStreamingDecoder(model, bandwidth=1.5)
    with pytest.raises(
        ValueError,
        match=(
            r"^`chunk` \(codes of shape \(4, 1, 5\), pushed after 0 frames\): `codes` has 4 codebooks, but 1.5 kbps "
            r"uses 2"
        ),
    ):
        decoder.push(torch.zeros(4, 1, 5, dtype=torch.long))
    with pytest.raises(TypeError, match="`chunk` must be a torch.Tensor"):
        decoder.push([[0, 1]])
    decoder.push(torch.zeros(2, 1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="batch size 3, but this stream started with 1"):
        decoder.push(torch.zeros(2, 3, 5, dtype=torch.long))
    with pytest.raises(
        ValueError,
        match=r"^`chunk` \(codes of shape \(2, 1, 3\), pushed after 5 frames\): `codes` values must lie in \[0, 1024\)",
    ):
        decoder.push(torch.full((2, 1, 3), 1024))


def test_unpadded_sample_mask_is_a_view_without_memory(case):
    """Without padding, `forward` and `decode_chunked` return the mask as a broadcast view of one int32 1: it reads
    like a full mask (`batch_decode` trims nothing with it) but costs no memory (58 MB at 10 minutes otherwise)."""
    model, inputs, kwargs, full = case
    with torch.no_grad():
        chunked = model.decode_chunked(**inputs, **kwargs, chunk_size=64)
        as_tuple = model(**inputs, **kwargs, return_dict=False)
    for mask in (full.attention_mask, chunked.attention_mask, as_tuple[1]):
        assert mask.shape == full.audio.shape and mask.dtype == torch.int32
        assert mask.stride() == (0, 0) and mask.untyped_storage().nbytes() == 4
        assert torch.equal(mask, torch.ones_like(full.audio, dtype=torch.int32))
        assert mask.sum(dim=1).tolist() == [full.audio.shape[1]] * full.audio.shape[0]
    waveforms = VocosProcessor(VocosFeatureExtractor()).batch_decode(chunked)
    assert [len(waveform) for waveform in waveforms] == [full.audio.shape[1]] * full.audio.shape[0]
    writable = full.attention_mask.clone()
    writable[0, -5:] = 0
    assert writable.sum().item() == full.audio.numel() - 5


def test_the_decoder_names_a_wrong_model_and_float_codes():
    from conftest import model_for, randomize_, small_config

    with pytest.raises(TypeError, match=r"`model` must be a VocosModel .*got str"):
        VocosStreamingDecoder("a string")
    decoder = VocosStreamingDecoder(randomize_(model_for(small_config("encodec"))), bandwidth=3.0)
    with pytest.raises(ValueError, match=r"push EnCodec codes as an integer tensor"):
        decoder.push(torch.zeros(4, 1, 10))


@pytest.mark.parametrize("chunk_size", [0, -1])
def test_decode_chunked_refuses_a_chunk_size_below_one(chunk_size):
    from conftest import model_for, randomize_, small_config

    model = randomize_(model_for(small_config("mel")))
    with pytest.raises(ValueError, match=r"`chunk_size` must be at least 1 frame"):
        model.decode_chunked(torch.randn(1, 100, 10), chunk_size=chunk_size)
