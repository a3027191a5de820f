"""`hf-vocos dataset`: one process and two (accelerate) give the same dataset; reruns resume; any audio column."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
from conftest import save_small_checkpoint, speech_like

datasets = pytest.importorskip("datasets")
pytest.importorskip("accelerate")

from hf_vocos import VocosFeatureExtractor, VocosModel, VocosProcessor  # noqa: E402

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    save_small_checkpoint(root / "mel", "mel", seed=31)
    folder = root / "audio"
    (folder / "speaker2").mkdir(parents=True)
    for index, (seconds, rate) in enumerate([(1.0, 24000), (0.4, 24000), (2.0, 16000), (0.7, 44100), (1.3, 24000)]):
        soundfile.write(folder / f"clip{index}.wav", speech_like(int(seconds * rate), rate, seed=index), rate)
    stereo = speech_like(30000, 24000, seed=9)
    soundfile.write(folder / "speaker2" / "stereo.flac", np.stack([stereo, -stereo], axis=1), 24000)
    (folder / "speaker2" / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    return root


def hf_vocos(*args):
    return subprocess.run(
        [sys.executable, "-m", "hf_vocos", *map(str, args)], capture_output=True, text=True, env=ENV, timeout=600
    )


def accelerate(*args):
    # accelerate's launcher as a module of this interpreter: the venv's scripts need not be on PATH.
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
    ]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no", "-m", "hf_vocos", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600)


def decoded(dataset, column="vocos_audio"):
    return [
        None if value is None else soundfile.read(io.BytesIO(value["bytes"]), dtype="float32")[0]
        for value in dataset[column]
    ]


def test_one_and_two_processes_give_the_same_dataset(corpus, tmp_path):
    arguments = [
        "dataset",
        "resynth",
        corpus / "audio",
        "--model",
        corpus / "mel",
        "--num-shards",
        "3",
        "--batch-size",
        "2",
    ]
    one = hf_vocos(*arguments, "-o", tmp_path / "one")
    assert one.returncode == 1, one.stderr  # the broken file
    two = accelerate(*arguments, "-o", tmp_path / "two")
    assert "dataset resynth: 6 files," in two.stderr and "1 failed" in two.stderr, two.stderr
    assert "process 1: shard 1" in two.stderr  # the second process did take a shard

    first = datasets.load_from_disk(str(tmp_path / "one" / "dataset"))
    second = datasets.load_from_disk(str(tmp_path / "two" / "dataset"))
    assert first.column_names == second.column_names == ["audio", "file", "vocos_audio", "vocos_error"]
    assert (
        isinstance(first.features["vocos_audio"], datasets.Audio)
        and first.features["vocos_audio"].sampling_rate == 24000
    )
    assert first["file"] == second["file"] == sorted(first["file"])  # original rows, original order
    errors = first["vocos_error"]
    assert [file for file, error in zip(first["file"], errors) if error] == ["speaker2/broken.wav"]
    assert second["vocos_error"] == errors
    for a, b in zip(decoded(first), decoded(second)):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)

    # Each row is the CLI's resynthesis of its file.
    model = VocosModel.from_pretrained(corpus / "mel").eval()
    audio, _ = soundfile.read(corpus / "audio" / "clip1.wav", dtype="float32")  # 16-bit PCM on disk
    with torch.no_grad():
        expected = model(**VocosProcessor(VocosFeatureExtractor())(audio=audio, sampling_rate=24000)).audio[0].numpy()
    np.testing.assert_allclose(decoded(first)[first["file"].index("clip1.wav")], expected, rtol=0, atol=1e-5)


def test_rerun_resumes_from_finished_shards(corpus, tmp_path):
    arguments = [
        "dataset",
        "resynth",
        corpus / "audio",
        "-o",
        tmp_path / "run",
        "--model",
        corpus / "mel",
        "--num-shards",
        "3",
    ]
    hf_vocos(*arguments)
    before = datasets.load_from_disk(str(tmp_path / "run" / "dataset"))
    shutil.rmtree(tmp_path / "run" / "shards" / "00001")
    shutil.rmtree(tmp_path / "run" / "dataset")
    again = hf_vocos(*arguments)
    assert "process 0: 2 of its 3 shards are already done" in again.stderr
    assert "shard 1 (" in again.stderr and "shard 0 (" not in again.stderr
    after = datasets.load_from_disk(str(tmp_path / "run" / "dataset"))
    for a, b in zip(decoded(before), decoded(after)):
        if a is not None:
            np.testing.assert_array_equal(a, b)
    other = hf_vocos(*arguments[:-2], "--num-shards", "4")
    assert other.returncode == 1 and "holds a run with other settings (num_shards)" in other.stderr


def test_analyze_a_saved_dataset_with_arrays_and_bytes_to_parquet(corpus, tmp_path):
    clips = [speech_like(12000, 24000, seed=40), speech_like(16000, 16000, seed=41), speech_like(9000, 24000, seed=42)]
    buffer = io.BytesIO()
    soundfile.write(buffer, clips[2], 24000, format="FLAC")
    saved = datasets.Dataset.from_dict(
        {
            "speech": [
                {"array": clips[0].tolist(), "sampling_rate": 24000},
                {"array": clips[1].tolist(), "sampling_rate": 16000},
                {"bytes": buffer.getvalue(), "path": None},
            ],
            "speaker": ["a", "b", "c"],
        }
    )
    saved.save_to_disk(str(tmp_path / "saved"))
    result = hf_vocos(
        "dataset",
        "analyze",
        tmp_path / "saved",
        "-o",
        tmp_path / "out",
        "--model",
        corpus / "mel",
        "--audio-column",
        "speech",
        "--num-shards",
        "2",
        "--output-format",
        "parquet",
    )
    assert result.returncode == 0, result.stderr
    table = datasets.Dataset.from_parquet(str(tmp_path / "out" / "dataset.parquet"))
    assert table["speaker"] == ["a", "b", "c"] and table["vocos_error"] == [None, None, None]
    extractor = VocosFeatureExtractor()
    expected = extractor(clips[0], sampling_rate=24000)["input_features"][0]
    np.testing.assert_allclose(np.asarray(table[0]["mel"], dtype=np.float32), expected, rtol=0, atol=1e-5)
    assert np.asarray(table[2]["mel"]).shape == (100, extractor.num_frames(9000))


def test_source_errors(corpus, tmp_path):
    missing = hf_vocos("dataset", "resynth", tmp_path / "nothing", "-o", tmp_path / "out", "--model", corpus / "mel")
    assert missing.returncode == 1 and "no such folder, and cannot load it as a Hub dataset" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = hf_vocos("dataset", "resynth", tmp_path / "empty", "-o", tmp_path / "out", "--model", corpus / "mel")
    assert empty.returncode == 1 and "no audio files in this folder" in empty.stderr
    datasets.Dataset.from_dict({"speech": [{"bytes": b"x", "path": None}]}).save_to_disk(str(tmp_path / "saved"))
    column = hf_vocos("dataset", "resynth", tmp_path / "saved", "-o", tmp_path / "out", "--model", corpus / "mel")
    assert column.returncode == 1 and "no column 'audio'" in column.stderr and "pass --audio-column" in column.stderr


def test_more_shards_than_rows(corpus, tmp_path):
    result = hf_vocos(
        "dataset", "analyze", corpus / "audio", "-o", tmp_path / "out", "--model", corpus / "mel", "--num-shards", "16"
    )
    assert "dataset analyze: 6 files," in result.stderr, result.stderr
    assert len(datasets.load_from_disk(str(tmp_path / "out" / "dataset"))) == 7
