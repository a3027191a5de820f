"""Conversion of original Vocos checkpoints: the CLI, parity with the original, EnCodec, on-the-fly loading, errors."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import fill_hub_cache, speech_like
from frontends import vocos_log_mel
from reference import (
    ENCODEC_24KHZ,
    build_encodec_model,
    build_encodec_vocos,
    build_mel_vocos,
    decode_codes,
    decode_features,
    encodec_codes,
    encodec_config_yaml,
    mel_buffers,
    mel_config_yaml,
    save_original_checkpoint,
)
from transformers import EncodecModel

from hf_vocos import VocosFeatureExtractor, VocosModel, VocosProcessor
from hf_vocos.conversion import ConversionError, convert_encodec_checkpoint, read_original_config

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "conversion_scripts" / "convert_original_vocos.py"

_spec = importlib.util.spec_from_file_location("convert_original_vocos", SCRIPT)
cli = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cli)

MEL_SPECS = {
    # The released mel checkpoint's sizes.
    "mel-24khz": (
        {"sample_rate": 24000, "n_fft": 1024, "hop_length": 256, "n_mels": 100, "padding": "center"},
        512,
        1536,
        8,
    ),
    # A Matcha-TTS-style community model: 22.05 kHz, 80 slaney mels up to 8 kHz (the upstream-only mel arguments),
    # "same" padding, 6 layers.
    "mel-22khz": (
        {
            "sample_rate": 22050,
            "n_fft": 1024,
            "hop_length": 256,
            "n_mels": 80,
            "padding": "same",
            "f_min": 0,
            "f_max": 8000,
            "norm": "slaney",
            "mel_scale": "slaney",
        },
        256,
        768,
        6,
    ),
    # 44.1 kHz with a 2048-point FFT and hop 512.
    "mel-44khz": (
        {"sample_rate": 44100, "n_fft": 2048, "hop_length": 512, "n_mels": 100, "padding": "center"},
        256,
        768,
        8,
    ),
}


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """Original-format checkpoints with random weights, built in the original's classes; name -> (model, folder)."""
    root = tmp_path_factory.mktemp("originals")
    checkpoints = {}
    for seed, (name, (features, dim, intermediate, layers)) in enumerate(MEL_SPECS.items()):
        sizes = {"dim": dim, "intermediate_dim": intermediate, "num_layers": layers}
        model, folder = original_mel_checkpoint(root / name, features, sizes, seed)
        checkpoints[name] = (model, folder)
    model = build_encodec_vocos(seed=5)
    folder = save_original_checkpoint(model, root / "encodec-24khz", encodec_config_yaml())
    checkpoints["encodec-24khz"] = (model, folder)
    torch.save(model.feature_extractor.encodec.state_dict(), root / "encodec_24khz-test.th")
    return checkpoints, root / "encodec_24khz-test.th"


def run_cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300, env=env
    )


@pytest.mark.parametrize("name", sorted(MEL_SPECS))
def test_cli_converts_mel_checkpoints(tmp_path, originals, name):
    original, folder = originals[0][name]
    result = run_cli("--input", folder, "--output", tmp_path / "out", "--verify", "--license", "mit")
    assert result.returncode == 0, result.stderr
    assert "verify: log-mel of a test signal: max abs difference" in result.stdout
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"README.md", "config.json", "model.safetensors", "preprocessor_config.json", "modeling_vocos.py"} <= written

    model = VocosModel.from_pretrained(tmp_path / "out").eval()
    processor = VocosProcessor.from_pretrained(tmp_path / "out")
    features_spec = MEL_SPECS[name][0]
    rate = features_spec["sample_rate"]
    assert processor.sampling_rate == model.config.sampling_rate == rate
    assert processor.feature_extractor.feature_size == features_spec["n_mels"]
    assert processor.feature_extractor.padding == features_spec["padding"]
    inputs = processor(
        audio=[speech_like(int(1.2 * rate), rate, seed=1), speech_like(int(0.7 * rate), rate, seed=2)],
        sampling_rate=rate,
    )
    with torch.no_grad():
        output = model(**inputs)
    for index, waveform in enumerate(processor.batch_decode(output)):
        frames = int(inputs["attention_mask"][index].sum())
        expected = decode_features(original, inputs["input_features"][index : index + 1, :, :frames])[0]
        np.testing.assert_allclose(waveform, expected.numpy(), rtol=0, atol=1e-5)


