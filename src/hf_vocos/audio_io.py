"""Reading, converting and writing audio for the command line and dataset tools: soundfile for decoding and encoding
(wav, flac, ogg, mp3, ...), soxr for resampling, and writes that never leave a truncated file."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = [
    "AUDIO_SUFFIXES",
    "AudioError",
    "atomic_write",
    "encode_wav",
    "find_files",
    "load_audio",
    "resample",
    "save_audio",
    "save_array",
    "to_mono",
]


# File suffixes searched for in input folders (formats soundfile decodes).
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".snd", ".w64", ".caf"}


def find_files(folder: str | os.PathLike, suffixes=AUDIO_SUFFIXES) -> list[Path]:
    """The files under `folder` (recursively) whose suffix, in any case, is one of `suffixes`, sorted."""
    return sorted(f for f in Path(folder).rglob("*") if f.is_file() and f.suffix.lower() in suffixes)


class AudioError(ValueError):
    """An input that cannot be read as audio; the message names it and why."""


def load_audio(source, name: str | None = None) -> tuple[np.ndarray, int]:
    """Decode audio with soundfile: (float32 samples of shape (frames,) or (frames, channels), sampling rate).

    `source` is a path, raw encoded bytes, or a `datasets` audio value: `{"bytes": ..., "path": ...}` (as
    `Audio(decode=False)` gives) or `{"array": ..., "sampling_rate": ...}` (already decoded).
    """
    import soundfile

    name = name or _describe(source)
    if source is None:
        raise AudioError(f"{name}: no audio in this value (None)")
    if isinstance(source, dict):
        if source.get("array") is not None:
            if source.get("sampling_rate") is None:
                raise AudioError(f"{name}: an audio array without `sampling_rate`")
            return np.asarray(source["array"], dtype=np.float32), int(source["sampling_rate"])
        if source.get("bytes") is not None:
            source = source["bytes"]
        elif source.get("path") is not None:
            source = source["path"]
        else:
            raise AudioError(f"{name}: an audio value with neither `bytes`, `path` nor `array`")
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        if not Path(source).exists():
            raise AudioError(f"{name}: no such file")
        if Path(source).is_dir():
            raise AudioError(f"{name}: a folder, not an audio file")
    try:
        audio, rate = soundfile.read(source, dtype="float32", always_2d=False)
    except (soundfile.SoundFileError, RuntimeError, TypeError) as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise AudioError(f"{name}: cannot decode audio ({reason})") from None
    if audio.size == 0:
        raise AudioError(f"{name}: holds no samples")
    return audio, int(rate)


def to_mono(audio: np.ndarray) -> tuple[np.ndarray, int]:
    """(mono samples, number of channels mixed): the mean over channels of (frames, channels) audio."""
    if audio.ndim == 1:
        return audio, 1
    return audio.mean(axis=1).astype(np.float32), audio.shape[1]


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample mono audio with soxr (high quality); returns the input unchanged when the rates agree."""
    if from_rate == to_rate:
        return audio
    import soxr

    return soxr.resample(audio, from_rate, to_rate, quality="HQ").astype(np.float32)


def _current_umask() -> int:
    """The process umask, read without changing it where Linux tells it (setting it, even briefly, races other
    threads that create files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call `write(temporary_path)` on a temporary file beside `path`, then rename it to `path`: readers never see a
    half-written file, and a failed write leaves nothing behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial" + path.suffix, dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_current_umask())  # mkstemp makes it 0600; give it the mode open() would
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def save_audio(path: str | os.PathLike, audio: np.ndarray, sampling_rate: int, subtype: str | None = None) -> Path:
    """Write audio (format from the suffix; `subtype` e.g. "FLOAT" or "PCM_16") atomically."""
    import soundfile

    path = Path(path)
    format = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}.get(path.suffix.lower())
    if format is None:
        raise AudioError(f"{path}: unsupported output format {path.suffix!r} (use .wav, .flac, .ogg or .mp3)")
    if subtype is None:
        subtype = {"WAV": "FLOAT", "FLAC": "PCM_24"}.get(format)
    return atomic_write(
        path, lambda temporary: soundfile.write(temporary, audio, sampling_rate, format=format, subtype=subtype)
    )


def save_array(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write a .npy file atomically."""

    def write(temporary):
        with open(temporary, "wb") as handle:
            np.save(handle, array)

    return atomic_write(path, write)


def encode_wav(audio: np.ndarray, sampling_rate: int) -> bytes:
    """Float WAV bytes of mono audio (for dataset audio columns)."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, audio, sampling_rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def _describe(source) -> str:
    if isinstance(source, dict):
        return str(source.get("path") or "<audio bytes>")
    if isinstance(source, (bytes, bytearray)):
        return "<audio bytes>"
    return str(source)
