"""The `hf-vocos` command line (also `python -m hf_vocos`): resynth, analyze, synthesize, decode-codes, dataset.

Every file is processed on its own terms: a file that cannot be read or decoded gets one `error:` line, the others
are still processed, the failures are listed at the end and the exit code is 1. Outputs are written under a
temporary name and renamed, so a failure never leaves a truncated file. See docs/cli.md.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio_io import AUDIO_SUFFIXES, AudioError, DiskFull, OutputError, find_files, load_audio, save_array, save_audio
from .cli_support import DEFAULT_MODEL, DTYPE_CHOICES, CliError, load_vocoder
from .file_streaming import (
    NpyColumns,
    audio_seconds,
    check_array,
    check_values,
    read_audio_blocks,
    squeezed_shape,
    write_audio_blocks,
    write_npy_columns,
)

__all__ = ["main"]

logger = logging.getLogger("hf_vocos")


@dataclass
class Report:
    """What a command did, for the summary line."""

    command: str
    done: int = 0
    audio_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def fail(self, message: str) -> None:
        self.failures.append(message)
        logger.error(f"error: {message}")

    def summary(self) -> int:
        elapsed = time.perf_counter() - self.started
        rtf = f" (RTF {elapsed / self.audio_seconds:.3f})" if self.audio_seconds else ""
        files = f"{self.done} file{'s' if self.done != 1 else ''}"
        line = f"{self.command}: {files}, {self.audio_seconds:.1f} s of audio in {elapsed:.1f} s{rtf}"
        if self.failures:
            line += f"; {len(self.failures)} failed:"
        print(line, file=sys.stderr)
        for failure in self.failures:
            print(f"  {failure}", file=sys.stderr)
        return 1 if self.failures else 0


# --------------------------------------------------------------------------------------------------------------------
# files


def plan(inputs: list[str], output: str, suffix: str, wanted: set[str], report: Report) -> list[tuple[Path, Path]]:
    """(input file, output file) pairs. Folders are searched recursively for files with a `wanted` suffix and keep
    their layout under `output`; a single input file with an output that has a suffix writes exactly there."""
    output_path = Path(output)
    single = len(inputs) == 1 and Path(inputs[0]).is_file() and output_path.suffix != ""
    jobs = []
    for item in inputs:
        path = Path(item)
        if not path.exists():
            report.fail(f"{item}: no such file or folder")
        elif path.is_dir():
            files = find_files(path, wanted)
            if not files:
                report.fail(f"{item}: no {'/'.join(sorted(wanted))} files in this folder")
            jobs += [(f, output_path / f.relative_to(path).with_suffix(suffix)) for f in files]
        else:
            jobs.append((path, output_path if single else output_path / (path.stem + suffix)))
    sources = {os.path.realpath(source) for source, _ in jobs}
    for source, target in jobs:
        if os.path.realpath(target) in sources:
            raise CliError(
                f"-o {output}: the output for {source} would be {target}, which is one of the inputs (it would be "
                "replaced by its vocoded copy); write to another file or folder"
            )
    seen, unique = set(), []
    for source, target in jobs:
        if target in seen:
            report.fail(f"{source}: its output {target} collides with another input's; rename one of them")
            continue
        seen.add(target)
        unique.append((source, target))
    return unique


def check_writable(jobs: list[tuple[Path, Path]], output: str) -> None:
    folders = {target.parent for _, target in jobs} or {Path(output)}
    for folder in sorted(folders):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CliError(f"-o {output}: cannot create {folder} ({error.strerror or error})") from None
        if not os.access(folder, os.W_OK):
            raise CliError(f"-o {output}: {folder} is not writable")


def check_subtype(args, jobs: list[tuple[Path, Path]]) -> None:
    """A `--subtype` an output's format cannot hold stops the command before any work."""
    import soundfile

    from .audio_io import output_format

    if args.subtype is None:
        return
    for format in sorted({output_format(target)[0] for _, target in jobs}):
        if not soundfile.check_format(format, args.subtype):
            available = ", ".join(soundfile.available_subtypes(format))
            raise CliError(f"--subtype {args.subtype}: {format} files cannot hold it (they take {available})")