def test_cli_converts_encodec_checkpoint_with_its_encodec(tmp_path, originals):
    (original, folder), encodec_path = originals[0]["encodec-24khz"], originals[1]
    result = run_cli("--input", folder, "--output", tmp_path / "out", "--encodec-checkpoint", encodec_path, "--verify")
    assert result.returncode == 0, result.stderr
    for bandwidth in ENCODEC_24KHZ["bandwidths"]:
        assert f"verify: codes at {bandwidth:g} kbps: max abs difference" in result.stdout
    model = VocosModel.from_pretrained(tmp_path / "out").eval()
    processor = VocosProcessor.from_pretrained(tmp_path / "out")
    assert isinstance(processor.audio_tokenizer, EncodecModel)

    audio = torch.from_numpy(np.stack([speech_like(24000, seed=3), speech_like(24000, seed=4)]))
    for bandwidth_id, bandwidth in enumerate(ENCODEC_24KHZ["bandwidths"]):
        inputs = processor(audio=audio, bandwidth=bandwidth, sampling_rate=24000)
        # The converted EnCodec gives the encodec package's codes ...
        torch.testing.assert_close(
            inputs["codes"], encodec_codes(original.feature_extractor.encodec, audio, bandwidth), rtol=0, atol=0
        )
        # ... and the whole copy-synthesis equals the original's.
        with torch.no_grad():
            ours = model(**inputs).audio
        with torch.inference_mode():
            expected = original(audio, bandwidth_id=torch.tensor([bandwidth_id]))
        torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)
        codes = torch.randint(
            0,
            1024,
            (model.config.num_quantizers_for_bandwidth(bandwidth), 40),
            generator=torch.Generator().manual_seed(bandwidth_id),
        )
        with torch.no_grad():
            torch.testing.assert_close(
                model(codes=codes, bandwidth=bandwidth).audio,
                decode_codes(original, codes, bandwidth_id),
                rtol=0,
                atol=1e-5,
            )


def test_encodec_conversion_gives_identical_codes_at_every_bandwidth(tmp_path):
    original = build_encodec_model(seed=3)
    torch.save(original.state_dict(), tmp_path / "encodec.th")
    converted = convert_encodec_checkpoint(tmp_path / "encodec.th")
    audio = torch.from_numpy(np.stack([speech_like(24000, seed=6), speech_like(24000, seed=7)]))
    for bandwidth in (1.5, 3.0, 6.0, 12.0, 24.0):
        with torch.no_grad():
            ours = converted.encode(audio[:, None], bandwidth=bandwidth).audio_codes[0].transpose(0, 1)
        torch.testing.assert_close(ours, encodec_codes(original, audio, bandwidth), rtol=0, atol=0)


def test_without_encodec_checkpoint_the_processor_points_at_the_hub(tmp_path, originals):
    assert (
        cli.main(
            ["--input", str(originals[0]["encodec-24khz"][1]), "--output", str(tmp_path / "out"), "--license", "mit"]
        )
        == 0
    )
    config = json.loads((tmp_path / "out" / "processor_config.json").read_text())
    assert config["audio_tokenizer"] == {
        "audio_tokenizer_class": "EncodecModel",
        "audio_tokenizer_name_or_path": "facebook/encodec_24khz",
    }
    assert not (tmp_path / "out" / "audio_tokenizer").exists()


def test_model_card(tmp_path, originals):
    folder = originals[0]["encodec-24khz"][1]
    assert cli.main(["--input", str(folder), "--output", str(tmp_path / "out"), "--license", "mit"]) == 0
    card = (tmp_path / "out" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: hf_vocos\nlicense: mit\n")
    assert f"source checkpoint: `{folder}`" in card
    assert "sampling rate: 24000 Hz" in card and "[1.5, 3.0, 6.0, 12.0] kbps use [2, 4, 8, 16] codebooks" in card
    assert "VocosModel.from_pretrained(" in card and "bandwidth=6.0" in card


class _RecordingHub:
    def __init__(self):
        self.uploads = []

    def create_repo(self, repo_id, **kwargs):
        return type("RepoUrl", (), {"repo_id": repo_id})()

    def create_commit(self, repo_id, operations, **kwargs):
        self.uploads += [(repo_id, op.path_in_repo) for op in operations]

    def upload_file(self, path_or_fileobj, path_in_repo, repo_id, **kwargs):
        self.uploads.append((repo_id, path_in_repo))
        self.card = Path(path_or_fileobj).read_text()


def test_push_to_hub_pushes_model_processor_and_card(monkeypatch, tmp_path, originals):
    import huggingface_hub
    import transformers.utils.hub as hub
    from huggingface_hub import ModelCard

    recording = _RecordingHub()
    monkeypatch.setattr(hub, "hf_api", lambda: recording)
    monkeypatch.setattr(hub, "create_and_tag_model_card", lambda *args, **kwargs: ModelCard("---\n---\n"))
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda *args, **kwargs: recording)
    folder, encodec_path = originals[0]["encodec-24khz"][1], originals[1]
    argv = [
        "--input",
        str(folder),
        "--output",
        str(tmp_path / "out"),
        "--encodec-checkpoint",
        str(encodec_path),
        "--push-to-hub",
        "me/vocos-encodec",
        "--license",
        "mit",
    ]
    assert cli.main(argv) == 0
    pushed = {path for repo, path in recording.uploads if repo == "me/vocos-encodec"}
    assert {
        "config.json",
        "model.safetensors",
        "processor_config.json",
        "audio_tokenizer/model.safetensors",
        "audio_tokenizer/config.json",
        "README.md",
    } <= pushed
    assert recording.uploads[-1] == ("me/vocos-encodec", "README.md")  # the card goes last, so nothing replaces it
    assert 'VocosModel.from_pretrained("me/vocos-encodec")' in recording.card and "license: mit" in recording.card


