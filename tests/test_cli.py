"""The `hf-vocos` command line end to end, in subprocesses, on files and small models the tests write."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr
import torch
from conftest import save_small_checkpoint, speech_like

from hf_vocos import VocosModel, VocosProcessor


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Small mel and EnCodec models, and a folder of inputs: several rates, stereo, flac/mp3/ogg, one bad file."""
    root = tmp_path_factory.mktemp("cli")
    save_small_checkpoint(root / "mel", "mel", seed=21)
    save_small_checkpoint(root / "encodec", "encodec", seed=22)
    inputs = root / "in"
    (inputs / "sub").mkdir(parents=True)
    soundfile.write(inputs / "a.wav", speech_like(24000, seed=1), 24000)
    stereo = speech_like(int(1.5 * 44100), 44100, seed=2)
    soundfile.write(inputs / "sub" / "b.flac", np.stack([stereo, 0.3 * stereo], axis=1), 44100)
    soundfile.write(inputs / "c.mp3", speech_like(16000, 16000, seed=3), 16000)
    soundfile.write(inputs / "d.ogg", speech_like(22050, 22050, seed=4), 22050)
    (inputs / "bad.wav").write_bytes(b"RIFF\x00\x00 this is not a wave file")
    (inputs / "notes.txt").write_text("not audio, and skipped")
    return root


