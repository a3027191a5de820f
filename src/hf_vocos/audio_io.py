"""Reading, converting and writing audio for the command line and dataset tools: soundfile for decoding and encoding
(wav, flac, ogg, mp3, ...), soxr for resampling, and writes that never leave a truncated file."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = [
    "AUDIO_SUFFIXES",
    "AudioError",
    "atomic_path",
    "atomic_write",
    "encode_wav",
    "find_files",
    "load_audio",
    "output_format",
    "remove_temporaries",
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


class OutputError(AudioError, OSError):
    """An output that could not be written (the message names it and why); nothing of it is left."""


class DiskFull(OutputError):
    """No space left where an output is written: the outputs after it would fail too."""


def _write_failure(path: Path, error: BaseException) -> OutputError | None:
    """The `OutputError` for a write of `path` that raised `error`, or None when `error` is not about writing (an
    OSError, or soundfile's error, which says just "System error" when the disk is full)."""
    if not (isinstance(error, OSError) or type(error).__module__ == "soundfile"):
        return None
    code = getattr(error, "errno", None)
    full = code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
    if code is None:  # (soundfile's error has no errno: ask the file system)
        try:
            full = shutil.disk_usage(path.parent).free < 1 << 20
        except OSError:
            pass
    if full:
        return DiskFull(f"{path}: cannot write it: no space left on the device")
    return OutputError(f"{path}: cannot write it ({getattr(error, 'strerror', None) or error})")


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


# Temporary files and folders being written right now: `remove_temporaries` deletes what an interruption leaves.
_LIVE_TEMPORARIES: set[Path] = set()


def _temporary_name(path: Path) -> Path:
    """A hidden name beside `path` for writing it: `.name.<pid>-<random>.partial`. It ends in `.partial`, so no
    `*.wav`-style pattern takes it for an output (the writers are told the format, never guess it from the name), and
    it names the process writing it, so that a later write can tell a killed run's leftover from a live write."""
    return path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: leave its files alone
    return True


_TEMPORARY_NAME = re.compile(r"\..+\.(\d+)-[0-9a-f]{8}\.partial")
_SWEPT_FOLDERS: set[Path] = set()


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporaries in `folder` that a process killed while writing left (SIGKILL, a power cut: nothing
    could clean up), recognised by their name and their writer being gone; returns them. Temporaries of live
    processes, this one's included, are kept. `atomic_path` sweeps each folder once per process, before its first
    write there (not on every write: a folder of many outputs would be listed once per output)."""
    removed = []
    try:
        candidates = list(folder.iterdir())
    except OSError:
        return removed
    for candidate in candidates:
        match = _TEMPORARY_NAME.fullmatch(candidate.name)
        if match and int(match.group(1)) != os.getpid() and not _process_alive(int(match.group(1))):
            _remove(candidate)
            removed.append(candidate)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, folder: bool = False) -> Iterator[Path]:
    """A temporary file (or, with `folder=True`, folder) beside `path` to write; renamed to `path` when the block
    ends, removed when it raises (any exception, KeyboardInterrupt included): readers never see a half-written
    output, and a failed or interrupted write leaves nothing behind. An existing `path` is replaced only on
    success. The temporary is listed for `remove_temporaries` from before it is created until it is gone."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.parent.resolve() not in _SWEPT_FOLDERS:
        _SWEPT_FOLDERS.add(path.parent.resolve())
        remove_stale_temporaries(path.parent)
    while True:
        temporary = _temporary_name(path)
        _LIVE_TEMPORARIES.add(temporary)  # listed before it exists: no moment where it exists unlisted
        try:
            if folder:
                temporary.mkdir()
            else:  # mode 0666 less the umask, as open() gives (mkstemp's would be 0600)
                os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            _LIVE_TEMPORARIES.discard(temporary)
        except BaseException as error:
            _LIVE_TEMPORARIES.discard(temporary)
            failure = _write_failure(path, error)
            if failure is not None:
                raise failure from error
            raise
    try:
        yield temporary
        if folder and path.is_dir():
            shutil.rmtree(path)
        os.replace(temporary, path)
    except BaseException as error:
        _remove(temporary)
        failure = _write_failure(path, error)
        if failure is not None:
            raise failure from error
        raise
    finally:
        _LIVE_TEMPORARIES.discard(temporary)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_temporaries() -> list[Path]:
    """Delete the temporary files and folders of writes still in progress (for a process that is being stopped);
    returns those it found."""
    found = [path for path in list(_LIVE_TEMPORARIES) if path.exists()]
    for path in found:
        _remove(path)
    _LIVE_TEMPORARIES.clear()
    return found


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call `write(temporary_path)` on a temporary file beside `path`, then rename it to `path` (see `atomic_path`)."""
    with atomic_path(path) as temporary:
        write(temporary)
    return Path(path)


def save_audio(path: str | os.PathLike, audio: np.ndarray, sampling_rate: int, subtype: str | None = None) -> Path:
    """Write audio (format from the suffix; `subtype` e.g. "FLOAT" or "PCM_16") atomically."""
    import soundfile

    format, subtype = output_format(path, subtype)
    return atomic_write(
        path, lambda temporary: soundfile.write(temporary, audio, sampling_rate, format=format, subtype=subtype)
    )


def output_format(path: str | os.PathLike, subtype: str | None = None) -> tuple[str, str | None]:
    """soundfile's (format, subtype) for an output file: the format from the suffix, the subtype as given or the
    default (32-bit float for wav, 24-bit for flac)."""
    path = Path(path)
    format = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}.get(path.suffix.lower())
    if format is None:
        raise AudioError(f"{path}: unsupported output format {path.suffix!r} (use .wav, .flac, .ogg or .mp3)")
    if subtype is None:
        subtype = {"WAV": "FLOAT", "FLAC": "PCM_24"}.get(format)
    return format, subtype


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