def test_on_the_fly_conversion_of_an_original_folder(originals, caplog):
    original, folder = originals[0]["mel-22khz"]
    with caplog.at_level("WARNING"):
        model = VocosModel.from_pretrained(folder, dtype=torch.float32)
        processor = VocosProcessor.from_pretrained(folder)
    assert "is an original Vocos checkpoint (config.yaml + pytorch_model.bin): converting it on the fly" in caplog.text
    assert "building the equivalent processor" in caplog.text
    assert processor.feature_extractor.mel_scale == "slaney" and processor.feature_extractor.f_max == 8000
    features = processor(audio=speech_like(22050, 22050), sampling_rate=22050)["input_features"]
    with torch.no_grad():
        torch.testing.assert_close(
            model(input_features=features).audio, decode_features(original, features), rtol=0, atol=1e-5
        )
    encodec_processor = VocosProcessor.from_pretrained(originals[0]["encodec-24khz"][1])
    assert encodec_processor.encodec_name_or_path == "facebook/encodec_24khz" and encodec_processor.has_audio_tokenizer


def test_hub_input_and_on_the_fly_hub_loading(tmp_path, originals):
    """`--input charactr/vocos-mel-24khz` and `VocosModel.from_pretrained("charactr/vocos-mel-24khz")`, resolved from
    a Hub cache holding the original-format repository, offline."""
    original, folder = originals[0]["mel-24khz"]
    (tmp_path / "repo").mkdir()
    for name in ("config.yaml", "pytorch_model.bin"):
        (tmp_path / "repo" / name).write_bytes((folder / name).read_bytes())
    (tmp_path / "repo" / "README.md").write_text("---\nlicense: mit\n---\n# Vocos\n")
    fill_hub_cache(tmp_path / "cache", "charactr/vocos-mel-24khz", tmp_path / "repo")
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "home"),
    }
    result = run_cli("--input", "charactr/vocos-mel-24khz", "--output", tmp_path / "out", env=env)
    assert result.returncode == 0, result.stderr
    assert "license: mit" in (tmp_path / "out" / "README.md").read_text()
    script = (
        "import torch, numpy as np\nfrom hf_vocos import VocosModel\n"
        "model = VocosModel.from_pretrained('charactr/vocos-mel-24khz')\n"
        f"features = torch.from_numpy(np.load({str(tmp_path / 'features.npy')!r}))\n"
        f"with torch.no_grad(): np.save({str(tmp_path / 'audio.npy')!r}, "
        "model(input_features=features).audio.numpy())\n"
    )
    features = torch.randn(1, 100, 50, generator=torch.Generator().manual_seed(0))
    np.save(tmp_path / "features.npy", features.numpy())
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(
        np.load(tmp_path / "audio.npy"), decode_features(original, features).numpy(), rtol=0, atol=1e-5
    )


# --------------------------------------------------------------------------------------------------------------------
# errors: one line, exit code 1, nothing written


