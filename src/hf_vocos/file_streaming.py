"""File to file with bounded memory, for long inputs of the command line: audio or a .npy array is read in blocks,
turned into features block by block (`VocosFeatureExtractor.stream`), decoded with the streaming decoder
(`Vocoder.stream_decode`) and written block by block under a temporary name (`audio_io.atomic_path`). Peak memory does
not grow with the file's length, and the output is the in-memory path's (`Vocoder.resynthesize`, `analyze`, `decode`)
sample for sample: soxr's streaming resampler gives its one-shot output exactly, the features come in the same
blocks of frames, and the decoder gets the same chunks.

EnCodec models resynthesize and analyze in memory: the EnCodec encoder (transformers' `EncodecModel`) has no
streaming interface. Their codes decode from file in blocks like features. An mp3 is decoded whole (libsndfile's mp3
decoder gives other samples when read in blocks; see `_whole_file_blocks`), then goes on in blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio_io import AudioError, atomic_path, load_audio, output_format, resample, to_mono

__all__ = [
    "NpyColumns",
    "audio_seconds",
    "check_array",
    "check_values",
    "read_audio_blocks",
    "squeezed_shape",
    "write_audio_blocks",
    "write_npy_columns",
]

# Samples read from an audio file at a time: 10 s at 48 kHz.
_READ_FRAMES = 480_000
# Frames read from a .npy at a time.
_NPY_FRAMES = 4096


def audio_seconds(source) -> float | None:
    """The duration of an audio file (a path or a file object) from its header (nothing decoded), or None where
    soundfile cannot tell."""
    import soundfile

    try:
        info = soundfile.info(str(source) if isinstance(source, Path) else source)
    except Exception:  # unreadable: it fails, with its reason, where it is read
        return None
    return info.frames / info.samplerate if info.samplerate and info.frames >= 0 else None


def read_audio_blocks(path: Path, sampling_rate: int, on_open: Callable | None = None) -> Iterator[np.ndarray]:
    """Mono float32 blocks of an audio file at `sampling_rate`: channels mixed down (their mean) and resampled with
    soxr's streaming resampler, block by block, as `Vocoder.prepare` does to the whole file. `on_open(channels,
    rate)` is called once the file is open (for the info lines)."""
    import soundfile

    try:
        handle = soundfile.SoundFile(str(path))
    except (soundfile.SoundFileError, RuntimeError, TypeError) as error:
        raise AudioError(f"{path}: cannot decode audio ({str(error).strip().splitlines()[-1]})") from None
    with handle:
        if on_open is not None:
            on_open(handle.channels, handle.samplerate)
        if handle.subtype.startswith("MPEG_LAYER"):  # mp3 (and mp2/mp1)
            yield from _whole_file_blocks(path, sampling_rate)
            return
        resampler = None
        if handle.samplerate != sampling_rate:
            import soxr

            resampler = soxr.ResampleStream(handle.samplerate, sampling_rate, 1, dtype="float32", quality="HQ")
        total = 0
        while True:
            block = handle.read(_READ_FRAMES, dtype="float32", always_2d=False)
            last = block.shape[0] < _READ_FRAMES
            total += block.shape[0]
            block, _ = to_mono(block)
            if resampler is not None:
                block = resampler.resample_chunk(block, last=last)
            if block.shape[0]:
                yield block
            if last:
                break
        if total == 0:
            raise AudioError(f"{path}: holds no samples")


def _whole_file_blocks(path: Path, sampling_rate: int) -> Iterator[np.ndarray]:
    """An mp3, decoded whole (as `load_audio` and `Vocoder.prepare` do) and handed on in blocks. libsndfile's mp3
    decoder does not give the same samples when a file is read in blocks: around some block boundaries about a
    thousand samples differ by up to 0.2 (measured with soundfile 0.14 on mp3s libsndfile wrote). The features,
    decoding and writing still go in blocks."""
    audio, rate = load_audio(path)
    audio = resample(to_mono(audio)[0], rate, sampling_rate)
    for start in range(0, audio.shape[0], _READ_FRAMES):
        yield audio[start : start + _READ_FRAMES]


def write_audio_blocks(target: Path, pieces: Iterator[np.ndarray], sampling_rate: int, subtype: str | None) -> int:
    """Write mono float32 pieces as one audio file (format from the suffix, as `save_audio`) under a temporary name,
    renamed when the last piece is written; returns the samples written. If reading the pieces raises, nothing is
    left behind."""
    import soundfile

    format, subtype = output_format(target, subtype)
    written = 0
    with atomic_path(target) as temporary:
        with soundfile.SoundFile(str(temporary), "w", sampling_rate, 1, subtype=subtype, format=format) as handle:
            for piece in pieces:
                handle.write(piece)
                written += piece.shape[0]
    return written


# ---- .npy ----------------------------------------------------------------------------------------------------------


@dataclass
class NpyColumns:
    """A 2-D .npy array `(rows, columns)` on disk (or 3-D, as `squeezed_shape` takes it), read in blocks of columns:
    only a block is ever in memory (not a memory map, whose pages would stay resident)."""

    path: Path
    shape: tuple[int, int]
    dtype: np.dtype
    fortran_order: bool
    data_offset: int

    @classmethod
    def open(cls, path: Path, codes: bool = False) -> NpyColumns:
        from numpy.lib import format as npy

        with open(path, "rb") as handle:
            try:
                version = npy.read_magic(handle)
                read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
                shape, fortran_order, dtype = read_header(handle)
            except ValueError as error:
                raise ValueError(f"not a plain .npy array ({error})") from None
            offset = handle.tell()
        if dtype.hasobject:
            raise ValueError("not a plain .npy array (it holds Python objects)")
        shape = squeezed_shape(shape, codes)
        if len(shape) != 2:
            raise ValueError(f"expected a 2-D array (rows, frames), got shape {tuple(shape)}")
        return cls(Path(path), tuple(shape), dtype, fortran_order, offset)

    @property
    def frames(self) -> int:
        return self.shape[1]

    def blocks(self, size: int = _NPY_FRAMES) -> Iterator[np.ndarray]:
        rows, columns = self.shape
        item = self.dtype.itemsize
        with open(self.path, "rb") as handle:
            for start in range(0, columns, size):
                count = min(size, columns - start)
                if self.fortran_order:  # columns are contiguous
                    handle.seek(self.data_offset + start * rows * item)
                    block = _read(handle, self.dtype, count * rows, self.path).reshape(count, rows).T
                else:
                    block = np.empty((rows, count), self.dtype)
                    for row in range(rows):
                        handle.seek(self.data_offset + (row * columns + start) * item)
                        block[row] = _read(handle, self.dtype, count, self.path)
                yield np.ascontiguousarray(block)


def squeezed_shape(shape: tuple[int, ...], codes: bool) -> tuple[int, ...]:
    """The 2-D shape a 3-D array is read as: features `(1, channels, frames)`, codes `(num_quantizers, 1, frames)`."""
    if len(shape) == 3 and not codes and shape[0] == 1:
        return shape[1:]
    if len(shape) == 3 and codes and shape[1] == 1:
        return (shape[0], shape[2])
    return tuple(shape)


def _read(handle, dtype: np.dtype, count: int, path: Path) -> np.ndarray:
    values = np.fromfile(handle, dtype=dtype, count=count)
    if values.shape[0] != count:
        raise ValueError(f"the file ends early: {path} is truncated")
    return values


def write_npy_columns(target: Path, rows: int, dtype, blocks: Iterator[np.ndarray]) -> int:
    """Write blocks `(rows, frames_i)` as one .npy array `(rows, frames)` without holding it: the data go in
    Fortran order (frame after frame, as they arrive), behind a header written first with room for any frame count
    and rewritten with the true one at the end. `np.load` reads it as the same array. Under a temporary name,
    renamed at the end; returns the frames written."""
    dtype = np.dtype(dtype)
    room = len(_npy_header(rows, 10**18, dtype, 0))
    frames = 0
    with atomic_path(target) as temporary, open(temporary, "wb") as handle:
        handle.write(_npy_header(rows, 0, dtype, room))
        for block in blocks:
            handle.write(np.asarray(block, dtype).T.tobytes())  # (frames, rows) in C order
            frames += block.shape[1]
        handle.seek(0)
        handle.write(_npy_header(rows, frames, dtype, room))
    return frames


def _npy_header(rows: int, frames: int, dtype: np.dtype, length: int) -> bytes:
    """A version 1.0 .npy header for a Fortran-ordered (rows, frames) array, padded with spaces to `length` bytes (0:
    to the next multiple of 64, numpy's alignment)."""
    text = f"{{'descr': {dtype.str!r}, 'fortran_order': True, 'shape': ({rows}, {frames}), }}"
    unpadded = 10 + len(text) + 1  # magic (6) + version (2) + header length (2) + text + newline
    length = length or -(-unpadded // 64) * 64
    text += " " * (length - unpadded) + "\n"
    return b"\x93NUMPY\x01\x00" + (len(text)).to_bytes(2, "little") + text.encode("latin1")


# ---- checks of a features or codes array ---------------------------------------------------------------------------


def check_array(shape: tuple[int, ...], dtype: np.dtype, config, bandwidth, codes: bool) -> None:
    """What a features or codes array must be, from its shape and dtype alone (`hf-vocos synthesize` and
    `decode-codes`); raises ValueError saying what was expected."""
    if codes:
        if not np.issubdtype(dtype, np.integer):
            raise ValueError(f"codes must be integers, got {dtype}")
        expected = config.num_quantizers_for_bandwidth(bandwidth)
        if len(shape) != 2 or shape[0] != expected:
            raise ValueError(f"codes must have shape ({expected}, frames) at {bandwidth:g} kbps, got {tuple(shape)}")
        return
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"features must be floating point, got {dtype}")
    if len(shape) != 2 or shape[0] != config.input_channels:
        raise ValueError(f"features must have shape ({config.input_channels}, frames), got {tuple(shape)}")


def check_values(array: np.ndarray, config, codes: bool, start: int | None = None) -> np.ndarray:
    """The values of (a block of) a features or codes array, checked (codes in the codebook, features finite) and
    converted (int64 codes, float32 features); `start` is a block's first frame, for the message."""
    where = "" if start is None else f" (in frames {start}-{start + array.shape[-1] - 1})"
    if codes:
        if array.size and (array.min() < 0 or array.max() >= config.codebook_size):
            raise ValueError(
                f"codes must lie in [0, {config.codebook_size}), got values in [{array.min()}, {array.max()}]{where}"
            )
        return array.astype(np.int64)
    if not np.isfinite(array).all():
        raise ValueError(f"features contain NaN or infinite values{where}")
    return array.astype(np.float32)
