"""Long files from file to file (file_streaming): the features of audio given in blocks, the CLI's streamed resynth,
analyze, synthesize and decode-codes against the in-memory path (bit for bit), memory that does not grow with the
length, failures mid-stream that leave nothing, and interrupted runs (SIGTERM, SIGINT) that leave no temporary
file and say so in their exit status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import save_small_checkpoint, speech_like

from hf_vocos import VocosFeatureExtractor
from hf_vocos.audio_io import atomic_path, remove_temporaries
from hf_vocos.file_streaming import NpyColumns, read_audio_blocks, write_audio_blocks, write_npy_columns
from hf_vocos.vocoder import Vocoder

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Small mel and EnCodec models and a 25 s stereo 44.1 kHz flac: three reads of the file, three blocks of
    features, resampling and mixing on the way."""
    root = tmp_path_factory.mktemp("streaming")
    save_small_checkpoint(root / "mel", "mel", seed=41)
    save_small_checkpoint(root / "encodec", "encodec", seed=42)
    clip = speech_like(25 * 44100 + 123, 44100, seed=5)
    soundfile.write(root / "long.flac", np.stack([clip, 0.4 * clip[::-1]], axis=1), 44100)
    return root


def hf_vocos(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "hf_vocos", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=ENV)


def in_memory(folder: Path, path: Path, **kwargs) -> tuple[Vocoder, np.ndarray]:
    """The Python API's path: the whole file read, prepared, and handed over at once (long items stream from memory
    there, in the same chunks)."""
    vocoder = Vocoder(str(folder), long_seconds=1.0, **kwargs)
    audio, rate = soundfile.read(path, dtype="float32")
    return vocoder, vocoder.prepare(audio, rate)


def no_leftovers(folder: Path) -> bool:
    return not any(".partial" in path.name for path in folder.rglob("*"))


@pytest.mark.parametrize(
    "settings", [{}, {"padding": "same"}, {"power": 2, "magnitude_epsilon": 1e-9}, {"n_fft": 2048, "hop_length": 512}]
)
def test_features_of_audio_in_blocks_equal_the_whole_clip_bit_for_bit(settings):
    extractor = VocosFeatureExtractor(**settings)
    for length in (3000, 2048 * 256 + 777, 3 * 1024 * 256 - 256):  # one short block; 2-3 blocks, edges at the end
        clip = speech_like(length, seed=length)
        whole = extractor(clip, sampling_rate=24000)["input_features"][0]
        for size in (1001, 65536, length):
            blocks = list(extractor.stream(clip[start : start + size] for start in range(0, length, size)))
            assert all(block.shape[0] == extractor.feature_size for block in blocks)
            assert np.array_equal(np.concatenate(blocks, axis=1), whole), (settings, length, size)


def test_feature_stream_refuses_bad_blocks():
    extractor = VocosFeatureExtractor()
    with pytest.raises(ValueError, match="hold 100 samples in all.*at least 513 samples"):
        list(extractor.stream([np.zeros(100, np.float32)]))
    bad = np.zeros(1000, np.float32)
    bad[10] = np.nan
    with pytest.raises(ValueError, match=r"`audio_blocks\[1\]` \(after 1000 samples\) contains NaN"):
        list(extractor.stream([np.zeros(1000, np.float32), bad]))
    with pytest.raises(ValueError, match=r"`audio_blocks\[0\]` must be 1-D mono samples, got shape \(2, 10\)"):
        list(extractor.stream([np.zeros((2, 10), np.float32)]))


def test_resynth_analyze_synthesize_from_file_to_file_equal_the_in_memory_path(workspace, tmp_path):
    source = workspace / "long.flac"
    vocoder, audio = in_memory(workspace / "mel", source)
    features = vocoder.analyze([audio])[0]
    expected = vocoder.decode([features])[0]
    options = ["--model", workspace / "mel", "--long-seconds", "1"]

    result = hf_vocos("resynth", source, "-o", tmp_path / "resynth.flac", "--subtype", "FLOAT", *options)
    assert (
        result.returncode == 1
        and "--subtype FLOAT: FLAC files cannot hold it (they take PCM_S8, PCM_16, PCM_24)" in result.stderr
    )
    result = hf_vocos("resynth", source, "-o", tmp_path / "resynth.wav", *options)
    assert result.returncode == 0, result.stderr
    assert "2 channels mixed to mono" in result.stderr and "resampled 44100 Hz -> 24000 Hz" in result.stderr
    resynthesized, rate = soundfile.read(tmp_path / "resynth.wav", dtype="float32")
    assert rate == 24000 and np.array_equal(resynthesized, expected)

    assert hf_vocos("analyze", source, "-o", tmp_path / "features.npy", *options).returncode == 0
    analyzed = np.load(tmp_path / "features.npy")
    assert analyzed.dtype == np.float32 and np.array_equal(analyzed, features)

    np.save(tmp_path / "c_order.npy", features[None])  # (1, mels, frames), C order
    for name in ("features", "c_order"):
        result = hf_vocos("synthesize", tmp_path / f"{name}.npy", "-o", tmp_path / f"{name}.wav", *options)
        assert result.returncode == 0, result.stderr
        assert np.array_equal(soundfile.read(tmp_path / f"{name}.wav", dtype="float32")[0], expected)
    assert no_leftovers(tmp_path)


