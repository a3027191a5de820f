"""Spectrogram pictures for the command line's `--plot`: input and output stacked, so one can look instead of
listen. Needs matplotlib (`pip install "hf_vocos[cli]"`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .audio_io import atomic_write

__all__ = ["plot_panels"]


def plot_panels(path: str | os.PathLike, panels: list[tuple[str, np.ndarray, str]]) -> Path:
    """Write a PNG of stacked images, one per `(title, array of shape (rows, frames), y label)`, atomically."""
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError("--plot needs matplotlib: pip install 'hf_vocos[cli]'") from error
    figure = Figure(figsize=(10, 2.8 * len(panels)), layout="constrained")
    axes = figure.subplots(len(panels), 1, squeeze=False)[:, 0]
    for axis, (title, image, label) in zip(axes, panels):
        shown = axis.imshow(
            np.asarray(image, dtype=np.float32), origin="lower", aspect="auto", cmap="magma", interpolation="nearest"
        )
        axis.set_title(title, fontsize=10)
        axis.set_ylabel(label)
        figure.colorbar(shown, ax=axis)
    axes[-1].set_xlabel("frame")
    return atomic_write(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))