def _write(folder: Path, config: dict | str | None, weights) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (folder / "config.yaml").write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    if isinstance(weights, bytes):
        (folder / "pytorch_model.bin").write_bytes(weights)
    elif weights is not None:
        torch.save(weights, folder / "pytorch_model.bin")
    return folder


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _bad_inputs(originals, tmp_path):
    _, mel_folder = originals[0]["mel-24khz"]
    mel_config = yaml.safe_load((mel_folder / "config.yaml").read_text())
    mel_weights = torch.load(mel_folder / "pytorch_model.bin", weights_only=True)
    raw = (mel_folder / "pytorch_model.bin").read_bytes()

    def config_with(section, **changes):
        changed = yaml.safe_load(yaml.safe_dump(mel_config))
        changed[section].update(changes)
        return changed

    wrong_fb = dict(mel_weights)
    wrong_fb.update(mel_buffers(24000, 1024, 100, f_max=8000.0, norm="slaney", mel_scale="slaney"))
    return {
        "pickle with code": (
            _write(tmp_path / "a", mel_config, {"backbone.embed.weight": _Payload()}),
            "refusing to unpickle it: it holds a Python object",
        ),
        "a whole module": (
            _write(tmp_path / "b", mel_config, torch.nn.Linear(2, 2)),
            r"holds a Python object \(torch.nn.modules.linear.Linear\)",
        ),
        "truncated": (_write(tmp_path / "c", mel_config, raw[: len(raw) // 2]), "cannot be read, truncated or corrupt"),
        "garbage": (
            _write(tmp_path / "d", mel_config, b"\x00\x01not a checkpoint" * 100),
            "not a PyTorch checkpoint or a safetensors file, or corrupt",
        ),
        "unknown class": (
            _write(tmp_path / "e", config_with("backbone", class_path="myfork.models.FancyBackbone"), mel_weights),
            "unknown backbone class 'myfork.models.FancyBackbone'",
        ),
        "resnet backbone": (
            _write(tmp_path / "f", config_with("backbone", class_path="vocos.models.VocosResNetBackbone"), mel_weights),
            "VocosResNetBackbone is not supported",
        ),
        "imdct head": (
            _write(tmp_path / "g", config_with("head", class_path="vocos.heads.IMDCTCosHead"), mel_weights),
            "IMDCTCosHead is not supported",
        ),
        "unknown argument": (
            _write(
                tmp_path / "h",
                config_with("head", init_args={**mel_config["head"]["init_args"], "use_dct": True}),
                mel_weights,
            ),
            r"init arguments this conversion does not know: \['use_dct'\]",
        ),
        "shapes disagree": (
            _write(
                tmp_path / "i",
                config_with("backbone", init_args={**mel_config["backbone"]["init_args"], "dim": 384}),
                mel_weights,
            ),
            "head.dim \\(512\\) differs from backbone.dim \\(384\\)",
        ),
        "layer count disagrees": (
            _write(
                tmp_path / "j",
                config_with("backbone", init_args={**mel_config["backbone"]["init_args"], "num_layers": 6}),
                mel_weights,
            ),
            r"do not fit a VocosModel with this config \(unexpected: layers.6.dwconv.bias.*\(18\)\). The checkpoint "
            r"looks like the original vocos",
        ),
        "wrong width": (
            _write(
                tmp_path / "k",
                config_with("backbone", init_args={**mel_config["backbone"]["init_args"], "intermediate_dim": 1024}),
                mel_weights,
            ),
            r"wrong shape: layers.0.pwconv1.bias \(1536,\) \(expected \(1024,\)\), layers.0.pwconv1.weight \(1536, "
            r"512\) \(expected \(1024, 512\)\)",
        ),
        "mel filters disagree": (
            _write(tmp_path / "l", mel_config, wrong_fb),
            "mel filterbank differs from the one config.yaml describes",
        ),
        "no config.yaml": (_write(tmp_path / "m", None, mel_weights), "config.yaml: no such file"),
        "not yaml": (_write(tmp_path / "n", "backbone: [unclosed", mel_weights), "not valid YAML"),
        "no sections": (
            _write(tmp_path / "o", {"model": 3}, mel_weights),
            "expected the sections feature_extractor, backbone and head",
        ),
        "extra backbone key": (
            _write(tmp_path / "p", mel_config, {**mel_weights, "backbone.extra.weight": torch.zeros(2)}),
            r"do not fit a VocosModel with this config \(unexpected: backbone.extra.weight \(1\)\)",
        ),
        "unknown key": (
            _write(tmp_path / "r", mel_config, {**mel_weights, "postnet.weight": torch.zeros(2)}),
            r"unexpected: postnet.weight \(1\)",
        ),
        "not a dict": (_write(tmp_path / "q", mel_config, [torch.zeros(2)]), "expected a state dict"),
    }


def test_bad_checkpoints_fail_cleanly(tmp_path, originals, capsys):
    cases = _bad_inputs(originals, tmp_path / "inputs")
    for case, (folder, message) in cases.items():
        output = tmp_path / "outputs" / case.replace(" ", "-")
        assert cli.main(["--input", str(folder), "--output", str(output)]) == 1, case
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), (case, err)
        assert re.search(message, err[0]), (case, err[0])
        assert not output.exists(), case
    assert not any(p.name.startswith(".") for p in (tmp_path / "outputs").iterdir()), "a partial folder was left behind"


def test_other_argument_errors(tmp_path, originals, capsys):
    mel_folder = originals[0]["mel-24khz"][1]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    cases = [
        (
            ["--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o1")],
            "--input .*nope: no such folder, and no config.yaml",
        ),
        (["--input", str(mel_folder), "--output", str(tmp_path / "full")], "not empty \\(pass --overwrite"),
        (
            [
                "--input",
                str(mel_folder),
                "--output",
                str(tmp_path / "o2"),
                "--encodec-checkpoint",
                str(tmp_path / "x.th"),
            ],
            "--encodec-checkpoint was given, but this is a mel checkpoint",
        ),
        (
            [
                "--input",
                str(originals[0]["encodec-24khz"][1]),
                "--output",
                str(tmp_path / "o3"),
                "--encodec-checkpoint",
                str(tmp_path / "x.th"),
            ],
            "x.th: no such file",
        ),
        (
            [
                "--input",
                str(originals[0]["encodec-24khz"][1]),
                "--output",
                str(tmp_path / "o4"),
                "--encodec-checkpoint",
                str(mel_folder / "pytorch_model.bin"),
            ],
            "EnCodec 24 kHz.*do not fit",
        ),
    ]
    for argv, message in cases:
        assert cli.main(argv) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and re.search(message, err[0]), err
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    assert cli.main(["--input", str(mel_folder), "--output", str(tmp_path / "full"), "--overwrite"]) == 0
    assert not (tmp_path / "full" / "keep.txt").exists() and (tmp_path / "full" / "model.safetensors").exists()


def test_cli_exit_code_and_message_in_a_subprocess(tmp_path):
    folder = _write(tmp_path / "bad", "feature_extractor: {}", None)
    result = run_cli("--input", folder, "--output", tmp_path / "out")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_training_config_layout_is_read(tmp_path):
    training = {
        "model": {
            "class_path": "vocos.experiment.VocosExp",
            "init_args": {"sample_rate": 24000, **encodec_config_yaml()},
        }
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(training))
    original = read_original_config(tmp_path / "config.yaml")
    assert original["feature_extractor"]["class_path"] == "vocos.feature_extractors.EncodecFeatures"
    assert original["head"]["init_args"]["padding"] == "same"
    training["model"]["init_args"]["feature_extractor"]["init_args"]["encodec_model"] = "encodec_48khz"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(training))
    from hf_vocos.conversion import configs_from_original

    with pytest.raises(ConversionError, match="encodec_48khz.*not supported"):
        configs_from_original(read_original_config(tmp_path / "config.yaml"))


