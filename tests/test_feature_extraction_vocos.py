"""VocosFeatureExtractor: equal to an independent log-mel (librosa), ragged batches, input types, errors."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch
from conftest import speech_like
from frontends import RECIPES
from transformers import AutoFeatureExtractor

from hf_vocos import VocosConfig, VocosFeatureExtractor

# (our kwargs, the same settings spelled for librosa)
CONVENTIONS = {
    "original-center": (
        {},
        {
            "sr": 24000,
            "n_fft": 1024,
            "hop": 256,
            "win": 1024,
            "n_mels": 100,
            "htk": True,
            "norm": None,
            "fmin": 0.0,
            "fmax": None,
        },
    ),
    "original-same": (
        {"padding": "same"},
        {
            "sr": 24000,
            "n_fft": 1024,
            "hop": 256,
            "win": 1024,
            "n_mels": 100,
            "htk": True,
            "norm": None,
            "fmin": 0.0,
            "fmax": None,
        },
    ),
    # HiFi-GAN's front end: 22.05 kHz, 80 slaney mels with area normalisation, 0-8 kHz, "same" padding.
    "hifigan-22khz": (
        {
            "sampling_rate": 22050,
            "feature_size": 80,
            "f_max": 8000.0,
            "mel_scale": "slaney",
            "mel_norm": "slaney",
            "padding": "same",
        },
        {
            "sr": 22050,
            "n_fft": 1024,
            "hop": 256,
            "win": 1024,
            "n_mels": 80,
            "htk": False,
            "norm": "slaney",
            "fmin": 0.0,
            "fmax": 8000.0,
        },
    ),
    # A window shorter than the FFT, and a raised f_min.
    "short-window": (
        {
            "sampling_rate": 16000,
            "n_fft": 1024,
            "hop_length": 200,
            "win_length": 800,
            "feature_size": 64,
            "f_min": 55.0,
            "f_max": 7600.0,
        },
        {
            "sr": 16000,
            "n_fft": 1024,
            "hop": 200,
            "win": 800,
            "n_mels": 64,
            "htk": True,
            "norm": None,
            "fmin": 55.0,
            "fmax": 7600.0,
        },
    ),
}


def librosa_log_mel(audio: np.ndarray, spec: dict, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 log-mel from librosa: reflect-pad `pad` samples, uncentred STFT, magnitude, mel filters, log."""
    padded = np.pad(audio.astype(np.float64), (pad, pad), mode="reflect")
    magnitude = np.abs(
        librosa.stft(
            padded, n_fft=spec["n_fft"], hop_length=spec["hop"], win_length=spec["win"], window="hann", center=False
        )
    )
    filters = librosa.filters.mel(
        sr=spec["sr"],
        n_fft=spec["n_fft"],
        n_mels=spec["n_mels"],
        fmin=spec["fmin"],
        fmax=spec["fmax"],
        htk=spec["htk"],
        norm=spec["norm"],
    )
    mel = filters @ magnitude
    return mel, filters


@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_matches_librosa(name):
    ours, spec = CONVENTIONS[name]
    extractor = VocosFeatureExtractor(**ours)
    audio = speech_like(int(1.3 * spec["sr"]), spec["sr"], seed=3)
    features = extractor(audio, sampling_rate=spec["sr"], return_tensors="np")["input_features"][0]
    reference, filters = librosa_log_mel(audio, spec, extractor.edge_padding)

    assert features.shape == reference.shape == (spec["n_mels"], extractor.num_frames(len(audio)))
    np.testing.assert_allclose(extractor.mel_filters.T, filters, rtol=0, atol=1e-6)
    # Our STFT runs in float32, as the original's: relative to each frame's peak, the mel agrees to float32 rounding
    # (the same pipeline in float64 agrees with librosa to 1e-12). In the log domain that rounding is largest in
    # quiet, narrow bins, hence the looser bound there.
    mel = np.exp(features)
    significant = reference > 1e-7
    relative = (
        np.abs(mel - reference)[significant] / np.broadcast_to(reference.max(axis=0), reference.shape)[significant]
    )
    assert relative.max() < 1e-5
    np.testing.assert_allclose(features, np.log(np.maximum(reference, 1e-7)), rtol=0, atol=5e-3)


