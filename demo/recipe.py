"""How the bundled demo model was made, runnable end to end (development time; needs Debian's espeak-ng and sox, and
`pip install "hf_vocos[train]"`). docs/demo-model.md reports the run.

    python -m demo.recipe data --output demo-data           # synthetic speech corpus (espeak-ng + sox)
    python -m demo.recipe train --data demo-data --output demo-run --max-steps 20000
    python -m demo.recipe evaluate --model demo-run/model --data demo-data [--real path/to/vocos-demo-samples]
    python -m demo.recipe finetune --model demo-run/model --data demo-data --output demo-finetune

The corpus is speech this machine can produce: espeak-ng reading sentences taken from text already on it (license
texts and Python's own docstrings) with 8 English voices and about 90 voice variants, at random rates and pitches,
plus some other-language voices reading the same text and some sox-made signals (sweeps, plucked tones, noise) for
spectral variety. Splits: `train`; `validation` (other sentences, seen voices); `unseen` (other sentences, voice
variants never trained on); `voice_train` / `voice_test` (one held-out variant, for the fine-tuning experiment).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ENGLISH_VOICES = [
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
]
OTHER_VOICES = ["de", "fr", "es", "it", "nl", "pt", "sv", "pl"]
UNSEEN_VARIANTS = ["Annie", "Storm", "grandma", "klatt4"]  # never in train; Annie is also the fine-tuning voice
FINETUNE_VARIANT = "Annie"


def sentences(seed: int = 0) -> list[str]:
    """English sentences from text shipped with the machine: license texts and Python's stdlib docstrings."""
    texts = [path.read_text(errors="ignore") for path in Path("/usr/share/common-licenses").glob("*") if path.is_file()]
    import importlib
    import inspect
    import pkgutil
    import sysconfig

    # The standard library's own folder only: importing whatever else is on sys.path could run anything.
    for module_info in pkgutil.iter_modules([sysconfig.get_paths()["stdlib"]]):
        if module_info.name.startswith("_") or module_info.name in (
            "antigravity",
            "this",
            "idlelib",
            "tkinter",
            "turtle",
            "pydoc",
        ):
            continue
        try:
            module = importlib.import_module(module_info.name)
        except Exception:  # some stdlib modules do not import here; their docstrings are not needed
            continue
        for _, value in inspect.getmembers(module):
            if (inspect.isfunction(value) or inspect.isclass(value)) and isinstance(value.__doc__, str):
                texts.append(value.__doc__)
    found = set()
    for text in texts:
        for sentence in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", text)):
            sentence = sentence.strip()
            words = sentence.split()
            if 6 <= len(words) <= 24 and re.fullmatch(r"[A-Za-z ,;:'()-]+[.!?]", sentence):
                found.add(sentence)
    ordered = sorted(found)
    random.Random(seed).shuffle(ordered)
    return ordered


def variants() -> list[str]:
    listing = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True).stdout
    return sorted(set(re.findall(r"!v/(\S+)", listing)))


def speak(text: str, voice: str, path: Path, speed: int, pitch: int) -> None:
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), text],
        check=True,
        capture_output=True,
    )


def sox_signal(path: Path, rng: random.Random) -> None:
    """A non-speech signal: a sine or square sweep, a plucked tone sequence, or coloured noise with an envelope."""
    seconds = rng.uniform(1.0, 3.0)
    kind = rng.choice(["sweep", "pluck", "noise"])
    if kind == "sweep":
        low, high = rng.uniform(60, 400), rng.uniform(800, 9000)
        synth = ["synth", f"{seconds:.2f}", rng.choice(["sine", "square", "sawtooth"]), f"{low:.0f}-{high:.0f}"]
    elif kind == "pluck":
        synth = ["synth", f"{seconds:.2f}", "pluck", rng.choice(["A2", "C3", "E3", "G3", "A3", "C4", "E4"])]
    else:
        synth = ["synth", f"{seconds:.2f}", rng.choice(["pinknoise", "brownnoise", "whitenoise"])]
    effects = ["fade", "q", "0.05", f"{seconds:.2f}", "0.3", "gain", f"{rng.uniform(-20, -6):.1f}"]
    subprocess.run(
        ["sox", "-n", "-r", "24000", "-c", "1", "-b", "16", str(path), *synth, *effects],
        check=True,
        capture_output=True,
    )


