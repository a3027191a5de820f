"""The model + processor pair behind the command line and dataset tools (vocoder): ragged batches give each clip its
solo output, long items stream with the same audio, EnCodec codes, the dtype choice, bad options named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import save_small_checkpoint, speech_like

from hf_vocos import VocosModel, VocosProcessor
from hf_vocos.capabilities import native_bfloat16_available
from hf_vocos.vocoder import Vocoder, each_or_alone, resolve_dtype


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("vocoder")
    return save_small_checkpoint(root / "mel", "mel", seed=31), save_small_checkpoint(root / "encodec", "encodec", 32)


def _solo(folder, clip, **kwargs) -> np.ndarray:
    model, processor = VocosModel.from_pretrained(folder).eval(), VocosProcessor.from_pretrained(folder)
    with torch.no_grad():
        return model(**processor(audio=clip, sampling_rate=24000, **kwargs)).audio[0].numpy()


def test_resynthesize_gives_each_clip_its_solo_output(checkpoints):
    clips = [speech_like(n, seed=n) for n in (24000, 5000, 13001)]
    vocoder = Vocoder(str(checkpoints[0]), batch_size=2)
    outputs = vocoder.resynthesize(clips)
    for clip, output in zip(clips, outputs):
        expected = _solo(checkpoints[0], clip)
        assert output.shape == expected.shape
        np.testing.assert_allclose(output, expected, rtol=0, atol=1e-5)


def test_long_items_stream_with_the_batch_audio(checkpoints):
    """An item longer than `long_seconds` is decoded chunk by chunk through the streaming decoder, telling the
    progress callback each chunk's frames: the audio of decoding it whole."""
    features = Vocoder(str(checkpoints[0])).analyze([speech_like(3 * 24000, seed=5)])
    whole = Vocoder(str(checkpoints[0])).decode(features)[0]
    seen = []
    streamed = Vocoder(str(checkpoints[0]), long_seconds=1.0, chunk_frames=50).decode(
        features, progress=lambda total: seen.append(total) or seen.append
    )[0]
    assert seen[0] == features[0].shape[-1] == sum(seen[1:]) and len(seen) > 2
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, rtol=0, atol=1e-5)


def test_encodec_codes_in_and_out(checkpoints):
    clips = [speech_like(12000, seed=6), speech_like(7000, seed=7)]
    vocoder = Vocoder(str(checkpoints[1]), bandwidth=3.0)
    codes = vocoder.analyze(clips)
    assert [c.shape for c in codes] == [(4, 38), (4, 22)] and codes[0].dtype == np.int64
    model = VocosModel.from_pretrained(checkpoints[1]).eval()
    with torch.no_grad():
        expected = model(codes=torch.from_numpy(codes[1]), bandwidth=3.0).audio[0].numpy()
    np.testing.assert_allclose(vocoder.decode(codes)[1], expected, rtol=0, atol=1e-5)


def test_prepare_mixes_to_mono_and_resamples(checkpoints):
    vocoder = Vocoder(str(checkpoints[0]))
    stereo = np.stack([speech_like(44100, 44100, seed=8)] * 2, axis=1)
    prepared = vocoder.prepare(stereo, 44100, "stereo.wav")
    assert prepared.shape == (24000,) and prepared.dtype == np.float32


def test_resolve_dtype():
    assert [resolve_dtype(name) for name in ("float32", "bfloat16", "float16")] == [
        torch.float32,
        torch.bfloat16,
        torch.float16,
    ]
    assert resolve_dtype("auto", "cpu") == (torch.bfloat16 if native_bfloat16_available() else torch.float32)
    assert resolve_dtype("auto", "meta") == torch.float32
    with pytest.raises(ValueError, match=r"--dtype 'float64': expected one of \['float32', 'bfloat16', 'float16'"):
        resolve_dtype("float64")


def test_dtype_auto_loads_the_native_dtype(checkpoints):
    """`auto` is bfloat16 where the CPU computes it natively and float32 elsewhere; either way it decodes."""
    vocoder = Vocoder(str(checkpoints[0]), dtype="auto")
    assert vocoder.model.dtype == resolve_dtype("auto", "cpu")
    audio = vocoder.resynthesize([speech_like(6000, seed=9)])[0]
    assert audio.dtype == np.float32 and np.isfinite(audio).all() and np.abs(audio).max() > 0