def test_frame_counts_follow_padding():
    center = VocosFeatureExtractor()
    same = VocosFeatureExtractor(padding="same")
    for length in (513, 1000, 24000, 24001):
        assert center.num_frames(length) == 1 + length // 256
        assert (
            center(np.zeros(length, np.float32), sampling_rate=24000)["input_features"].shape[-1] == 1 + length // 256
        )
        assert (
            same(np.zeros(length, np.float32), sampling_rate=24000)["input_features"].shape[-1]
            == (length + 768 - 1024) // 256 + 1
        )


def test_ragged_batch_items_equal_solo():
    extractor = VocosFeatureExtractor()
    clips = [speech_like(n, seed=i) for i, n in enumerate((24000, 7001, 513, 15360))]
    batch = extractor(clips, sampling_rate=24000, return_tensors="pt")
    frames = [extractor.num_frames(len(clip)) for clip in clips]
    assert batch["input_features"].shape == (4, 100, max(frames))
    assert batch["attention_mask"].dtype == torch.int32
    assert batch["attention_mask"].sum(dim=1).tolist() == frames
    for index, clip in enumerate(clips):
        solo = extractor(clip, sampling_rate=24000, return_tensors="pt")["input_features"][0]
        torch.testing.assert_close(batch["input_features"][index, :, : frames[index]], solo, rtol=0, atol=1e-6)
        padded = batch["input_features"][index, :, frames[index] :]
        assert torch.all(padded == extractor.padding_value)
    assert extractor.padding_value == pytest.approx(np.log(1e-7))


def test_pad_to_multiple_of_and_no_mask():
    extractor = VocosFeatureExtractor()
    out = extractor([np.zeros(2000, np.float32)], sampling_rate=24000, pad_to_multiple_of=16, return_tensors="np")
    assert out["input_features"].shape == (1, 100, 16)
    assert out["attention_mask"].sum() == extractor.num_frames(2000)
    assert "attention_mask" not in extractor(
        np.zeros(2000, np.float32), sampling_rate=24000, return_attention_mask=False
    )


def test_input_types_agree(speech):
    extractor = VocosFeatureExtractor()
    expected = extractor(speech, sampling_rate=24000)["input_features"]
    assert isinstance(expected, np.ndarray) and expected.dtype == np.float32
    for variant in (
        torch.from_numpy(speech),
        speech.tolist(),
        speech.astype(np.float64),
        speech[None],
        [speech],
        torch.from_numpy(speech)[None].double(),
    ):
        np.testing.assert_array_equal(extractor(variant, sampling_rate=24000)["input_features"], expected)
    as_tensors = extractor(speech, sampling_rate=24000, return_tensors="pt")
    assert isinstance(as_tensors["input_features"], torch.Tensor)


def test_integer_pcm_is_scaled(speech):
    extractor = VocosFeatureExtractor()
    pcm16 = np.round(speech * 32767).astype(np.int16)
    expected = extractor(pcm16.astype(np.float32) / 32768, sampling_rate=24000)["input_features"]
    np.testing.assert_allclose(extractor(pcm16, sampling_rate=24000)["input_features"], expected, rtol=0, atol=1e-6)
    pcm32 = pcm16.astype(np.int32) * 65536
    np.testing.assert_allclose(extractor(pcm32, sampling_rate=24000)["input_features"], expected, rtol=0, atol=1e-6)
    pcm8 = (np.round(speech * 127) + 128).astype(np.uint8)
    np.testing.assert_allclose(
        extractor(pcm8, sampling_rate=24000)["input_features"],
        extractor((pcm8.astype(np.float32) - 128) / 128, sampling_rate=24000)["input_features"],
        rtol=0,
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "audio, error, match",
    [
        (np.zeros((24000, 2), np.float32), ValueError, r"raw_speech.*\(samples, channels\).*mono"),
        ([np.zeros((2, 24000), np.float32)], ValueError, r"raw_speech\[0\].*mono"),
        (np.zeros((1, 2, 24000), np.float32), ValueError, r"raw_speech.*mono"),
        (np.array([0.0, np.nan] * 2000, np.float32), ValueError, r"raw_speech.*NaN or infinite"),
        (
            [np.zeros(3000, np.float32), np.full(3000, np.inf, np.float32)],
            ValueError,
            r"raw_speech\[1\].*NaN or infinite",
        ),
        (np.zeros(0, np.float32), ValueError, r"raw_speech.*empty"),
        ([], ValueError, r"raw_speech.*empty"),
        (np.zeros(512, np.float32), ValueError, r"raw_speech.*512 samples.*at least 513"),
        (np.arange(4000, dtype=np.int64), TypeError, r"raw_speech.*int64.*ambiguous"),
        (np.zeros(4000, bool), TypeError, r"raw_speech.*bool"),
        (torch.zeros(4000, dtype=torch.complex64), TypeError, r"raw_speech.*real-valued"),
        ("audio.wav", TypeError, r"raw_speech.*str"),
        ([np.zeros(4000, np.float32), "x"], TypeError, r"raw_speech\[1\].*str"),
    ],
)
def test_bad_audio_raises(audio, error, match):
    with pytest.raises(error, match=match):
        VocosFeatureExtractor()(audio, sampling_rate=24000)


