#!/usr/bin/env python
"""Convert an original Vocos checkpoint (the `vocos` package's `config.yaml` + `pytorch_model.bin`) to hf_vocos.

    python conversion_scripts/convert_original_vocos.py --input charactr/vocos-mel-24khz --output vocos-mel-24khz
    python conversion_scripts/convert_original_vocos.py --input charactr/vocos-encodec-24khz \\
        --output vocos-encodec-24khz \\
        --encodec-checkpoint encodec_24khz-d7cc33bc.th --verify --push-to-hub me/vocos-encodec-24khz

`--input` is a local folder or a Hub repository id (downloaded through the Hub cache, so offline runs work from a
filled cache). The output folder gets `config.json`, `model.safetensors` (the Hub's format), the processor's files
(`preprocessor_config.json` for mel models, `processor_config.json` for EnCodec ones, plus `audio_tokenizer/` when
converted with `--encodec-checkpoint`) and a model card `README.md`; it is
written to a temporary folder beside it and moved into place only when everything succeeded. Any problem stops the
script with one line on stderr and exit code 1. See docs/conversion.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from hf_vocos import VocosModel
from hf_vocos.conversion import (
    ORIGINAL_CONFIG_NAME,
    ORIGINAL_WEIGHTS_NAME,
    ORIGINAL_WEIGHTS_NAMES,
    ConversionError,
    convert_original_checkpoint,
    original_weights_in,
    verify_against_original,
)
from hf_vocos.sharing import model_card, source_license, with_remote_code

VERIFY_TOLERANCE = 1e-4


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", required=True, help="original checkpoint: a folder or a Hub repository id")
    parser.add_argument("--output", required=True, help="folder to write the hf_vocos checkpoint to")
    parser.add_argument(
        "--encodec-checkpoint",
        help="the encodec package's 24 kHz state dict (encodec_24khz-*.th), converted for the processor; without "
        "it an EnCodec checkpoint's processor loads facebook/encodec_24khz from the Hub",
    )
    parser.add_argument(
        "--weights",
        metavar="FILE",
        help="the weights file in --input (default: pytorch_model.bin, model.safetensors, or the folder's only "
        ".safetensors or Lightning .ckpt)",
    )
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="also push model, processor and card to this repo")
    parser.add_argument(
        "--verify",
        action="store_true",
        help=f"decode a test signal with the converted and the original model and fail above {VERIFY_TOLERANCE:g}",
    )
    parser.add_argument("--license", help="license for the model card (default: the source model card's)")
    parser.add_argument("--revision", help="revision of a Hub --input")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --output")
    parser.add_argument(
        "--no-code",
        dest="with_code",
        action="store_false",
        help="do not write the model code into the checkpoint (by default it is, so that plain transformers loads it "
        "with trust_remote_code=True)",
    )
    return parser.parse_args(argv)


def resolve_input(
    name_or_path: str, revision: str | None, weights_name: str | None = None
) -> tuple[Path, Path | None, Path | None]:
    """(config.yaml, the weights file or None, README.md or None) of a local folder or a Hub repository. The weights
    are `weights_name` if given, else pytorch_model.bin, model.safetensors, or a folder's only .safetensors/.ckpt."""
    folder = Path(name_or_path)
    if folder.is_dir():
        readme = folder / "README.md"
        weights = original_weights_in(folder, weights_name)
        return folder / ORIGINAL_CONFIG_NAME, weights, readme if readme.is_file() else None
    if folder.exists():
        raise ConversionError(f"--input {name_or_path}: a file; expected a folder or a Hub repository id")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    errors = (EntryNotFoundError, LocalEntryNotFoundError, HfHubHTTPError, ValueError, OSError)

    def download(filename: str) -> Path:
        return Path(hf_hub_download(name_or_path, filename, revision=revision))

    candidates = [weights_name] if weights_name else list(ORIGINAL_WEIGHTS_NAMES)
    try:
        config = download(ORIGINAL_CONFIG_NAME)
        for number, candidate in enumerate(candidates, 1):
            try:
                weights = download(candidate)
                break
            except errors:
                if number == len(candidates):
                    raise
    except errors as error:
        wanted = weights_name or ORIGINAL_WEIGHTS_NAME
        raise ConversionError(
            f"--input {name_or_path}: no such folder, and no {ORIGINAL_CONFIG_NAME} + {wanted} on the "
            f"Hub or in its cache ({type(error).__name__})"
        ) from None
    try:
        readme = download("README.md")
    except (EntryNotFoundError, LocalEntryNotFoundError, HfHubHTTPError, OSError):
        readme = None
    return config, weights, readme


def check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise ConversionError(f"--output {output}: exists and is not a folder")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise ConversionError(f"--output {output}: exists and is not empty (pass --overwrite to replace it)")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConversionError(f"--output {output}: cannot create its parent folder ({error.strerror})") from None
    if not os.access(output.parent, os.W_OK):
        raise ConversionError(f"--output {output}: its parent folder is not writable")


def convert(args: argparse.Namespace) -> Path:
    output = Path(args.output)
    check_output(output, args.overwrite)
    config_path, weights_path, readme = resolve_input(args.input, args.revision, args.weights)
    model, processor = convert_original_checkpoint(config_path, weights_path, args.encodec_checkpoint)
    license = args.license or source_license(readme)
    if license is None:
        print(f"warning: no license found for {args.input}; pass --license for the model card", file=sys.stderr)

    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    try:
        with with_remote_code() if args.with_code else contextlib.nullcontext():
            model.save_pretrained(staging)
            processor.save_pretrained(staging)
        card = model_card(
            model.config, processor.feature_extractor, args.input, license, args.push_to_hub, args.with_code
        )
        (staging / "README.md").write_text(card, encoding="utf-8")
        if args.verify:
            try:
                # Verify what was written, loaded back, not the object in memory.
                reloaded = VocosModel.from_pretrained(staging).eval()
                cases = verify_against_original(reloaded, processor.feature_extractor, config_path, weights_path)
            except ImportError as error:
                raise ConversionError(f"--verify needs the original implementation: {error}") from None
            for case, difference in cases.items():
                print(f"verify: {case}: max abs difference {difference:.3g}")
            worst = max(cases.values())
            if not worst <= VERIFY_TOLERANCE:
                raise ConversionError(f"--verify: max abs difference {worst:.3g} exceeds {VERIFY_TOLERANCE:g}")
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    if args.push_to_hub:
        with with_remote_code() if args.with_code else contextlib.nullcontext():
            push(model, processor, output, args.push_to_hub)
    return output


def push(model, processor, folder: Path, repo_id: str) -> None:
    """Push with the standard `push_to_hub` of model and processor, then the model card, which theirs would replace."""
    from huggingface_hub import HfApi

    model.push_to_hub(repo_id, commit_message="Upload Vocos model (converted from the original checkpoint)")
    processor.push_to_hub(repo_id, commit_message="Upload Vocos processor")
    HfApi().upload_file(
        path_or_fileobj=str(folder / "README.md"),
        path_in_repo="README.md",
        repo_id=repo_id,
        commit_message="Model card",
    )
    print(f"pushed to https://huggingface.co/{repo_id}")


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        output = convert(args)
    except ConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"converted {args.input} -> {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