# ---------------------------------------------------------------------------------------------------------------------
# community checkpoints: the shapes their config.yaml files have, random weights, small sizes

COMMUNITY = {
    # BSC-LT/vocos-mel-22khz and others trained with the `matcha` fork of vocos: its config.yaml
    "fork-22khz": MEL_SPECS["mel-22khz"][0],
    # a 44.1 kHz model trained with the fork (f_max stated up to Nyquist)
    "fork-44khz": {
        "sample_rate": 44100,
        "n_fft": 2048,
        "hop_length": 512,
        "n_mels": 128,
        "padding": "center",
        "f_min": 0,
        "f_max": 22050,
        "norm": "slaney",
        "mel_scale": "slaney",
    },
    # ZhangRC/vocos-audioset-32khz: the original vocos 0.1.0
    "original-32khz": {"sample_rate": 32000, "n_fft": 2048, "hop_length": 1024, "n_mels": 128, "padding": "center"},
    # a 16 kHz fine-tune with the original's code
    "original-16khz": {"sample_rate": 16000, "n_fft": 1024, "hop_length": 256, "n_mels": 100, "padding": "center"},
}
SMALL = {"dim": 64, "intermediate_dim": 192, "num_layers": 2}


def original_mel_checkpoint(folder: Path, features: dict, sizes: dict, seed: int = 0, extra=None):
    """An original-format mel folder (config.yaml `features` + sizes), random weights, the mel buffers as torchaudio
    (float32) makes them; returns (original model, folder)."""
    basic = {key: features[key] for key in ("sample_rate", "n_fft", "hop_length", "n_mels", "padding")}
    model = build_mel_vocos(seed=seed, **basic, **sizes)
    buffers = mel_buffers(
        features["sample_rate"],
        features["n_fft"],
        features["n_mels"],
        features.get("f_min", 0.0),
        features.get("f_max"),
        features.get("norm"),
        features.get("mel_scale", "htk"),
    )
    save_original_checkpoint(model, folder, mel_config_yaml(features, **sizes), {**buffers, **(extra or {})})
    return model, folder


def _community_checkpoint(folder: Path, name: str, seed: int = 0):
    """An original-format folder of the `COMMUNITY` config `name`, small sizes."""
    return original_mel_checkpoint(folder, COMMUNITY[name], SMALL, seed)