def progress(total: int, description: str, args):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="file", disable=True if args.quiet else None, leave=False)


def frame_progress(args):
    """A progress bar for one long item, for `Vocoder.decode`."""
    from tqdm.auto import tqdm

    def start(total_frames: int):
        bar = tqdm(total=total_frames, unit="frame", leave=False, disable=True if args.quiet else None)
        return bar.update

    return start


def groups(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------------------------------------------------
# commands


def run_audio_command(args, report: Report) -> None:
    """resynth and analyze: audio files in. Files longer than `--long-seconds` go from file to file in blocks (mel
    models; see `file_streaming`), the others are decoded in memory in batches."""
    analyze = args.command == "analyze"
    suffix = ".npy" if analyze else f".{args.format}"
    jobs = plan(args.inputs, args.output, suffix, AUDIO_SUFFIXES, report)
    if not jobs:
        return
    check_writable(jobs, args.output)
    if not analyze:
        check_subtype(args, jobs)
    vocoder = load_vocoder(args, args.bandwidth)
    bar = progress(len(jobs), args.command, args)
    for group in groups(jobs, args.batch_size):
        loaded = []
        for source, target in group:
            seconds = None if vocoder.is_codes_model else audio_seconds(source)
            if seconds is not None and seconds > args.long_seconds:
                job = functools.partial(stream_audio, args, vocoder, source, target, seconds)
                run_streamed(args, vocoder, source, target, report, job)
                bar.update(1)
                continue
            try:
                audio, rate = load_audio(source)
                loaded.append((source, target, vocoder.prepare(audio, rate, str(source))))
            except AudioError as error:
                report.fail(str(error))
                bar.update(1)
        run_items(
            loaded,
            lambda clips: vocoder.analyze(clips) if analyze else vocoder.resynthesize(clips, frame_progress(args)),
            lambda source, target, clip, result: finish(args, vocoder, source, target, clip, result, report),
            report,
            bar,
        )
    bar.close()


def run_array_command(args, report: Report) -> None:
    """synthesize and decode-codes: .npy features or codes in, audio out. Arrays longer than `--long-seconds` are
    read, decoded and written in blocks."""
    codes = args.command == "decode-codes"
    jobs = plan(args.inputs, args.output, f".{args.format}", {".npy"}, report)
    if not jobs:
        return
    check_writable(jobs, args.output)
    check_subtype(args, jobs)
    vocoder = load_vocoder(args, args.bandwidth)
    if codes and not vocoder.is_codes_model:
        raise CliError(f"--model {args.model} is a mel model; decode-codes needs an EnCodec model")
    if not codes and vocoder.is_codes_model:
        raise CliError(f"--model {args.model} is an EnCodec model; use decode-codes for codes")
    config = vocoder.model.config
    bar = progress(len(jobs), args.command, args)
    for group in groups(jobs, args.batch_size):
        loaded = []
        for source, target in group:
            try:
                header = NpyColumns.open(source, codes)
                check_array(header.shape, header.dtype, config, vocoder.bandwidth, codes)
                if header.frames > vocoder.long_frames:
                    job = functools.partial(stream_array, args, vocoder, header, target)
                    run_streamed(args, vocoder, source, target, report, job)
                    bar.update(1)
                    continue
                loaded.append((source, target, load_array(source, vocoder, codes)))
            except (OSError, ValueError) as error:
                report.fail(f"{source}: {error}")
                bar.update(1)
        run_items(
            loaded,
            lambda items: vocoder.decode(items, frame_progress(args)),
            lambda source, target, item, result: finish(args, vocoder, source, target, item, result, report),
            report,
            bar,
        )
    bar.close()


def load_array(path: Path, vocoder, codes: bool) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise ValueError(f"not a plain .npy array ({error})") from None
    array = array.reshape(squeezed_shape(array.shape, codes))
    config = vocoder.model.config
    check_array(array.shape, array.dtype, config, vocoder.bandwidth, codes)
    return check_values(array, config, codes)


# --------------------------------------------------------------------------------------------------------------------
# long files, from file to file


def run_streamed(args, vocoder, source: Path, target: Path, report: Report, job) -> None:
    """Run one file-to-file job (`job()` returns the seconds of audio it did), counting it or reporting its
    failure; a failed job leaves no output file."""
    if getattr(args, "plot", False):
        logger.info(f"{source}: no --plot for a file streamed from file to file (longer than --long-seconds)")
    try:
        seconds = job()
    except DiskFull as error:
        raise Stopped(str(error)) from None
    except OutputError as error:
        report.fail(str(error))
        return
    except (AudioError, ValueError, TypeError, OSError) as error:
        report.fail(f"{source} -> {target}: {error}")
        return
    report.done += 1
    report.audio_seconds += seconds


def stream_audio(args, vocoder, source: Path, target: Path, seconds: float) -> float:
    """resynth or analyze of a long audio file (`seconds` long, by its header), block by block; returns its seconds
    of audio (at the model's rate)."""
    extractor = vocoder.processor.feature_extractor
    samples = 0

    def counted(blocks):
        nonlocal samples
        for block in blocks:
            samples += block.shape[0]
            yield block

    blocks = read_audio_blocks(
        source, vocoder.sampling_rate, lambda channels, rate: vocoder.describe_preparation(str(source), channels, rate)
    )
    features = extractor.stream(counted(blocks))
    if args.command == "analyze":
        write_npy_columns(target, extractor.feature_size, np.float32, features)
        return samples / vocoder.sampling_rate
    update = frame_progress(args)(extractor.num_frames(int(seconds * vocoder.sampling_rate)))
    written = write_audio_blocks(target, vocoder.stream_decode(features, update), vocoder.sampling_rate, args.subtype)
    return written / vocoder.sampling_rate


def stream_array(args, vocoder, header: NpyColumns, target: Path) -> float:
    """synthesize or decode-codes of a long .npy, block by block; returns the seconds of audio written."""
    codes = args.command == "decode-codes"
    config = vocoder.model.config

    def checked():
        start = 0
        for block in header.blocks():
            yield check_values(block, config, codes, start)
            start += block.shape[-1]

    update = frame_progress(args)(header.frames)
    written = write_audio_blocks(target, vocoder.stream_decode(checked(), update), vocoder.sampling_rate, args.subtype)
    return written / vocoder.sampling_rate


def run_items(loaded, compute, write, report: Report, bar) -> None:
    """Run `compute` on the group's items (one by one if the group fails, to single out the bad ones) and write each
    result."""
    from .vocoder import each_or_alone

    if not loaded:
        return
    for (source, target, item), (result, error) in zip(loaded, each_or_alone(compute, [item for _, _, item in loaded])):
        if error is not None:
            report.fail(f"{source}: {error}")
        else:
            try:
                write(source, target, item, result)
            except DiskFull as error:
                raise Stopped(str(error)) from None
            except OutputError as error:
                report.fail(str(error))
            except (OSError, ValueError, AudioError) as error:
                report.fail(f"{target}: cannot write it ({error})")
        bar.update(1)


def finish(args, vocoder, source: Path, target: Path, given: np.ndarray, result: np.ndarray, report: Report) -> None:
    """Write one result (and its picture), and count it."""
    if args.command == "analyze":
        save_array(target, result)
        seconds = given.shape[-1] / vocoder.sampling_rate
    else:
        save_audio(target, result, vocoder.sampling_rate, subtype=args.subtype)
        seconds = result.shape[-1] / vocoder.sampling_rate
    if getattr(args, "plot", False):
        plot_result(target, vocoder, source, given, result, args.command)
    report.done += 1
    report.audio_seconds += seconds


def plot_result(target: Path, vocoder, source: Path, given: np.ndarray, result: np.ndarray, command: str) -> None:
    from .plotting import plot_panels

    extractor = vocoder.processor.feature_extractor

    def log_mel(audio):
        if len(audio) < extractor.min_num_samples:
            audio = np.pad(audio, (0, extractor.min_num_samples - len(audio)))
        return extractor(audio, sampling_rate=extractor.sampling_rate)["input_features"][0]

    if command == "resynth":
        top = (f"input: {source.name} (log-mel)", log_mel(given), "mel bin")
    elif command == "synthesize":
        top = (f"input features: {source.name}", given, "mel bin")
    else:
        top = (f"input codes: {source.name}", given, "codebook")
    plot_panels(target.with_suffix(".png"), [top, (f"output: {target.name} (log-mel)", log_mel(result), "mel bin")])


# --------------------------------------------------------------------------------------------------------------------
# arguments


def build_parser() -> argparse.ArgumentParser:
    from .version import __version__

    parser = argparse.ArgumentParser(
        prog="hf-vocos", description="Vocos neural vocoder: audio, log-mel and EnCodec codes."
    )
    parser.add_argument("--version", action="version", version=f"hf_vocos {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    def common(sub, bandwidth_help):
        sub.add_argument("-o", "--output", required=True, help="output folder (or file, for a single input)")
        sub.add_argument("--model", default=DEFAULT_MODEL, help=f"Hub id or local folder (default {DEFAULT_MODEL})")
        sub.add_argument("--bandwidth", type=float, help=bandwidth_help)
        sub.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps (default cpu)")
        sub.add_argument(
            "--dtype",
            default="float32",
            choices=DTYPE_CHOICES,
            help="float32 (default), bfloat16, float16, or auto: bfloat16 where the device computes it natively "
            "(AVX512-BF16, AMX, ARM BF16, recent GPUs), else float32; emulated bfloat16 is about 13x slower",
        )
        sub.add_argument("--batch-size", type=int, default=8, help="items decoded together (default 8)")
        sub.add_argument(
            "--long-seconds",
            type=float,
            default=60.0,
            help="items longer than this are decoded in streaming chunks, with a progress bar (default 60)",
        )
        sub.add_argument("-q", "--quiet", action="store_true", help="no progress bars or info lines")

    def audio_out(sub):
        sub.add_argument(
            "--format", default="wav", choices=["wav", "flac", "ogg", "mp3"], help="output format (default wav)"
        )
        sub.add_argument("--subtype", help="soundfile subtype, e.g. PCM_16 (default: float for wav, 24-bit for flac)")
        sub.add_argument("--plot", action="store_true", help="also write a PNG of input and output spectrograms")

    # (command, help, input metavar, input help, --bandwidth help, writes audio)
    audio_inputs = "audio files or folders (searched recursively)"
    for name, description, metavar, inputs, bandwidth, writes_audio in (
        (
            "resynth",
            "copy-synthesis: audio files in, vocoded audio out",
            "IN",
            audio_inputs,
            "kbps, for EnCodec models: resynthesize through EnCodec codes at this bandwidth",
            True,
        ),
        (
            "analyze",
            "audio files in, log-mel features (or EnCodec codes) as .npy out",
            "IN",
            audio_inputs,
            "kbps, for EnCodec models: write codes at this bandwidth",
            False,
        ),
        (
            "synthesize",
            "log-mel features (.npy, (n_mels, frames)) in, audio out",
            "FEATURES",
            ".npy files or folders",
            "kbps, for bandwidth-conditioned models",
            True,
        ),
        (
            "decode-codes",
            "EnCodec codes (.npy, (num_quantizers, frames)) in, audio out",
            "CODES",
            ".npy files or folders",
            "kbps the codes were made at (required)",
            True,
        ),
    ):
        sub = commands.add_parser(name, help=description)
        sub.add_argument("inputs", nargs="+", metavar=metavar, help=inputs)
        common(sub, bandwidth)
        if metavar == "IN":
            sub.add_argument(
                "--log-floor",
                type=float,
                help="mel models: clamp mel magnitudes at this value before the log, instead of the checkpoint's "
                "(e.g. 1e-5 for a model trained with HiFi-GAN/Matcha-style features)",
            )
        if writes_audio:
            audio_out(sub)

    from .dataset_vocos import add_dataset_parser

    add_dataset_parser(commands, common)

    train = commands.add_parser("train", help="train or fine-tune a Vocos model (see docs/training.md)")
    train.add_argument("--config", required=True, help="training settings, YAML or JSON (TrainingConfig fields)")
    train.add_argument("--output-dir", help="overrides output_dir")
    train.add_argument("--max-steps", type=int, help="overrides max_steps")
    train.add_argument("--resume", dest="resume_from", help="a checkpoint folder, or 'latest'")
    train.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    return parser


def run_train(args) -> int:
    try:
        from .training import TrainingConfig, VocosTrainer
    except ImportError as error:
        raise CliError(f"training needs the [train] extra: pip install 'hf_vocos[train]' ({error})") from None
    try:
        config = TrainingConfig.from_file(
            args.config, output_dir=args.output_dir, max_steps=args.max_steps, resume_from=args.resume_from
        )
        trainer = VocosTrainer(config)
    except (ValueError, OSError) as error:
        raise CliError(str(error)) from None
    metrics = trainer.train()
    print(f"train: {trainer.global_step} steps; model in {config.output_dir}/model", file=sys.stderr)
    if metrics:
        print("  " + "  ".join(f"{name} {value:.4g}" for name, value in metrics.items()), file=sys.stderr)
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    # Our own lines only (not the root logger's, which would repeat every library's messages).
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.WARNING if args.quiet else logging.INFO)
    import transformers

    transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars for every model load
    report = Report(f"dataset {args.operation}" if args.command == "dataset" else args.command)
    with stop_signals_interrupt():
        try:
            if args.command == "train":
                return run_train(args)
            if args.command in ("resynth", "analyze"):
                run_audio_command(args, report)
            elif args.command in ("synthesize", "decode-codes"):
                run_array_command(args, report)
            else:
                from .dataset_vocos import run_dataset

                if not run_dataset(args, report):
                    return 0  # the main process reports for all
        except CliError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except Stopped as stop:
            report.fail(f"{stop}; stopped there, the inputs after it were not processed")
            return report.summary()
        except KeyboardInterrupt as interruption:
            return interrupted(interruption, report, args.command)
    return report.summary()


class Stopped(Exception):
    """A failure that every later output would share (a full disk): the command stops, reports and says so."""


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived: unwinds the command like Ctrl-C, so that every write in progress removes
    its temporary file on the way out."""

    def __init__(self, signal_number: int):
        super().__init__(signal_number)
        self.signal_number = signal_number


@contextlib.contextmanager
def stop_signals_interrupt():
    """While the command runs, SIGINT, SIGTERM and SIGHUP raise `Interrupted` in the main thread (the first one;
    later ones are ignored, so that cleaning up is not itself cut short). The previous handlers come back after.
    Outside the main thread (signal handlers cannot be set there) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    numbers = [getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {number: signal.getsignal(number) for number in numbers}

    def handler(number, frame):
        for each in numbers:
            signal.signal(each, signal.SIG_IGN)
        raise Interrupted(number)

    for number in numbers:
        signal.signal(number, handler)
    try:
        yield
    finally:
        for number, action in previous.items():
            signal.signal(number, action)


def interrupted(interruption: KeyboardInterrupt, report: Report, command: str) -> int:
    """Remove what writes in progress left, say what was kept, and return 128 + the signal's number (the shell's
    convention for a process stopped by a signal: 130 for SIGINT, 143 for SIGTERM)."""
    from .audio_io import remove_temporaries

    leftovers = remove_temporaries()  # the writes clean up as they unwind; this catches anything they could not
    number = getattr(interruption, "signal_number", signal.SIGINT)
    if command == "train":
        kept = "checkpoints saved before it are complete (continue with --resume latest)"
    elif command == "dataset":
        kept = "finished shards are kept (run the same command again to continue)"
    else:
        kept = f"{report.done} file{'s' if report.done != 1 else ''} written before it, complete"
    removed = f" ({len(leftovers)} unfinished temporary file(s))" if leftovers else ""
    print(
        f"{report.command}: interrupted by {signal.Signals(number).name}: {kept}; any output in progress was "
        f"removed{removed}",
        file=sys.stderr,
    )
    return 128 + int(number)


if __name__ == "__main__":
    sys.exit(main())
