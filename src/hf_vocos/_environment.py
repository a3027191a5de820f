"""Checks `import hf_vocos` runs first, so that a known-broken environment fails with one message saying what is wrong
and how to fix it, instead of a traceback from deep inside transformers.

Two common cases:
- a torchaudio or torchcodec that is installed but cannot load (built for another torch, or a CUDA build next to the
  CPU torch). transformers imports torchaudio whenever the package exists (`transformers.audio_utils`), which breaks
  `SequenceFeatureExtractor` and `ProcessorMixin`, and so hf_vocos, although hf_vocos never uses either package;
- a transformers older than the one hf_vocos is written for.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util

from packaging.version import Version

MIN_TRANSFORMERS = "5.23"
AUDIO_BACKENDS = ("torchaudio", "torchcodec")


class BrokenEnvironmentError(ImportError):
    """The environment cannot run hf_vocos; the message says why and how to fix it."""


def check_transformers(version: str | None = None) -> None:
    version = version or importlib.metadata.version("transformers")
    if Version(version) < Version(MIN_TRANSFORMERS):
        raise BrokenEnvironmentError(
            f"hf_vocos needs transformers >= {MIN_TRANSFORMERS}, but transformers {version} is installed. "
            f"Fix: pip install -U 'transformers>={MIN_TRANSFORMERS},<6'"
        )


def check_audio_backends() -> None:
    """Import torchaudio/torchcodec if installed, as transformers will; turn a failure into one clear message."""
    for name in AUDIO_BACKENDS:
        if importlib.util.find_spec(name) is None:
            continue
        try:
            importlib.import_module(name)
        except Exception as error:  # a broken binary raises OSError, ImportError, RuntimeError, ...
            raise BrokenEnvironmentError(_broken_backend_message(name, error)) from None


def _broken_backend_message(name: str, error: BaseException) -> str:
    try:
        installed = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        installed = "(unknown version)"
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "(not installed)"
    reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
    return (
        f"{name} {installed} is installed but cannot be loaded with torch {torch_version} "
        f"({type(error).__name__}: {reason}). transformers imports {name} whenever it is installed, so its audio "
        f"classes (and hf_vocos) fail to import; hf_vocos itself never uses {name}. "
        f"Fix: pip uninstall -y {name}  (or install the {name} build made for torch {torch_version})"
    )


def check_environment() -> None:
    check_transformers()
    check_audio_backends()