@pytest.mark.parametrize("name", sorted(COMMUNITY))
def test_community_checkpoints_give_the_originals_audio_from_their_own_mel(tmp_path, name, capsys):
    """Each converts; the converted processor + model give what the original gives from the mel its training code
    computes (the fork's: its f_min/f_max/norm/mel_scale and the 1e-5 floor), silence included."""
    original, folder = _community_checkpoint(tmp_path / "in", name)
    assert cli.main(["--input", str(folder), "--output", str(tmp_path / "out"), "--license", "mit"]) == 0
    capsys.readouterr()
    features = COMMUNITY[name]
    fork = "f_min" in features
    floor = 1e-5 if fork else 1e-7
    processor = VocosProcessor.from_pretrained(tmp_path / "out")
    model = VocosModel.from_pretrained(tmp_path / "out").eval()
    extractor = processor.feature_extractor
    assert extractor.log_floor == floor and extractor.padding_value == pytest.approx(np.log(floor))
    assert f"clamped at {floor:g}" in (tmp_path / "out" / "README.md").read_text()

    rate = features["sample_rate"]
    audio = np.concatenate([speech_like(rate, rate, seed=3), np.zeros(rate // 2, np.float32)])
    theirs = vocos_log_mel(
        torch.from_numpy(audio)[None],
        **{key: value for key, value in features.items() if key != "sample_rate"},
        sample_rate=rate,
        clip_val=floor,
    )
    inputs = processor(audio=audio, sampling_rate=rate, return_tensors="pt")
    ours = inputs["input_features"]
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=0, atol=1e-4)
    silent = theirs[0, :, -4:]
    assert torch.all(silent == np.float32(np.log(floor))) and torch.equal(ours[0, :, -4:], silent)
    with torch.no_grad():
        ours_audio = model(**inputs).audio[0]
    expected = decode_features(original, theirs)[0]
    np.testing.assert_allclose(ours_audio.numpy(), expected.numpy(), rtol=0, atol=1e-4)


def test_a_stated_clip_val_is_the_log_floor(tmp_path):
    features = {**COMMUNITY["fork-22khz"], "clip_val": 1e-4}
    model = build_mel_vocos(
        seed=1, **{k: features[k] for k in ("sample_rate", "n_fft", "hop_length", "n_mels", "padding")}, **SMALL
    )
    buffers = mel_buffers(22050, 1024, 80, 0, 8000, "slaney", "slaney")
    folder = save_original_checkpoint(model, tmp_path / "in", mel_config_yaml(features, **SMALL), buffers)
    assert VocosProcessor.from_pretrained(folder).feature_extractor.log_floor == 1e-4
    # the original's config with clip_val, without the fork's arguments
    plain = {key: value for key, value in COMMUNITY["original-16khz"].items()}
    model = build_mel_vocos(seed=1, **plain, **SMALL)
    folder = save_original_checkpoint(
        model, tmp_path / "plain", mel_config_yaml({**plain, "clip_val": 1e-5}, **SMALL), mel_buffers(16000, 1024, 100)
    )
    assert VocosProcessor.from_pretrained(folder).feature_extractor.log_floor == 1e-5
    config = mel_config_yaml({**plain, "clip_val": -1}, **SMALL)
    save_original_checkpoint(model, tmp_path / "bad", config)
    with pytest.raises(ConversionError, match="clip_val must be a positive number, got -1"):
        read_original_config(tmp_path / "bad" / "config.yaml")


def test_log_floor_by_hand_moves_the_padding_value_everywhere(tmp_path, capsys):
    _, folder = _community_checkpoint(tmp_path / "in", "original-16khz")
    # an original-format folder
    processor = VocosProcessor.from_pretrained(folder, log_floor=1e-5)
    assert processor.feature_extractor.log_floor == 1e-5
    assert processor.feature_extractor.padding_value == pytest.approx(np.log(1e-5))
    # a saved processor; padded frames of a ragged batch still look like silence
    VocosProcessor.from_pretrained(folder).save_pretrained(tmp_path / "saved")
    extractor = VocosFeatureExtractor.from_pretrained(tmp_path / "saved", log_floor=1e-5)
    batch = extractor([speech_like(16000, 16000), speech_like(8000, 16000)], sampling_rate=16000)
    short = int(batch["attention_mask"][1].sum())
    assert np.all(batch["input_features"][1, :, short:] == np.float32(np.log(1e-5)))
    # a padding value set on purpose stays
    extractor = VocosFeatureExtractor.from_pretrained(tmp_path / "saved", log_floor=1e-5, padding_value=0.0)
    assert extractor.padding_value == 0.0
    # the CLI
    wav = tmp_path / "a.wav"
    import soundfile

    soundfile.write(wav, np.concatenate([speech_like(16000, 16000), np.zeros(4000, np.float32)]), 16000)
    from hf_vocos.cli import main

    assert (
        main(["analyze", str(wav), "-o", str(tmp_path / "mel"), "--model", str(folder), "--log-floor", "1e-5", "-q"])
        == 0
    )
    mel = np.load(tmp_path / "mel" / "a.npy")
    assert mel.min() == np.float32(np.log(1e-5))
    assert (
        main(["analyze", str(wav), "-o", str(tmp_path / "bad"), "--model", str(folder), "--log-floor", "0", "-q"]) != 0
    )
    assert "`log_floor` must be a positive number, got 0.0" in capsys.readouterr().err


def test_lightning_and_safetensors_weights(tmp_path, capsys):
    from safetensors.torch import save_file

    original, folder = _community_checkpoint(tmp_path / "base", "fork-22khz")
    weights = torch.load(folder / "pytorch_model.bin", weights_only=True)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    expected = decode_features(original, torch.randn(1, 80, 40, generator=torch.Generator().manual_seed(0)))

    def converted_audio(input_folder, *extra):
        output = tmp_path / ("out-" + input_folder.name)
        argv = ["--input", str(input_folder), "--output", str(output), "--overwrite", *extra]
        assert cli.main(argv) == 0, capsys.readouterr()
        features = torch.randn(1, 80, 40, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            return VocosModel.from_pretrained(output)(input_features=features).audio

    # a Lightning training checkpoint: the generator under state_dict, discriminators and optimizer beside it
    lightning = tmp_path / "lightning"
    lightning.mkdir()
    (lightning / "config.yaml").write_text(yaml.safe_dump({"model": {"init_args": config}}))
    torch.save(
        {
            "epoch": 3,
            "global_step": 1200,
            "pytorch-lightning_version": "1.8.6",
            "state_dict": {**weights, "multiperioddisc.discriminators.0.convs.0.weight": torch.zeros(2, 1, 5, 1)},
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 5e-4}]}],
            "hyper_parameters": {"sample_rate": 22050, "initial_learning_rate": 5e-4},
        },
        lightning / "last.ckpt",
    )
    torch.testing.assert_close(converted_audio(lightning), expected, rtol=0, atol=1e-5)
    # several .ckpt files: name one
    torch.save({"state_dict": {}}, lightning / "epoch=1.ckpt")
    torch.testing.assert_close(converted_audio(lightning, "--weights", "last.ckpt"), expected, rtol=0, atol=1e-5)

    # a safetensors file, under its own name or renamed to pytorch_model.bin
    for name in ("vocos.safetensors", "pytorch_model.bin"):
        shipped = tmp_path / name.replace(".", "-")
        shipped.mkdir()
        (shipped / "config.yaml").write_text(yaml.safe_dump(config))
        save_file({key: value.contiguous() for key, value in weights.items()}, shipped / name)
        torch.testing.assert_close(converted_audio(shipped), expected, rtol=0, atol=1e-5)
        with torch.no_grad():  # on the fly too
            on_the_fly = VocosModel.from_pretrained(shipped)(
                input_features=torch.randn(1, 80, 40, generator=torch.Generator().manual_seed(0))
            ).audio
        torch.testing.assert_close(on_the_fly, expected, rtol=0, atol=1e-5)

    # a truncated safetensors file is named as such
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.yaml").write_text(yaml.safe_dump(config))
    data = (tmp_path / "vocos-safetensors" / "vocos.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    assert cli.main(["--input", str(broken), "--output", str(tmp_path / "no")]) == 1
    assert "model.safetensors: a safetensors file that cannot be read" in capsys.readouterr().err


class _Marker:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ.get("TMPDIR", "/tmp")) / "hf_vocos_unpickled_marker",))


