"""Reading, converting and writing audio (audio_io): every input form `load_audio` takes, clear errors naming the
input, mono mixing and resampling, and writes that leave either the whole file or nothing."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile
from conftest import speech_like

from hf_vocos.audio_io import (
    AudioError,
    atomic_write,
    encode_wav,
    find_files,
    load_audio,
    resample,
    save_array,
    save_audio,
    to_mono,
)


def test_load_audio_from_a_path_bytes_and_dataset_values(tmp_path):
    clip = speech_like(4800, seed=1)
    path = tmp_path / "a.flac"
    soundfile.write(path, clip, 24000, subtype="PCM_24")
    expected, _ = soundfile.read(path, dtype="float32")
    for source in (path, str(path), path.read_bytes(), {"bytes": path.read_bytes(), "path": "x"}, {"path": str(path)}):
        audio, rate = load_audio(source)
        assert rate == 24000 and audio.dtype == np.float32
        np.testing.assert_array_equal(audio, expected)
    audio, rate = load_audio({"array": clip.astype(np.float64), "sampling_rate": 16000})
    assert rate == 16000 and audio.dtype == np.float32 and audio.shape == clip.shape


@pytest.mark.parametrize(
    "make_source, message",
    [
        (lambda tmp: tmp / "missing.wav", r"missing\.wav: no such file"),
        (lambda tmp: tmp, r": a folder, not an audio file"),
        (lambda tmp: b"RIFF\x00\x00 not a wave file", r"<audio bytes>: cannot decode audio"),
        (lambda tmp: None, r"no audio in this value \(None\)"),
        (lambda tmp: {"array": [0.0, 0.1]}, r"an audio array without `sampling_rate`"),
        (lambda tmp: {"path": None}, r"an audio value with neither `bytes`, `path` nor `array`"),
    ],
)
def test_unreadable_inputs_raise_an_audio_error_naming_them(tmp_path, make_source, message):
    with pytest.raises(AudioError, match=message):
        load_audio(make_source(tmp_path))
    assert issubclass(AudioError, ValueError)


def test_an_empty_file_holds_no_samples(tmp_path):
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 24000)
    with pytest.raises(AudioError, match=r"empty\.wav: holds no samples"):
        load_audio(tmp_path / "empty.wav")


def test_to_mono_and_resample():
    left = speech_like(44100, 44100, seed=2)
    mono, channels = to_mono(np.stack([left, 0.5 * left], axis=1))
    assert channels == 2 and mono.dtype == np.float32
    np.testing.assert_allclose(mono, 0.75 * left, rtol=0, atol=1e-7)
    assert to_mono(left) == (left, 1)
    assert resample(left, 24000, 24000) is left
    resampled = resample(left, 44100, 24000)
    assert resampled.dtype == np.float32 and resampled.shape == (24000,)


def test_find_files_is_recursive_sorted_and_case_blind(tmp_path):
    for name in ("b.WAV", "sub/a.flac", "notes.txt", "sub/c.Mp3"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in find_files(tmp_path)] == ["b.WAV", "sub/a.flac", "sub/c.Mp3"]


def test_save_audio_round_trips_and_refuses_an_unknown_suffix(tmp_path):
    clip = speech_like(2400, seed=3)
    path = save_audio(tmp_path / "out.wav", clip, 24000)
    audio, rate = soundfile.read(path, dtype="float32")
    assert rate == 24000 and soundfile.info(path).subtype == "FLOAT"
    np.testing.assert_array_equal(audio, clip)
    with pytest.raises(AudioError, match=r"unsupported output format '\.xyz' \(use \.wav, \.flac, \.ogg or \.mp3\)"):
        save_audio(tmp_path / "out.xyz", clip, 24000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]


def test_encode_wav_and_save_array(tmp_path):
    clip = speech_like(2400, seed=4)
    audio, rate = load_audio(encode_wav(clip, 22050))
    assert rate == 22050
    np.testing.assert_array_equal(audio, clip)
    array = np.arange(12, dtype=np.int64).reshape(3, 4)
    np.testing.assert_array_equal(np.load(save_array(tmp_path / "codes.npy", array)), array)


def test_a_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.wav"
    path.write_bytes(b"old")

    def failing(temporary):
        with open(temporary, "wb") as handle:
            handle.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match=r"out.wav: cannot write it \(disk full\)"):  # named; an OSError still
        atomic_write(path, failing)
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"] and path.read_bytes() == b"old"
    with pytest.raises(KeyboardInterrupt):  # an interrupt too
        atomic_write(path, lambda temporary: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]


def test_written_files_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = save_audio(tmp_path / "out.wav", np.zeros(2400, np.float32), 24000)
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_a_killed_runs_temporaries_do_not_look_like_outputs_and_are_removed_by_the_next_write(tmp_path):
    """A process killed while writing (SIGKILL: nothing can clean up) leaves its temporary; it never ends in the
    output's suffix (so `*.wav` does not pick it up), and the next write into that folder removes it. A live process's
    temporary stays."""
    import subprocess
    import sys

    from hf_vocos.audio_io import atomic_path

    target = tmp_path / "x.wav"
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()  # its pid is gone now
    stale = tmp_path / f".x.wav.{killed.pid}-0123abcd.partial"
    stale.write_bytes(b"half a file")
    other = tmp_path / f".y.flac.{killed.pid}-4567cdef.partial"  # another output's, in the same folder
    other.write_bytes(b"half another file")
    live = tmp_path / f".x.wav.{os.getppid()}-89abcdef.partial"  # a running process (the test runner's parent)
    live.write_bytes(b"being written")
    with atomic_path(target) as temporary:
        assert temporary.name.endswith(".partial") and not temporary.name.endswith(".wav")
        assert list(tmp_path.glob("*.wav")) == []
        temporary.write_bytes(b"new")
    assert not stale.exists() and not other.exists() and live.exists()
    assert sorted(path.name for path in tmp_path.glob("*.wav")) == ["x.wav"]