def make_corpus(output: Path, train_utterances: int, seed: int = 0) -> dict:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        raise SystemExit("the demo corpus needs espeak-ng and sox: apt-get install espeak-ng sox")
    rng = random.Random(seed)
    texts = sentences(seed)
    all_variants = [v for v in variants() if v not in UNSEEN_VARIANTS]
    counts = {"train": train_utterances, "validation": 48, "unseen": 48, "voice_train": 160, "voice_test": 24}
    # Every held-out split gets sentences of its own; train reads the rest, each sentence in several voices.
    held_out = sum(count for split, count in counts.items() if split != "train")
    if len(texts) < held_out + 200:
        raise SystemExit(f"only {len(texts)} sentences found")
    train_texts, used = texts[held_out:], 0
    jobs = []
    for split, count in counts.items():
        for index in range(count):
            if split == "train":
                text = train_texts[index % len(train_texts)]
            else:
                text = texts[used]
                used += 1
            if split in ("voice_train", "voice_test"):
                voice, speed, pitch = f"en-us+{FINETUNE_VARIANT}", 160, 50  # one fixed voice
            elif split == "unseen":
                voice = (
                    f"{rng.choice(ENGLISH_VOICES)}+{rng.choice([v for v in UNSEEN_VARIANTS if v != FINETUNE_VARIANT])}"
                )
                speed, pitch = rng.randint(130, 190), rng.randint(25, 75)
            else:
                language = rng.choice(ENGLISH_VOICES) if rng.random() < 0.85 else rng.choice(OTHER_VOICES)
                voice = f"{language}+{rng.choice(all_variants)}" if rng.random() < 0.8 else language
                speed, pitch = rng.randint(120, 200), rng.randint(20, 80)
            jobs.append((split, index, text, voice, speed, pitch))
    for split in counts:
        (output / split).mkdir(parents=True, exist_ok=True)
    manifest = []

    def run(job):
        split, index, text, voice, speed, pitch = job
        path = output / split / f"{index:05d}.wav"
        speak(text, voice, path, speed, pitch)
        return {
            "split": split,
            "file": str(path.relative_to(output)),
            "voice": voice,
            "speed": speed,
            "pitch": pitch,
            "text": text,
        }

    with ThreadPoolExecutor(max_workers=4) as pool:
        manifest = list(pool.map(run, jobs))
    noise_rng = random.Random(seed + 1)
    for index in range(train_utterances // 20):  # 5% non-speech signals in train
        path = output / "train" / f"sox{index:04d}.wav"
        sox_signal(path, noise_rng)
        manifest.append({"split": "train", "file": str(path.relative_to(output)), "voice": "sox", "text": ""})
    (output / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return {split: sum(1 for row in manifest if row["split"] == split) for split in counts}


# --------------------------------------------------------------------------------------------------------------------

DEMO_MODEL = {"hidden_size": 256, "intermediate_size": 768, "num_layers": 5}  # 2.4 M parameters, 9.7 MB


def train(data: Path, output: Path, max_steps: int, resume: bool, **overrides) -> None:
    from hf_vocos.training import TrainingConfig, VocosTrainer

    settings = dict(
        output_dir=str(output),
        train_data=str(data / "train"),
        validation_data=str(data / "validation"),
        model_config=DEMO_MODEL,
        losses=["mel", "mrstft"],
        discriminators=[],
        batch_size=16,
        crop_seconds=1.0,
        learning_rate=1e-3,
        warmup_steps=500,
        max_steps=max_steps,
        log_every=100,
        eval_every=2000,
        save_every=1000,
        validation_clips=16,
        resume_from="latest" if resume else None,
    )
    settings.update(overrides)
    VocosTrainer(TrainingConfig(**settings)).train()


def align(reference: np.ndarray, estimate: np.ndarray, max_lag: int) -> np.ndarray:
    """`estimate` shifted by the lag (within +-max_lag samples) that best correlates it with `reference`, cut or padded
    to its length: the demo page's MP3s carry different encoder delays (about 1100 samples at 24 kHz)."""
    size = 1 << int(np.ceil(np.log2(len(reference) + len(estimate))))
    correlation = np.fft.irfft(np.fft.rfft(reference, size) * np.conj(np.fft.rfft(estimate, size)), size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    lag = int(lags[np.argmax(np.concatenate([correlation[: max_lag + 1], correlation[-max_lag:]]))])
    shifted = estimate[-lag:] if lag < 0 else np.concatenate([np.zeros(lag, estimate.dtype), estimate])
    return np.pad(shifted, (0, max(0, len(reference) - len(shifted))))[: len(reference)]


def evaluate(model_path: str, data: Path, real: Path | None, clips: int = 48) -> dict:
    """Mean metrics of the model, Griffin-Lim (32 iterations, same mel) and, on the real clips, the released Vocos
    outputs stored beside them."""
    import torch

    from hf_vocos import VocosModel, VocosProcessor
    from hf_vocos.audio_io import load_audio, resample, to_mono
    from hf_vocos.training.metrics import audio_metrics, griffin_lim

    model = VocosModel.from_pretrained(model_path).eval()
    extractor = VocosProcessor.from_pretrained(model_path).feature_extractor
    rate = model.config.sampling_rate
    sets = {name: sorted((data / name).glob("*.wav"))[:clips] for name in ("validation", "unseen", "voice_test")}
    if real is not None:
        sets["real LibriTTS (mel gt)"] = sorted((real / "mel" / "gt").glob("*"))
        sets["real DAPS (encodec gt)"] = sorted((real / "encodec" / "gt").glob("*"))
    results = {}
    for name, files in sets.items():
        scores: dict[str, dict[str, list]] = {}
        for path in files:
            audio, source_rate = load_audio(path)
            reference = resample(to_mono(audio)[0], source_rate, rate)
            features = extractor(reference, sampling_rate=rate)["input_features"]
            with torch.no_grad():
                vocoded = model(input_features=torch.from_numpy(features)).audio[0].numpy()
            candidates = {"demo model": vocoded, "griffin-lim 32": griffin_lim(features[0], extractor)}
            if name.startswith("real LibriTTS"):
                released = real / "mel" / "vocos" / path.name
                if released.exists():
                    audio, released_rate = load_audio(released)
                    released_audio = resample(to_mono(audio)[0], released_rate, rate)
                    candidates["released vocos-mel-24khz"] = align(reference, released_audio, max_lag=rate // 10)
            for system, estimate in candidates.items():
                for metric, value in audio_metrics(reference, estimate, rate, extractor).items():
                    scores.setdefault(system, {}).setdefault(metric, []).append(value)
        results[name] = {
            system: {m: float(np.nanmean(v)) for m, v in metrics.items()} for system, metrics in scores.items()
        }
        results[name]["clips"] = len(files)
    return results


def finetune(model_path: str, data: Path, output: Path, max_steps: int) -> dict:
    """Fine-tune on one held-out voice (voice_train), report voice_test metrics before and after."""
    before = evaluate(model_path, data, None)["voice_test"]["demo model"]
    train(
        data,
        output,
        max_steps,
        resume=False,
        model=model_path,
        model_config={},
        train_data=str(data / "voice_train"),
        validation_data=str(data / "voice_test"),
        learning_rate=2e-4,
        warmup_steps=0,
        eval_every=max_steps,
        save_every=max_steps,
    )
    after = evaluate(str(output / "model"), data, None)["voice_test"]["demo model"]
    return {"before": before, "after": after}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data")
    data.add_argument("--output", required=True, type=Path)
    data.add_argument("--utterances", type=int, default=3000)
    run = commands.add_parser("train")
    run.add_argument("--data", required=True, type=Path)
    run.add_argument("--output", required=True, type=Path)
    run.add_argument("--max-steps", type=int, default=20000)
    run.add_argument("--resume", action="store_true")
    run.add_argument("--batch-size", type=int, default=16)
    run.add_argument(
        "--init", help="start from this model's weights (a fresh optimizer and schedule), e.g. a finished run"
    )
    run.add_argument("--learning-rate", type=float, help="peak learning rate (default 1e-3)")
    run.add_argument("--warmup-steps", type=int, help="warm-up steps (default 500)")
    run.add_argument("--max-time", type=float, help="seconds: stop early (checkpoint and model saved) after this long")
    run.add_argument(
        "--gan", action="store_true", help="add the multi-resolution discriminator (adversarial + feature matching)"
    )
    score = commands.add_parser("evaluate")
    score.add_argument("--model", required=True)
    score.add_argument("--data", required=True, type=Path)
    score.add_argument("--real", type=Path)
    tune = commands.add_parser("finetune")
    tune.add_argument("--model", required=True)
    tune.add_argument("--data", required=True, type=Path)
    tune.add_argument("--output", required=True, type=Path)
    tune.add_argument("--max-steps", type=int, default=1500)
    args = parser.parse_args()

    import logging

    handler = logging.StreamHandler(sys.stdout)
    logging.getLogger("hf_vocos").addHandler(handler)
    logging.getLogger("hf_vocos").setLevel(logging.INFO)
    if args.command == "data":
        print(json.dumps(make_corpus(args.output, args.utterances)))
    elif args.command == "train":
        extra = (
            {"losses": ["mel", "mrstft", "adversarial", "feature_matching"], "discriminators": ["mrd"]}
            if args.gan
            else {}
        )
        if args.init:
            extra.update(model=args.init, model_config={})
        overrides = {
            "learning_rate": args.learning_rate,
            "warmup_steps": args.warmup_steps,
            "max_time_seconds": args.max_time,
        }
        extra.update({name: value for name, value in overrides.items() if value is not None})
        train(args.data, args.output, args.max_steps, args.resume, batch_size=args.batch_size, **extra)
    elif args.command == "evaluate":
        print(json.dumps(evaluate(args.model, args.data, args.real), indent=2))
    else:
        print(json.dumps(finetune(args.model, args.data, args.output, args.max_steps), indent=2))


if __name__ == "__main__":
    main()