def test_a_ckpt_with_pickled_objects_is_refused_without_unpickling(tmp_path, capsys):
    marker = Path(os.environ.get("TMPDIR", "/tmp")) / "hf_vocos_unpickled_marker"
    marker.unlink(missing_ok=True)
    _, folder = _community_checkpoint(tmp_path / "base", "original-16khz")
    weights = torch.load(folder / "pytorch_model.bin", weights_only=True)
    (folder / "pytorch_model.bin").unlink()
    torch.save({"state_dict": weights, "callbacks": {"EarlyStopping": _Marker()}}, folder / "last.ckpt")
    assert cli.main(["--input", str(folder), "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "last.ckpt: refusing to unpickle it: it holds a Python object" in err and "state_dict" in err
    assert not marker.exists(), "the pickled object was executed"
    with pytest.raises(ValueError, match="refusing to unpickle it"):
        VocosModel.from_pretrained(folder)
    assert not marker.exists()


def test_unknown_formats_get_every_reason_at_once(tmp_path, capsys):
    from safetensors.torch import save_file

    _, folder = _community_checkpoint(tmp_path / "base", "original-16khz")
    config = yaml.safe_load((folder / "config.yaml").read_text())

    # a WaveNext head on a WavTokenizer-style module tree, weights under other names
    wavenext = tmp_path / "wavenext"
    wavenext.mkdir()
    changed = yaml.safe_load(yaml.safe_dump(config))
    changed["head"]["class_path"] = "vocos.heads.WaveNextHead"
    changed["feature_extractor"]["class_path"] = "decoder.feature_extractors.EncodecFeatures"
    (wavenext / "config.yaml").write_text(yaml.safe_dump(changed))
    torch.save({"decoder.backbone.embed.weight": torch.zeros(2)}, wavenext / "wavtokenizer.ckpt")
    # an MLX port: config.json, channels-last weights under MLX names
    mlx = tmp_path / "mlx"
    mlx.mkdir()
    (mlx / "config.json").write_text(json.dumps({"dim": 512, "n_fft": 1024}))
    save_file({"blocks.0.conv.weight": torch.zeros(4, 7, 1)}, mlx / "model.safetensors")

    for input_folder, reasons in (
        (
            wavenext,
            [
                "unknown feature_extractor class 'decoder.feature_extractors.EncodecFeatures'",
                "unknown head class 'vocos.heads.WaveNextHead'",
                "no weight has a Vocos name",
            ],
        ),
        (mlx, ["config.yaml: no such file", "no weight has a Vocos name", "has a config.json and no config.yaml"]),
    ):
        assert cli.main(["--input", str(input_folder), "--output", str(tmp_path / "out")]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{len(reasons)} problems" in err[0], err
        for reason in reasons:
            assert reason in err[0], (reason, err[0])


SAMPLE_RATES = (16000, 22050, 24000, 32000, 44100, 48000)


def test_genuine_filterbanks_pass_and_other_mel_settings_are_named():
    """torchaudio's float32 filters of every common setting pass the check (21 of these 54 were refused at 1e-5);
    filters of other settings are refused, with the settings they match."""
    from hf_vocos.checkpoint_formats import check_mel_buffers

    for rate in SAMPLE_RATES:
        for n_mels in (80, 100, 128):
            for n_fft in (512, 1024, 2048):
                extractor = VocosFeatureExtractor(
                    feature_size=n_mels, sampling_rate=rate, n_fft=n_fft, hop_length=n_fft // 4
                )
                check_mel_buffers(mel_buffers(rate, n_fft, n_mels), extractor, "ckpt")
                slaney = VocosFeatureExtractor(
                    feature_size=n_mels,
                    sampling_rate=rate,
                    n_fft=n_fft,
                    hop_length=n_fft // 4,
                    f_max=8000.0,
                    mel_norm="slaney",
                    mel_scale="slaney",
                )
                check_mel_buffers(mel_buffers(rate, n_fft, n_mels, 0, 8000, "slaney", "slaney"), slaney, "ckpt")
    extractor = VocosFeatureExtractor(feature_size=80, sampling_rate=22050)
    with pytest.raises(
        ConversionError, match="it matches f_min: 0, f_max: 8000, norm: slaney, mel_scale: slaney: state these"
    ):
        check_mel_buffers(mel_buffers(22050, 1024, 80, 0, 8000, "slaney", "slaney"), extractor, "ckpt")
    with pytest.raises(ConversionError, match="mel settings config.yaml does not state"):
        check_mel_buffers(mel_buffers(22050, 1024, 80, 20.0, 7600), extractor, "ckpt")


def test_original_config_values_are_typed_as_the_original_signature_says(tmp_path):
    """YAML 1.1 reads `1e-5` as a string: a float argument takes a numeric string as the original's typed config does;
    a value of the wrong type is named by its yaml key."""
    features = {"sample_rate": 24000, "n_fft": 1024, "hop_length": 256, "n_mels": 100, "padding": "center"}

    def read(feature_args, **sizes):
        folder = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        (folder / "config.yaml").write_text(yaml.safe_dump(mel_config_yaml(feature_args, **{**SMALL, **sizes})))
        return read_original_config(folder / "config.yaml")

    (folder_text := tmp_path / "yaml11").mkdir()
    config = yaml.safe_dump(mel_config_yaml({**features, "clip_val": 1.0}, **SMALL)).replace(
        "clip_val: 1.0", "clip_val: 1e-5"
    )
    (folder_text / "config.yaml").write_text(config)
    assert yaml.safe_load(config)["feature_extractor"]["init_args"]["clip_val"] == "1e-5"  # YAML 1.1: a string
    assert read_original_config(folder_text / "config.yaml")["feature_extractor"]["init_args"]["clip_val"] == 1e-5
    with pytest.raises(
        ConversionError, match=r"the yaml key `feature_extractor.init_args.f_min` must be a number, got 'abc'"
    ):
        read({**features, "f_min": "abc"})
    with pytest.raises(
        ConversionError, match=r"`feature_extractor.init_args.n_mels` must be a whole number, got '100' \(str\)"
    ):
        read({**features, "n_mels": "100"})
    with pytest.raises(
        ConversionError, match=r"the yaml key `backbone.init_args.dim` must be a whole number, got 32.0"
    ):
        read(features, dim=32.0)


def test_two_checkpoint_files_are_named(tmp_path):
    folder = tmp_path / "two"
    folder.mkdir()
    features = {"sample_rate": 24000, "n_fft": 1024, "hop_length": 256, "n_mels": 100, "padding": "center"}
    (folder / "config.yaml").write_text(yaml.safe_dump(mel_config_yaml(features, **SMALL)))
    for name in ("epoch=1.ckpt", "last.ckpt"):
        torch.save({"state_dict": {}}, folder / name)
    with pytest.raises(
        ConversionError, match=r"2 weight files could be the checkpoint \(epoch=1.ckpt, last.ckpt\).*--weights"
    ):
        VocosModel.from_pretrained(folder)