@pytest.mark.parametrize(
    "variant, kwargs, match",
    [
        ("mel", {"dtype": "float64"}, r"--dtype 'float64': expected one of"),
        ("mel", {"batch_size": 0}, r"--batch-size 0: expected a whole number >= 1"),
        ("mel", {"long_seconds": float("nan")}, r"--long-seconds nan: expected a number of seconds >= 0"),
        ("mel", {"bandwidth": 6.0}, r"`bandwidth` was given, but this is a mel model"),
        ("encodec", {}, r"--bandwidth is required for this EnCodec model: one of \[1.5, 3.0, 6.0, 12.0\] kbps"),
        ("encodec", {"bandwidth": 5.0}, r"5.0"),
    ],
)
def test_bad_options_are_named(checkpoints, variant, kwargs, match):
    with pytest.raises(ValueError, match=match):
        Vocoder(str(checkpoints[0 if variant == "mel" else 1]), **kwargs)


def test_features_must_be_floating_point(checkpoints):
    with pytest.raises(TypeError, match="features must be floating point, got int64"):
        Vocoder(str(checkpoints[0])).decode([np.zeros((100, 20), np.int64)])


def test_each_or_alone_singles_out_the_failing_items():
    calls = []

    def compute(items):
        calls.append(list(items))
        if any(item < 0 for item in items):
            raise ValueError(f"negative: {[item for item in items if item < 0]}")
        return [item * 10 for item in items]

    assert each_or_alone(compute, [1, 2]) == [(10, None), (20, None)]
    results = each_or_alone(compute, [1, -2, 3])
    assert [result for result, _ in results] == [10, None, 30]
    assert results[1][1] is not None and "negative: [-2]" in str(results[1][1])
    assert calls[-4:] == [[1, -2, 3], [1], [-2], [3]]  # the group once, then each item alone

    def broken(items):
        raise RuntimeError("broken")

    with pytest.raises(RuntimeError):  # only the errors a bad item raises are caught, not a broken model's
        each_or_alone(broken, [1, 2])


def test_a_folder_whose_processor_and_model_disagree_is_refused(tmp_path):
    """A processor saved beside another model (other rate, hop or mel bins) would decode garbage at the wrong speed."""
    import json

    folder = save_small_checkpoint(tmp_path / "mel")
    saved = json.loads((folder / "preprocessor_config.json").read_text())
    for changes, message in (
        ({"sampling_rate": 22050, "f_max": 11025.0}, r"sampling rate 22050 \(processor\) vs 24000 \(model\)"),
        ({"hop_length": 128}, r"hop length 128 \(processor\) vs 256 \(model\)"),
        ({"feature_size": 80, "num_mel_bins": 80}, r"mel bins 80 \(processor\) vs \d+ \(model\)"),
    ):
        (folder / "preprocessor_config.json").write_text(json.dumps({**saved, **changes}))
        with pytest.raises(ValueError, match=r"mel: the processor and the model do not fit each other: " + message):
            Vocoder(str(folder))
        # Loading the two separately: the processor's from_pretrained reads the config.json beside it.
        with pytest.raises(ValueError, match=r"mel: the processor and the model do not fit each other: " + message):
            VocosProcessor.from_pretrained(folder)
    # A processor alone (no config.json beside it) has nothing to disagree with.
    (folder / "config.json").unlink()
    assert VocosProcessor.from_pretrained(folder).feature_extractor.feature_size == 80


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"chunk_frames": 0}, r"--chunk-frames 0: expected a whole number >= 1"),
        ({"chunk_frames": 2.5}, r"--chunk-frames 2.5: expected a whole number >= 1"),
        ({"batch_size": 0}, r"--batch-size 0: expected a whole number >= 1"),
        ({"long_seconds": float("nan")}, r"--long-seconds nan: expected a number of seconds >= 0"),
        ({"long_seconds": "60"}, r"--long-seconds '60': expected a number of seconds >= 0"),
    ],
)
def test_every_size_argument_is_checked(checkpoints, kwargs, message):
    """chunk_frames=0 used to be accepted and then loop forever on a long item."""
    with pytest.raises(ValueError, match=message):
        Vocoder(str(checkpoints[0]), **kwargs)