def run(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    return subprocess.run(
        [sys.executable, "-m", "hf_vocos", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
    )


def expected_resynthesis(model_folder: Path, path: Path, bandwidth=None) -> np.ndarray:
    """What the CLI should write: mono mix, soxr to 24 kHz, processor, model."""
    audio, rate = soundfile.read(path, dtype="float32")
    if audio.ndim == 2:
        audio = audio.mean(axis=1).astype(np.float32)
    if rate != 24000:
        audio = soxr.resample(audio, rate, 24000, quality="HQ").astype(np.float32)
    model = VocosModel.from_pretrained(model_folder).eval()
    processor = VocosProcessor.from_pretrained(model_folder)
    kwargs = {} if bandwidth is None else {"bandwidth": bandwidth}
    with torch.no_grad():
        return model(**processor(audio=audio, sampling_rate=24000, **kwargs)).audio[0].numpy()


def test_resynth_a_folder(workspace, tmp_path):
    result = run("resynth", workspace / "in", "-o", tmp_path / "out", "--model", workspace / "mel", "--batch-size", "3")
    assert result.returncode == 1, result.stderr  # one bad file
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == ["a.wav", "c.wav", "d.wav", "sub/b.wav"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "bad.wav: cannot decode audio" in errors[0]
    assert "sub/b.flac: 2 channels mixed to mono" in result.stderr and "resampled 44100 Hz -> 24000 Hz" in result.stderr
    assert "resynth: 4 files," in result.stderr and "1 failed" in result.stderr
    for name, source in (("a.wav", "a.wav"), ("sub/b.wav", "sub/b.flac"), ("c.wav", "c.mp3")):
        audio, rate = soundfile.read(tmp_path / "out" / name, dtype="float32")
        assert rate == 24000 and audio.ndim == 1
        np.testing.assert_allclose(
            audio, expected_resynthesis(workspace / "mel", workspace / "in" / source), rtol=0, atol=1e-5
        )


def test_analyze_then_synthesize_equals_resynth(workspace, tmp_path):
    inputs = [workspace / "in" / "a.wav", workspace / "in" / "sub" / "b.flac"]
    assert run("resynth", *inputs, "-o", tmp_path / "resynth", "--model", workspace / "mel", "-q").returncode == 0
    assert run("analyze", *inputs, "-o", tmp_path / "features", "--model", workspace / "mel", "-q").returncode == 0
    features = np.load(tmp_path / "features" / "b.npy")
    assert features.dtype == np.float32 and features.shape[0] == 100
    assert (
        run(
            "synthesize", tmp_path / "features", "-o", tmp_path / "synth", "--model", workspace / "mel", "-q"
        ).returncode
        == 0
    )
    for name in ("a.wav", "b.wav"):
        np.testing.assert_allclose(
            soundfile.read(tmp_path / "synth" / name)[0],
            soundfile.read(tmp_path / "resynth" / name)[0],
            rtol=0,
            atol=1e-5,
        )


def test_encodec_codes_and_decode_codes(workspace, tmp_path):
    source = workspace / "in" / "a.wav"
    assert (
        run(
            "analyze", source, "-o", tmp_path / "codes", "--model", workspace / "encodec", "--bandwidth", "6", "-q"
        ).returncode
        == 0
    )
    codes = np.load(tmp_path / "codes" / "a.npy")
    assert codes.dtype == np.int64 and codes.shape == (8, 75)
    result = run(
        "decode-codes",
        tmp_path / "codes",
        "-o",
        tmp_path / "audio",
        "--model",
        workspace / "encodec",
        "--bandwidth",
        "6",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    decoded, rate = soundfile.read(tmp_path / "audio" / "a.wav", dtype="float32")
    assert rate == 24000
    np.testing.assert_allclose(
        decoded, expected_resynthesis(workspace / "encodec", source, bandwidth=6.0), rtol=0, atol=1e-5
    )


def test_long_files_stream_with_the_same_audio(workspace, tmp_path):
    source = workspace / "in" / "sub" / "b.flac"
    result = run("resynth", source, "-o", tmp_path / "long.wav", "--model", workspace / "mel", "--long-seconds", "0.2")
    assert result.returncode == 0, result.stderr
    audio, _ = soundfile.read(tmp_path / "long.wav", dtype="float32")
    np.testing.assert_allclose(audio, expected_resynthesis(workspace / "mel", source), rtol=0, atol=1e-5)


def test_single_file_to_a_named_output_and_plot(workspace, tmp_path):
    result = run(
        "resynth",
        workspace / "in" / "c.mp3",
        "-o",
        tmp_path / "x" / "voice.flac",
        "--model",
        workspace / "mel",
        "--plot",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    info = soundfile.info(tmp_path / "x" / "voice.flac")
    assert info.format == "FLAC" and info.samplerate == 24000 and info.channels == 1
    png = tmp_path / "x" / "voice.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    image = imread(png)
    assert image.shape[0] > 300 and image.shape[1] > 500  # two stacked panels
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["voice.flac", "voice.png"]


def test_bad_inputs_each_get_one_line_and_the_rest_is_processed(workspace, tmp_path):
    arrays = tmp_path / "arrays"
    arrays.mkdir()
    np.save(arrays / "good.npy", np.random.default_rng(0).standard_normal((100, 40)).astype(np.float32) - 4)
    np.save(arrays / "bins.npy", np.zeros((80, 40), np.float32))
    np.save(arrays / "ints.npy", np.zeros((100, 40), np.int32))
    np.save(arrays / "nan.npy", np.full((100, 40), np.nan, np.float32))
    (arrays / "pickle.npy").write_bytes(b"\x93NUMPY junk")
    result = run("synthesize", arrays, tmp_path / "missing.npy", "-o", tmp_path / "out", "--model", workspace / "mel")
    assert result.returncode == 1
    errors = sorted(line for line in result.stderr.splitlines() if line.startswith("error:"))
    assert len(errors) == 5, result.stderr
    assert any("bins.npy: features must have shape (100, frames), got (80, 40)" in e for e in errors)
    assert any("ints.npy: features must be floating point" in e for e in errors)
    assert any("nan.npy: features contain NaN" in e for e in errors)
    assert any("pickle.npy" in e for e in errors)
    assert any("missing.npy: no such file or folder" in e for e in errors)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.wav"]

    codes = tmp_path / "codes"
    codes.mkdir()
    np.save(codes / "range.npy", np.full((8, 20), 1024, np.int64))
    np.save(codes / "count.npy", np.zeros((4, 20), np.int64))
    result = run(
        "decode-codes", codes, "-o", tmp_path / "decoded", "--model", workspace / "encodec", "--bandwidth", "6"
    )
    assert result.returncode == 1
    assert "range.npy: codes must lie in [0, 1024), got values in [1024, 1024]" in result.stderr
    assert "count.npy: codes must have shape (8, frames) at 6 kbps, got (4, 20)" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        ("resynth {inputs}/a.wav -o {tmp}/file/out --model {mel}", "-o .*: cannot create"),
        ("resynth {inputs}/a.wav -o {tmp}/out --model {encodec}", "--bandwidth is required for this EnCodec model"),
        ("resynth {inputs}/a.wav -o {tmp}/out --model {mel} --bandwidth 6", "bandwidth.*mel model"),
        (
            "resynth {inputs}/a.wav -o {tmp}/out --model {tmp}/nothing-here",
            "--model .*nothing-here: .*nothing-here: no such folder",
        ),
        (
            "decode-codes {tmp}/codes.npy -o {tmp}/out --model {mel}",
            "is a mel model; decode-codes needs an EnCodec model",
        ),
        ("resynth {inputs}/a.wav -o {tmp}/out --model {mel} --device gpu!", "--device 'gpu!': not a torch device"),
        pytest.param(
            "resynth {inputs}/a.wav -o {tmp}/out --model {mel} --device cuda",
            "--device 'cuda': this torch .* cannot use it here",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch that cannot use CUDA"),
        ),
        (
            "resynth {inputs}/a.wav -o {tmp}/out --model {mel} --long-seconds -1",
            "--long-seconds -1.0: expected a number of seconds >= 0",
        ),
    ],
)
def test_command_errors_are_one_line(workspace, tmp_path, args, message):
    import re

    (tmp_path / "file").write_text("a file, not a folder")
    np.save(tmp_path / "codes.npy", np.zeros((8, 10), np.int64))
    argv = args.format(
        inputs=workspace / "in", tmp=tmp_path, mel=workspace / "mel", encodec=workspace / "encodec"
    ).split()
    result = run(*argv)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and re.search(message, errors[0]), result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_no_partial_file_is_left_when_a_write_fails(workspace, tmp_path):
    (tmp_path / "out" / "a.wav").mkdir(parents=True)  # the target name is taken by a folder
    result = run(
        "resynth",
        workspace / "in" / "a.wav",
        workspace / "in" / "c.mp3",
        "-o",
        tmp_path / "out",
        "--model",
        workspace / "mel",
    )
    assert result.returncode == 1 and "a.wav: cannot write it" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.wav", "c.wav"]
    assert not any(".partial" in p.name for p in (tmp_path / "out").rglob("*"))


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "hf-vocos"  # beside this interpreter, whether or not the venv is on PATH
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("hf_vocos ")


def test_a_clip_the_model_refuses_fails_alone_in_its_batch(workspace, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    soundfile.write(inputs / "a.wav", speech_like(24000, seed=1), 24000)
    soundfile.write(inputs / "short.wav", speech_like(100, seed=2), 24000)  # fewer samples than the STFT padding needs
    result = run("resynth", inputs, "-o", tmp_path / "out", "--model", workspace / "mel", "--batch-size", "2")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "short.wav" in errors[0] and "at least 513 samples" in errors[0], result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.wav"]


def test_dtype_auto(workspace, tmp_path):
    """`--dtype auto` decodes (the dtype it picks: test_vocoder.py)."""
    result = run(
        "resynth", workspace / "in" / "a.wav", "-o", tmp_path / "a.wav", "--model", workspace / "mel", "--dtype", "auto"
    )
    assert result.returncode == 0, result.stderr
    audio, rate = soundfile.read(tmp_path / "a.wav", dtype="float32")
    assert rate == 24000 and np.isfinite(audio).all() and np.abs(audio).max() > 0


def test_an_output_that_is_an_input_is_refused_before_any_work(workspace, tmp_path):
    """`resynth x.wav -o x.wav` would replace the input by its vocoded copy: refused, the input untouched."""
    import shutil

    source = tmp_path / "x.wav"
    shutil.copy(workspace / "in" / "a.wav", source)
    before = source.read_bytes()
    result = run("resynth", source, "-o", source, "--model", workspace / "mel")
    assert result.returncode != 0
    assert "which is one of the inputs" in result.stderr and str(source) in result.stderr
    assert source.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["x.wav"]
    # the same through a folder: its files' outputs land on themselves
    result = run("resynth", tmp_path, "-o", tmp_path, "--model", workspace / "mel")
    assert result.returncode != 0 and "which is one of the inputs" in result.stderr
    assert source.read_bytes() == before


def test_a_full_disk_stops_the_command_with_one_error_and_the_summary(workspace, tmp_path):
    """On a 200 KB file system two outputs fit: they stay complete, the third fails with one error line naming it
    and the full disk, the command stops there (the rest would fail alike), prints its summary and exits 1."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here to fill a disk ({mounted.stderr.decode().strip()})")
    try:
        inputs = tmp_path / "in"
        inputs.mkdir()
        for index in range(4):
            soundfile.write(inputs / f"{index}.wav", speech_like(24000, seed=index), 24000)
        result = run("resynth", inputs, "-o", disk, "--model", workspace / "mel")
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "2.wav: cannot write it: no space left on the device; stopped there" in errors[0]
        assert "resynth: 2 files," in result.stderr and "1 failed" in result.stderr
        assert sorted(path.name for path in disk.iterdir()) == ["0.wav", "1.wav"]  # no temporary left
        for name in ("0.wav", "1.wav"):
            assert soundfile.read(disk / name)[0].shape == (93 * 256,)  # 1 s: 93 whole frames
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