def test_decode_codes_from_file_to_file_equals_the_in_memory_path(workspace, tmp_path):
    vocoder, audio = in_memory(workspace / "encodec", workspace / "long.flac", bandwidth=6.0)
    codes = vocoder.analyze([audio])[0]
    np.save(tmp_path / "codes.npy", codes[:, None].astype(np.int32))  # (num_quantizers, 1, frames), int32
    result = hf_vocos(
        "decode-codes", tmp_path / "codes.npy", "-o", tmp_path, "--model", workspace / "encodec", "--bandwidth", "6",
        "--long-seconds", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    decoded = soundfile.read(tmp_path / "codes.wav", dtype="float32")[0]
    assert np.array_equal(decoded, vocoder.decode([codes])[0])


def test_a_bad_block_fails_that_file_alone_and_leaves_nothing(workspace, tmp_path):
    features = np.full((100, 3000), -5.0, np.float32)
    features[7, 2500] = np.inf
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "bad.npy", features)
    np.save(tmp_path / "in" / "good.npy", features[:, :2000])
    with open(tmp_path / "in" / "truncated.npy", "wb") as handle:
        np.save(handle, features[:, :2000])
    with open(tmp_path / "in" / "truncated.npy", "r+b") as handle:
        handle.truncate(300_000)
    result = hf_vocos("synthesize", tmp_path / "in", "-o", tmp_path / "out", "--model", workspace / "mel",
                      "--long-seconds", "1")  # fmt: skip
    assert result.returncode == 1
    errors = sorted(line for line in result.stderr.splitlines() if line.startswith("error:"))
    assert len(errors) == 2, result.stderr
    assert (
        "bad.npy -> " in errors[0]
        and "bad.wav: features contain NaN or infinite values (in frames 0-2999)" in errors[0]
    )
    assert "truncated.wav: the file ends early" in errors[1]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["good.wav"]


def test_npy_columns_read_both_orders_and_write_fortran_order(tmp_path):
    array = np.arange(7 * 10_000, dtype=np.float64).reshape(7, 10_000)
    np.save(tmp_path / "c.npy", array)
    np.save(tmp_path / "f.npy", np.asfortranarray(array))
    for name in ("c", "f"):
        header = NpyColumns.open(tmp_path / f"{name}.npy")
        assert header.shape == (7, 10_000) and header.fortran_order == (name == "f")
        assert np.array_equal(np.concatenate(list(header.blocks(size=999)), axis=1), array)
    frames = write_npy_columns(
        tmp_path / "out.npy", 7, np.float32, (array[:, i : i + 3000] for i in range(0, 10_000, 3000))
    )
    loaded = np.load(tmp_path / "out.npy")
    assert frames == 10_000 and loaded.dtype == np.float32 and np.array_equal(loaded, array.astype(np.float32))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="holds Python objects"):
        NpyColumns.open(tmp_path / "objects.npy")


def _peak_python_memory(folder: Path, path: Path, target: Path) -> int:
    vocoder = Vocoder(str(folder))
    extractor = vocoder.processor.feature_extractor
    tracemalloc.start()
    try:
        features = extractor.stream(read_audio_blocks(path, vocoder.sampling_rate))
        write_audio_blocks(target, vocoder.stream_decode(features), vocoder.sampling_rate, None)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_of_a_file_to_file_run_does_not_grow_with_the_length(workspace, tmp_path):
    """numpy's buffers (the audio read, resampled, the features, the audio out) at the peak, for 1 and 4 minutes of
    44.1 kHz audio: the same, and far below what the 4 minutes hold (the RSS of whole runs up to 10 h is in
    docs/benchmarks.md)."""
    minute = speech_like(60 * 44100, 44100, seed=9)
    for minutes in (1, 4):
        soundfile.write(tmp_path / f"{minutes}.wav", np.tile(minute, minutes), 44100, subtype="PCM_16")
    short = _peak_python_memory(workspace / "mel", tmp_path / "1.wav", tmp_path / "1.out.wav")
    long = _peak_python_memory(workspace / "mel", tmp_path / "4.wav", tmp_path / "4.out.wav")
    four_minutes_at_24khz = 4 * 60 * 24000 * 4
    assert long < 1.2 * short and long < four_minutes_at_24khz / 2, (short, long)
    assert soundfile.info(str(tmp_path / "4.out.wav")).frames == pytest.approx(4 * 60 * 24000, abs=256)


