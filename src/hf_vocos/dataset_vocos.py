"""`hf-vocos dataset`: resynthesize or analyze a whole `datasets` dataset, across processes and GPUs with accelerate.

    hf-vocos dataset resynth path/to/audio_folder -o out/ --model hf-audio/vocos-mel-24khz
    accelerate launch --multi_gpu --num_processes 2 -m hf_vocos dataset analyze my_saved_dataset -o out/

The source (an audio folder, a dataset saved with `save_to_disk`, or a Hub dataset name) is cut into `--num-shards`
contiguous shards; process `i` of `n` takes shards i, i + n, ... Each shard is processed in length-sorted batches
(`Dataset.map(batched=True)`), put back in its original order, and saved under `out/shards/` under a temporary name
then renamed, so a rerun skips finished shards. When all are done the main process concatenates them into
`out/dataset` (`save_to_disk`) or `out/dataset.parquet`, with every original column kept and the new ones added:
`vocos_audio` (an `Audio(decode=False)` column of float WAV bytes at the model's rate) for resynth, `mel` or `codes`
for analyze, and `vocos_error` (None, or why a row failed).

Audio columns may hold decoded arrays, paths or encoded bytes: they are read with soundfile, never with `datasets`'
own decoding (which needs torchcodec).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from .audio_io import AudioError, atomic_path, atomic_write, encode_wav, find_files, load_audio
from .file_streaming import audio_seconds
from .vocoder import each_or_alone

__all__ = ["add_dataset_parser", "run_dataset"]

logger = logging.getLogger("hf_vocos")


def is_saved_dataset(path: Path) -> bool:
    """Whether `path` is a folder written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk`."""
    return path.is_dir() and any(
        (path / name).exists() for name in ("dataset_info.json", "state.json", "dataset_dict.json")
    )


def _audio_struct() -> dict:
    """Audio's storage layout as a plain struct. datasets' Audio feature imports torchcodec to encode any value (even
    a path or bytes), and torchcodec does not load with the CPU torch build: audio columns are built with this struct,
    then cast to Audio(decode=False), which only relabels the column."""
    import datasets

    return {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}


def add_dataset_parser(commands, common) -> None:
    parser = commands.add_parser(
        "dataset",
        help="resynth or analyze a datasets dataset (audio folder, saved dataset or Hub name), resumably, on several "
        "processes with accelerate",
    )
    parser.add_argument("operation", choices=["resynth", "analyze"])
    parser.add_argument("source", help="an audio folder, a folder saved with save_to_disk, or a Hub dataset name")
    common(parser, "kbps, for EnCodec models")
    parser.add_argument(
        "--split", default=None, help="split of a DatasetDict or Hub dataset (default: train, or the only one)"
    )
    parser.add_argument("--audio-column", default="audio")
    parser.add_argument(
        "--num-shards", type=int, default=16, help="work units; a rerun skips finished ones (default 16)"
    )
    parser.add_argument("--output-format", default="arrow", choices=["arrow", "parquet"], help="the merged result")


def run_dataset(args, report) -> bool:
    """Run the command in this process; returns whether this is the main process (which reports)."""
    import warnings

    import datasets
    from accelerate import PartialState

    from .cli_support import CliError, load_vocoder

    datasets.disable_progress_bars()  # one log line per shard instead of a bar per step
    # datasets' own `sort` still passes an option pyarrow 25 deprecates.
    warnings.filterwarnings("ignore", message="Specifying null_placement in SortOptions", category=FutureWarning)

    if args.num_shards < 1:
        raise CliError(f"--num-shards {args.num_shards}: expected at least 1")
    on_gpu = args.device != "cpu"
    state = PartialState(cpu=not on_gpu)
    if on_gpu:
        args.device = str(state.device)  # each process on its own GPU
    output = Path(args.output)
    dataset = load_source(args.source, args.split, args.audio_column)
    manifest = {
        "operation": args.operation,
        "source": str(args.source),
        "split": args.split,
        "audio_column": args.audio_column,
        "model": args.model,
        "bandwidth": args.bandwidth,
        "num_shards": args.num_shards,
        "num_rows": len(dataset),
    }
    if state.is_main_process:
        check_manifest(output, manifest)
    state.wait_for_everyone()
    final = output / ("dataset.parquet" if args.output_format == "parquet" else "dataset")
    mine = [index for index in range(args.num_shards) if index % state.num_processes == state.process_index]
    todo = [index for index in mine if not (output / "shards" / f"{index:05d}").exists()]
    if len(todo) < len(mine):
        logger.info(
            f"process {state.process_index}: {len(mine) - len(todo)} of its {len(mine)} shards are already done"
        )
    if todo and not final.exists():
        vocoder = load_vocoder(args, args.bandwidth)
        for index in todo:
            # Contiguous rows [index * n // shards, (index + 1) * n // shards): empty when there are more shards than
            # rows (Dataset.shard raises there).
            shard = dataset.select(
                range(index * len(dataset) // args.num_shards, (index + 1) * len(dataset) // args.num_shards)
            )
            started = time.perf_counter()
            processed, seconds, failures = process_shard(shard, vocoder, args)
            save_atomically(processed, output / "shards" / f"{index:05d}")
            for failure in failures:
                logger.error(f"error: {failure}")
            logger.info(
                f"process {state.process_index}: shard {index} ({len(shard)} rows, {seconds:.1f} s of audio) in "
                f"{time.perf_counter() - started:.1f} s"
            )
    state.wait_for_everyone()
    if state.is_main_process:
        if not final.exists():
            merge(output, args.num_shards, final)
            logger.info(f"wrote {final}")
        summarize(final, args.audio_column, report)
    state.wait_for_everyone()
    return state.is_main_process


def summarize(final: Path, audio_column: str, report) -> None:
    """Fill `report` from the merged result, so the summary covers every process and every earlier (resumed) run."""
    import datasets

    result = (
        datasets.Dataset.from_parquet(str(final)) if final.suffix == ".parquet" else datasets.load_from_disk(str(final))
    )
    errors = result["vocos_error"]
    report.failures += [error for error in errors if error is not None]
    report.done = len(errors) - len(report.failures)
    report.audio_seconds = sum(
        audio_length(value) for value, error in zip(result[audio_column], errors) if error is None
    )


def load_source(source: str, split: str | None, audio_column: str):
    """The dataset to process, with its audio column left undecoded (paths or bytes) or as arrays."""
    import datasets

    from .cli_support import CliError

    path = Path(source)
    if is_saved_dataset(path):
        dataset = datasets.load_from_disk(str(path))
    elif path.is_dir():
        files = find_files(path)
        if not files:
            raise CliError(f"{source}: no audio files in this folder")
        features = datasets.Features({audio_column: _audio_struct(), "file": datasets.Value("string")})
        dataset = datasets.Dataset.from_dict(
            {
                audio_column: [{"bytes": None, "path": str(f)} for f in files],
                "file": [str(f.relative_to(path)) for f in files],
            },
            features=features,
        ).cast_column(audio_column, datasets.Audio(decode=False))
    elif path.exists():
        raise CliError(f"{source}: a file; expected an audio folder, a saved dataset or a Hub dataset name")
    else:
        try:
            dataset = datasets.load_dataset(source, split=split)
        except Exception as error:  # datasets raises many kinds, all meaning "cannot get it"
            raise CliError(
                f"{source}: no such folder, and cannot load it as a Hub dataset ({type(error).__name__}: {error})"
            ) from None
    if isinstance(dataset, datasets.DatasetDict):
        names = list(dataset)
        chosen = split or ("train" if "train" in names else names[0] if len(names) == 1 else None)
        if chosen not in dataset:
            raise CliError(f"{source}: choose a split with --split: {names}")
        dataset = dataset[chosen]
    if audio_column not in dataset.column_names:
        raise CliError(f"{source}: no column {audio_column!r} (columns: {dataset.column_names}); pass --audio-column")
    feature = dataset.features[audio_column]
    if isinstance(feature, datasets.Audio) and feature.decode:
        dataset = dataset.cast_column(audio_column, datasets.Audio(decode=False))
    return dataset


def check_manifest(output: Path, manifest: dict) -> None:
    from .cli_support import CliError

    path = output / "manifest.json"
    if path.exists():
        previous = json.loads(path.read_text())
        if previous != manifest:
            changed = sorted(key for key in manifest if previous.get(key) != manifest[key])
            raise CliError(f"-o {output} holds a run with other settings ({', '.join(changed)}); use another -o")
        return
    if output.exists() and any(output.iterdir()):
        raise CliError(f"-o {output} exists and is not an earlier run of this command; use another -o")
    output.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda temporary: Path(temporary).write_text(json.dumps(manifest, indent=2)))


def process_shard(shard, vocoder, args):
    """The shard with the new columns, in its original order; (dataset, audio seconds, failure messages)."""
    import datasets

    column = args.audio_column
    analyze = args.operation == "analyze"
    failures: list[str] = []
    if analyze:
        value_type = datasets.Value("int64") if vocoder.is_codes_model else datasets.Value("float32")
        new_features = {
            ("codes" if vocoder.is_codes_model else "mel"): datasets.Sequence(datasets.Sequence(value_type))
        }
    else:
        new_features = {"vocos_audio": _audio_struct()}
    if len(shard) == 0:  # more shards than rows
        return shard, 0.0, []
    rows = shard.add_column("__row", list(range(len(shard))))
    # Length-sorted batches cut the padding computed; lengths come from the file headers.
    lengths = rows.map(
        lambda batch: {"__length": [audio_length(value) for value in batch[column]]}, batched=True, keep_in_memory=True
    )
    order = np.argsort(np.asarray(lengths["__length"]), kind="stable")
    ordered = lengths.select(order, keep_in_memory=True)

    def vocode(batch):
        prepared, positions, errors = [], [], [None] * len(batch[column])
        names = [describe(value, batch, position) for position, value in enumerate(batch[column])]
        for position, value in enumerate(batch[column]):
            try:
                audio, rate = load_audio(value, name=names[position])
                prepared.append(vocoder.prepare(audio, rate, names[position]))
                positions.append(position)
            except (AudioError, ValueError, OSError) as error:
                errors[position] = str(error)
        results: list = [None] * len(errors)
        compute = vocoder.analyze if analyze else vocoder.resynthesize
        for position, (result, error) in zip(positions, each_or_alone(compute, prepared) if prepared else []):
            if error is not None:
                errors[position] = f"{names[position]}: {error}"
            elif analyze:
                results[position] = result.tolist()
            else:
                results[position] = {"bytes": encode_wav(result, vocoder.sampling_rate), "path": None}
        name = ("codes" if vocoder.is_codes_model else "mel") if analyze else "vocos_audio"
        return {name: results, "vocos_error": errors}

    features = datasets.Features({**ordered.features, **new_features, "vocos_error": datasets.Value("string")})
    processed = ordered.map(vocode, batched=True, batch_size=args.batch_size, features=features, keep_in_memory=True)
    processed = processed.sort("__row", keep_in_memory=True).remove_columns(["__row", "__length"])
    if not analyze:
        processed = processed.cast_column(
            "vocos_audio", datasets.Audio(sampling_rate=vocoder.sampling_rate, decode=False)
        )
    seconds = 0.0
    for length, error in zip(lengths["__length"], processed["vocos_error"]):  # both in row order
        if error is None:
            seconds += length
        else:
            failures.append(error)
    return processed, seconds, failures


def audio_length(value) -> float:
    """Seconds of audio in a dataset value, from the header where possible (0 when it cannot be read: the row then
    fails later, with its reason)."""
    import io

    if isinstance(value, dict) and value.get("array") is not None:
        return len(value["array"]) / float(value.get("sampling_rate") or 1)
    source = value
    if isinstance(value, dict):
        source = value.get("bytes") if value.get("bytes") is not None else value.get("path")
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    return audio_seconds(source) or 0.0


def describe(value, batch, position) -> str:
    if "file" in batch:
        return str(batch["file"][position])
    if isinstance(value, dict) and value.get("path"):
        return str(value["path"])
    if isinstance(value, str):
        return value
    return f"row {position}"


_EMPTY_MARKER = "EMPTY"


def save_atomically(dataset, path: Path) -> None:
    """save_to_disk under a temporary name, then rename. An empty dataset (a shard past the last row) is saved as a
    folder holding only a marker: datasets writes no table for it and cannot load it back."""
    with atomic_path(path, folder=True) as temporary:
        if len(dataset):
            dataset.save_to_disk(str(temporary))
        else:
            (temporary / _EMPTY_MARKER).write_text("this shard has no rows\n")


def merge(output: Path, num_shards: int, final: Path) -> None:
    import datasets

    folders = [output / "shards" / f"{index:05d}" for index in range(num_shards)]
    merged = datasets.concatenate_datasets(
        [datasets.load_from_disk(str(folder)) for folder in folders if not (folder / _EMPTY_MARKER).exists()]
    )
    if final.suffix == ".parquet":
        atomic_write(final, lambda temporary: merged.to_parquet(temporary))
    else:
        save_atomically(merged, final)
