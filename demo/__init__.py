"""The demo behind `make demo` (`python -m demo`, from the repository root): resynthesise a short speech clip and
show how close the result is to it.

It uses the released `hf-audio/vocos-mel-24khz` when the Hugging Face Hub has it (from the local cache, or downloaded
when the Hub is reachable), and otherwise the small model beside this file (`BUNDLED_MODEL`, trained on this
machine's synthetic speech: see docs/demo-model.md), saying which. It writes the audio and a picture of the input and
output spectrograms, and prints the log-mel L1 and multi-resolution STFT distances to the input.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

__all__ = ["BUNDLED_MODEL", "DEMO_CLIP", "HUB_MODEL", "load_demo_model", "main"]

HERE = Path(__file__).resolve().parent
BUNDLED_MODEL = HERE / "vocos-mel-24khz-demo"
DEMO_CLIP = HERE / "speech.flac"
HUB_MODEL = "hf-audio/vocos-mel-24khz"


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether huggingface.co answers within `timeout` seconds (and offline mode is not set)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def load_demo_model(name: str = HUB_MODEL):
    """(model, processor, where it came from): `name` from the Hub cache or the Hub, else the bundled model."""
    from hf_vocos import VocosModel, VocosProcessor

    reasons = []
    for local_only in (True, False):
        if not local_only and not hub_reachable():
            reasons.append("the Hub is not reachable")
            break
        try:
            model = VocosModel.from_pretrained(name, local_files_only=local_only)
            processor = VocosProcessor.from_pretrained(name, local_files_only=local_only)
            return model.eval(), processor, f"{name} ({'local cache' if local_only else 'downloaded from the Hub'})"
        except (OSError, ValueError) as error:
            reasons.append(f"{'not in the local cache' if local_only else f'cannot load it: {error}'}")
    model = VocosModel.from_pretrained(BUNDLED_MODEL).eval()
    processor = VocosProcessor.from_pretrained(BUNDLED_MODEL)
    return model, processor, f"the bundled demo model ({name}: {'; '.join(reasons)})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n")[0])
    parser.add_argument("--input", default=str(DEMO_CLIP), help="speech to resynthesise (default: the bundled clip)")
    parser.add_argument("--output", default="demo_out.wav", help="where to write the audio (a .png goes beside it)")
    parser.add_argument("--model", default=HUB_MODEL, help=f"model to try first (default {HUB_MODEL})")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from hf_vocos.audio_io import load_audio, resample, save_audio, to_mono
    from hf_vocos.training.metrics import audio_metrics

    started = time.perf_counter()
    model, processor, source = load_demo_model(args.model)
    print(f"model: {source}")
    audio, rate = load_audio(args.input)
    audio = resample(to_mono(audio)[0], rate, model.config.sampling_rate)
    inputs = processor(audio=audio, sampling_rate=model.config.sampling_rate)
    with torch.no_grad():
        output = model(**inputs).audio[0].numpy()
    output_path = Path(args.output)
    save_audio(output_path, output, model.config.sampling_rate, subtype="PCM_16")
    metrics = audio_metrics(audio, output, model.config.sampling_rate, processor.feature_extractor)
    print(f"input: {args.input} ({len(audio) / model.config.sampling_rate:.2f} s)")
    print(f"wrote {output_path} ({len(output) / model.config.sampling_rate:.2f} s at {model.config.sampling_rate} Hz)")
    try:
        from hf_vocos.plotting import plot_panels

        extractor = processor.feature_extractor
        picture = plot_panels(
            output_path.with_suffix(".png"),
            [
                ("input (log-mel)", inputs["input_features"][0].numpy(), "mel bin"),
                (
                    f"output (log-mel): {source.split(' (')[0]}",
                    extractor(output, sampling_rate=extractor.sampling_rate)["input_features"][0],
                    "mel bin",
                ),
            ],
        )
        print(f"wrote {picture}")
    except ImportError:
        print("(no picture: matplotlib is not installed)")
    print(
        f"log-mel L1 to the input: {metrics['log_mel_l1']:.3f}   multi-resolution STFT distance: "
        f"{metrics['mrstft']:.3f}"
    )
    for name in ("pesq_wb", "stoi"):
        if name in metrics and np.isfinite(metrics[name]):
            print(f"{name}: {metrics[name]:.2f}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