def test_wrong_sampling_rate_raises(speech):
    with pytest.raises(ValueError, match=r"sampling_rate.*16000.*24000"):
        VocosFeatureExtractor()(speech, sampling_rate=16000)


def test_short_audio_minimum_depends_on_padding():
    same = VocosFeatureExtractor(padding="same")
    assert same.min_num_samples == 385
    assert same(np.zeros(385, np.float32), sampling_rate=24000)["input_features"].shape == (1, 100, 1)
    with pytest.raises(ValueError, match="at least 385"):
        same(np.zeros(384, np.float32), sampling_rate=24000)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"padding": "valid"}, "padding"),
        ({"num_mel_bins": 80}, "num_mel_bins"),
        ({"mel_scale": "bark"}, "mel_scale"),
        ({"mel_norm": "l2"}, "mel_norm"),
        ({"f_max": 13000.0}, "f_max"),
        ({"win_length": 2048}, "win_length"),
        ({"hop_length": 0}, "hop_length"),
        ({"log_floor": 0.0}, "log_floor"),
    ],
)
def test_bad_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VocosFeatureExtractor(**kwargs)


def test_bad_device_raises(speech):
    with pytest.raises(ValueError, match=r"`device` 'gpu': not a torch device"):
        VocosFeatureExtractor()(speech, sampling_rate=24000, device="gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch that cannot use CUDA")
def test_unusable_device_raises_before_torch_does(speech):
    """'cuda' on a CPU build is a valid device name; torch would fail with an AssertionError at the first
    allocation. The extractor names the argument instead."""
    with pytest.raises(ValueError, match=r"`device` 'cuda:1': this torch .* cannot use it here \(.*CUDA"):
        VocosFeatureExtractor()(speech, sampling_rate=24000, device="cuda:1")


def test_unknown_call_argument_raises(speech):
    with pytest.raises(TypeError, match="truncation"):
        VocosFeatureExtractor()(speech, sampling_rate=24000, truncation=True)


def test_save_load_round_trip_and_auto(tmp_path, speech):
    extractor = VocosFeatureExtractor(**CONVENTIONS["hifigan-22khz"][0])
    extractor.save_pretrained(tmp_path)
    saved = (tmp_path / "preprocessor_config.json").read_text()
    assert '"mel_filters"' not in saved and '"window"' not in saved
    reloaded = VocosFeatureExtractor.from_pretrained(tmp_path)
    assert reloaded.to_dict() == extractor.to_dict()
    audio = speech_like(22050, 22050)
    np.testing.assert_array_equal(
        reloaded(audio, sampling_rate=22050)["input_features"], extractor(audio, sampling_rate=22050)["input_features"]
    )
    VocosConfig().save_pretrained(tmp_path)
    assert type(AutoFeatureExtractor.from_pretrained(tmp_path)) is VocosFeatureExtractor


@pytest.mark.parametrize("padding", ["center", "same"])
@pytest.mark.parametrize("block_frames", [1, 7, 64])
def test_blocked_stft_equals_one_block(monkeypatch, padding, block_frames):
    """Clips longer than one STFT block (here forced small) get the features of a single whole-clip transform, with
    the reflect padding in the first and last blocks only; ragged batches too."""
    import hf_vocos.feature_extraction_vocos as module

    extractor = VocosFeatureExtractor(padding=padding)
    clips = [speech_like(n, seed=i) for i, n in enumerate((24000, 7001, 1000))]
    whole = extractor(clips, sampling_rate=24000, return_tensors="pt")
    monkeypatch.setattr(module, "_FRAMES_PER_BLOCK", block_frames)
    blocked = extractor(clips, sampling_rate=24000, return_tensors="pt")
    torch.testing.assert_close(blocked["input_features"], whole["input_features"], rtol=0, atol=1e-5)
    torch.testing.assert_close(blocked["attention_mask"], whole["attention_mask"], rtol=0, atol=0)