# ---- interruptions ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_input(tmp_path_factory):
    """Twenty minutes of 24 kHz audio: streamed, so its output is being written for a few seconds."""
    folder = tmp_path_factory.mktemp("interrupt")
    minute = speech_like(60 * 24000, seed=11)
    with soundfile.SoundFile(folder / "long.wav", "w", 24000, 1, subtype="PCM_16") as handle:
        for _ in range(20):
            handle.write(minute)
    soundfile.write(folder / "a.wav", minute[:24000], 24000)
    return folder


@pytest.mark.parametrize("number, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_an_interrupted_run_leaves_no_temporary_file(workspace, long_input, tmp_path, number, status):
    output = tmp_path / "out"
    command = [sys.executable, "-m", "hf_vocos", "resynth", long_input / "a.wav", long_input / "long.wav", "-o",
               output, "--model", workspace / "mel", "--batch-size", "1", "-q"]  # fmt: skip
    process = subprocess.Popen(list(map(str, command)), env=ENV, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (output.exists() and any(path.name.startswith(".long.wav.") for path in output.iterdir())):
        assert process.poll() is None and time.monotonic() < deadline, "the long output was never being written"
        time.sleep(0.005)
    process.send_signal(number)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == status, stderr
    assert f"resynth: interrupted by {signal.Signals(number).name}: 1 file written before it" in stderr
    assert sorted(path.name for path in output.iterdir()) == ["a.wav"]  # complete; no long.wav, no .partial
    assert abs(soundfile.info(str(output / "a.wav")).frames - 24000) < 256


def test_atomic_path_removes_files_and_folders_on_any_exception(tmp_path):
    for folder in (False, True):
        target = tmp_path / ("folder" if folder else "file.wav")
        with pytest.raises(KeyboardInterrupt):
            with atomic_path(target, folder=folder) as temporary:
                assert temporary.exists() and temporary.name.startswith(f".{target.name}.")
                raise KeyboardInterrupt
        assert list(tmp_path.iterdir()) == []
    with atomic_path(tmp_path / "kept", folder=True) as temporary:
        (temporary / "x").write_text("x")
    assert (tmp_path / "kept" / "x").read_text() == "x"
    # What a process being stopped still has open is listed, and removed by remove_temporaries.
    context = atomic_path(tmp_path / "open.npy")
    temporary = context.__enter__()
    assert remove_temporaries() == [temporary] and not temporary.exists()


def test_main_restores_the_signal_handlers(workspace, tmp_path):
    from hf_vocos.cli import main

    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    assert (
        main(["synthesize", str(tmp_path / "missing.npy"), "-o", str(tmp_path), "--model", str(workspace / "mel")]) == 1
    )
    assert {number: signal.getsignal(number) for number in before} == before


def test_mp3_is_decoded_whole_and_gives_the_in_memory_audio(workspace, tmp_path):
    """libsndfile's mp3 decoder gives other samples around some boundaries when a file is read in blocks (about a
    thousand samples, by up to 0.2), so an mp3 is decoded whole; the rest streams, and the audio is the in-memory
    path's bit for bit."""
    source = tmp_path / "long.mp3"
    soundfile.write(source, speech_like(15 * 22050, 22050, seed=6), 22050)
    vocoder, audio = in_memory(workspace / "mel", source)
    result = hf_vocos(
        "resynth", source, "-o", tmp_path / "out.wav", "--model", workspace / "mel", "--long-seconds", "1"
    )
    assert result.returncode == 0, result.stderr
    assert np.array_equal(soundfile.read(tmp_path / "out.wav", dtype="float32")[0], vocoder.resynthesize([audio])[0])


def test_stream_decode_refuses_blocks_that_do_not_line_up(workspace):
    vocoder = Vocoder(str(workspace / "mel"))
    blocks = [np.zeros((100, 600), np.float32), np.zeros((80, 10), np.float32)]
    with pytest.raises(ValueError, match=r"`blocks\[1\]` has shape \(80, 10\).*`blocks\[0\]` has \(100, 600\)"):
        list(vocoder.stream_decode(blocks))
    # Lists of samples are blocks too, for the feature stream.
    extractor = vocoder.processor.feature_extractor
    clip = speech_like(4000, seed=1)
    streamed = np.concatenate(list(extractor.stream([clip[:1500].tolist(), clip[1500:]])), axis=1)
    assert np.array_equal(streamed, extractor(clip, sampling_rate=24000)["input_features"][0])