def test_long_clip_matches_librosa():
    """A minute of audio spans several STFT blocks; each frame still matches the independent librosa log-mel."""
    ours, spec = CONVENTIONS["original-center"]
    extractor = VocosFeatureExtractor(**ours)
    audio = np.tile(speech_like(24000, seed=5), 60) * np.linspace(0.2, 1.0, 60 * 24000, dtype=np.float32)
    features = extractor(audio, sampling_rate=24000, return_tensors="np")["input_features"][0]
    reference, _ = librosa_log_mel(audio, spec, extractor.edge_padding)
    assert features.shape == reference.shape == (100, 60 * 24000 // 256 + 1)
    np.testing.assert_allclose(features, np.log(np.maximum(reference, 1e-7)), rtol=0, atol=5e-3)


def test_fresh_buffers_equal_reused_buffers(speech):
    """The path for accelerators (buffers allocated per call, torch's complex abs) gives the CPU path's features."""
    extractor = VocosFeatureExtractor()
    clips = [speech, speech[: len(speech) // 3]]
    counts = [extractor.num_frames(len(clip)) for clip in clips]
    reused = extractor._log_mel(clips, counts, max(counts), torch.device("cpu"), reuse_buffers=True)
    fresh = extractor._log_mel(clips, counts, max(counts), torch.device("cpu"), reuse_buffers=False)
    torch.testing.assert_close(fresh, reused, rtol=0, atol=1e-5)


def test_device_copies_of_the_stft_constants_are_made_once_and_not_saved(tmp_path):
    """An accelerator gets the window and filter blocks copied once per device (the meta device stands in for one
    here), CPU uses the originals, and the cache never reaches the saved preprocessor_config.json."""
    extractor = VocosFeatureExtractor()
    assert extractor._stft_constants(torch.device("cpu")) == (extractor._fft_window, extractor._mel_blocks)
    window, blocks = extractor._stft_constants(torch.device("meta"))
    assert window.device.type == "meta" and all(weights.device.type == "meta" for _, _, weights in blocks)
    assert [(first, last, weights.shape) for first, last, weights in blocks] == [
        (first, last, weights.shape) for first, last, weights in extractor._mel_blocks
    ]
    again = extractor._stft_constants(torch.device("meta"))
    assert again[0] is window and all(a is b for (_, _, a), (_, _, b) in zip(again[1], blocks))
    extractor.save_pretrained(tmp_path)
    saved = (tmp_path / "preprocessor_config.json").read_text()
    assert "_device_constants" not in saved and "meta" not in saved
    assert VocosFeatureExtractor.from_pretrained(tmp_path)._device_constants == {}


def test_accelerator_path_keeps_every_output_on_the_device(speech):
    """`device=` end to end without a GPU: on the meta device every op runs for its shapes and devices only, so a
    tensor left on the CPU (a mask, the window, a filter block) would fail here as it would on CUDA."""
    extractor = VocosFeatureExtractor()
    clips = [speech, speech[: len(speech) // 3]]
    output = extractor(clips, sampling_rate=24000, return_tensors="pt", device="meta")
    frames = extractor.num_frames(len(speech))
    assert output["input_features"].shape == (2, 100, frames) and output["input_features"].dtype == torch.float32
    assert output["attention_mask"].shape == (2, frames) and output["attention_mask"].dtype == torch.int32
    assert {tensor.device.type for tensor in output.values()} == {"meta"}
    assert list(extractor._device_constants) == [torch.device("meta")]


def test_outputs_do_not_alias_the_reused_buffers(speech):
    extractor = VocosFeatureExtractor()
    first = extractor(speech, sampling_rate=24000, return_tensors="pt")["input_features"]
    kept = first.clone()
    extractor(speech[::-1].copy(), sampling_rate=24000, return_tensors="pt")
    torch.testing.assert_close(first, kept, rtol=0, atol=0)


def test_threads_calling_at_once_get_their_own_features():
    """The reused STFT buffers are per thread: concurrent calls (e.g. a threaded data loader) do not mix."""
    from concurrent.futures import ThreadPoolExecutor

    extractor = VocosFeatureExtractor()
    clips = [speech_like(24000 + 997 * i, seed=i) for i in range(8)]
    serial = [extractor(clip, sampling_rate=24000)["input_features"] for clip in clips]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(3):
            concurrent = list(pool.map(lambda clip: extractor(clip, sampling_rate=24000)["input_features"], clips))
            for got, expected in zip(concurrent, serial):
                np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("start, stop", [(-512, 700), (-3, 10), (0, 1000), (400, 1100), (-900, 1900), (995, 1004)])
def test_reflect_segment_equals_numpy_pad(start, stop):
    from hf_vocos.feature_extraction_vocos import _reflect_segment

    clip = np.arange(1000, dtype=np.float32)
    padded = np.pad(clip, 1000 - 1, mode="reflect")
    out = np.empty(stop - start, np.float32)
    _reflect_segment(clip, start, out)
    np.testing.assert_array_equal(out, padded[start + 999 : stop + 999])


@pytest.mark.parametrize("padding", ["center", "same"])
@pytest.mark.parametrize("length", [None, 700, 1024, 1300, 2047, 5000])
def test_windowed_frames_equal_reflect_padded_framing(padding, length):
    """Frames inside the clip are read in place and only those reaching into the padding are copied: every frame,
    whichever block it starts, equals the plain reflect-pad-then-frame computation."""
    extractor = VocosFeatureExtractor(padding=padding)
    length = length or extractor.min_num_samples  # None: the shortest clip allowed, all frames in the padding
    clip = speech_like(length, seed=length)
    pad, hop, n_fft = extractor.edge_padding, extractor.hop_length, extractor.n_fft
    count = extractor.num_frames(length)
    expected = (
        np.lib.stride_tricks.sliding_window_view(np.pad(clip, pad, mode="reflect"), n_fft)[::hop][:count]
        * extractor.window
    )
    for first in range(count):
        for block in sorted({1, 2, 3, count - first}):
            block = min(block, count - first)
            out = torch.full((block, n_fft), np.nan)
            extractor._windowed_frames(clip, torch.from_numpy(clip), first, out, extractor._fft_window)
            np.testing.assert_array_equal(out.numpy(), expected[first : first + block])


def test_read_only_and_reversed_clips_are_used_without_warnings(speech, recwarn):
    """Clips torch cannot share memory with (read-only, negative strides) are copied, silently, and give the
    features of a plain copy."""
    extractor = VocosFeatureExtractor()
    read_only = speech.copy()
    read_only.flags.writeable = False
    reversed_view = speech[::-1]
    got = extractor([read_only, reversed_view, speech[::2]], sampling_rate=24000)["input_features"]
    expected = extractor([speech.copy(), reversed_view.copy(), speech[::2].copy()], sampling_rate=24000)[
        "input_features"
    ]
    np.testing.assert_array_equal(got, expected)
    assert not [warning for warning in recwarn if "writable" in str(warning.message)]


@pytest.mark.parametrize("padding_key", ["padding", "stft_padding"])
def test_saved_settings_load_in_the_hubs_names_and_the_older_ones(tmp_path, padding_key):
    """The Hub format's preprocessor_config.json names the STFT padding `padding` (hf_vocos once wrote
    `stft_padding`): a 22.05 kHz "same" extractor must come back "same", frame count included."""
    import json

    fields = {
        "feature_extractor_type": "VocosFeatureExtractor",
        "feature_size": 80,
        "num_mel_bins": 80,
        "sampling_rate": 22050,
        "n_fft": 1024,
        "hop_length": 256,
        "win_length": 1024,
        padding_key: "same",
        "padding_side": "right",
        "padding_value": 0.0,
        "return_attention_mask": True,
        "f_max": 8000.0,
    }
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(fields))
    extractor = VocosFeatureExtractor.from_pretrained(tmp_path)
    assert extractor.padding == "same" and extractor.feature_size == 80
    features = extractor(speech_like(22050, 22050), sampling_rate=22050)["input_features"]
    assert features.shape == (1, 80, 22050 // 256 + 1 - 1)  # "same": T // hop frames ("center" would give one more)
    saved = extractor.to_dict()
    assert saved["padding"] == "same" and "stft_padding" not in saved and saved["num_mel_bins"] == 80


# ---------------------------------------------------------------------------------------------------------------------
# other front-ends' mels (docs/tts-frontends.md)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipes_reproduce_the_front_ends_own_mel(name):
    """The documented VocosFeatureExtractor arguments give each TTS front-end's own mel (re-implemented from its
    code's parameters in tests/frontends.py) to float32 rounding, silence and ragged batches included."""
    frontend, arguments = RECIPES[name]
    extractor = VocosFeatureExtractor(**arguments)
    rate = extractor.sampling_rate
    clips = [
        np.concatenate([speech_like(rate, rate, seed=4), np.zeros(rate // 4, np.float32)]),
        speech_like(rate // 2, rate, seed=5),
    ]
    batch = extractor(clips, sampling_rate=rate)
    for index, clip in enumerate(clips):
        theirs = frontend(torch.from_numpy(clip)[None])[0].numpy()
        frames = int(batch["attention_mask"][index].sum())
        assert frames == theirs.shape[-1]
        # (F5-TTS's torchaudio filters are computed in float32: up to 5e-5 in the log; the others share the filters)
        np.testing.assert_allclose(batch["input_features"][index, :, :frames], theirs, rtol=0, atol=1e-4)
    assert np.all(batch["input_features"][1, :, frames:] == np.float32(np.log(arguments["log_floor"])))


def test_power_and_magnitude_epsilon():
    audio = speech_like(24000, 24000, seed=6)
    plain = VocosFeatureExtractor()(audio, sampling_rate=24000)["input_features"]
    power = VocosFeatureExtractor(power=2, log_floor=1e-14)(audio, sampling_rate=24000)["input_features"]
    # mel of |X|^2 >= (mel of |X|)^2 / (sum of the filter) by Cauchy-Schwarz; equal in shape, far from equal in value
    assert power.shape == plain.shape and np.mean(power) < np.mean(plain)
    epsilon = VocosFeatureExtractor(magnitude_epsilon=1e-2)(audio, sampling_rate=24000)["input_features"]
    assert np.all(epsilon >= plain - 1e-6) and np.any(epsilon > plain + 1e-3)
    # a saved extractor keeps them
    restored = VocosFeatureExtractor.from_dict(VocosFeatureExtractor(power=2, magnitude_epsilon=1e-9).to_dict())
    assert (restored.power, restored.magnitude_epsilon) == (2.0, 1e-9)
    for arguments, message in (
        ({"power": 3}, r"`power` must be 1 \(magnitude\) or 2 \(power spectrum\), got 3"),
        ({"power": True}, "`power` must be 1"),
        ({"magnitude_epsilon": -1.0}, r"`magnitude_epsilon` must be a number in \[0, 1\), got -1.0"),
        ({"magnitude_epsilon": "1e-9"}, "`magnitude_epsilon` must be a number"),
    ):
        with pytest.raises(ValueError, match=message):
            VocosFeatureExtractor(**arguments)


def test_training_mel_follows_power_and_epsilon():
    from hf_vocos.training.losses import LogMelSpectrogram

    for arguments in ({"power": 2}, {"magnitude_epsilon": 1e-9, "log_floor": 1e-5}):
        extractor = VocosFeatureExtractor(**arguments)
        audio = speech_like(24000, 24000, seed=7)
        expected = extractor(audio, sampling_rate=24000)["input_features"]
        got = LogMelSpectrogram(extractor)(torch.from_numpy(audio)[None]).numpy()
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_from_pretrained_arguments_go_through_the_constructor(tmp_path):
    VocosFeatureExtractor().save_pretrained(tmp_path)
    extractor = VocosFeatureExtractor.from_pretrained(tmp_path, n_fft=2048, hop_length=512, feature_size=80)
    assert extractor.mel_filters.shape == (1025, 80) and extractor.num_mel_bins == 80
    extractor = VocosFeatureExtractor.from_pretrained(tmp_path, log_floor=1e-5)
    assert extractor.padding_value == pytest.approx(np.log(1e-5))
    with pytest.raises(ValueError, match="`log_floor` must be a positive number"):
        VocosFeatureExtractor.from_pretrained(tmp_path, log_floor=-1)


def test_an_empty_batch_and_overflowing_audio_are_named(tmp_path):
    """Audio at 3e38 is finite but its spectra are not: refused, naming the clip, instead of infinite features."""
    extractor = VocosFeatureExtractor()
    with pytest.raises(ValueError, match=r"`raw_speech` is a batch of 0 clips"):
        extractor(np.zeros((0, 24000), dtype=np.float32), sampling_rate=24000)
    loud = np.full(24000, 3e38, dtype=np.float32)
    with pytest.raises(
        ValueError, match=r"`raw_speech\[1\]`: its log-mel features are not finite .*peak magnitude is 3e\+38"
    ):
        extractor([speech_like(24000), loud], sampling_rate=24000)
    with pytest.raises(ValueError, match=r"`save_directory` '.*' is a file"):
        (tmp_path / "file").write_text("")
        extractor.save_pretrained(tmp_path / "file")
