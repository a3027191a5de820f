"""Spectrogram pictures (plotting): a PNG with one panel per array, written atomically; a clear message without
matplotlib."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from hf_vocos.plotting import plot_panels


def test_plot_panels_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    panels = [
        ("input", np.random.default_rng(0).standard_normal((100, 40)), "mel bin"),
        ("output", np.zeros((100, 40)), "mel bin"),
    ]
    path = plot_panels(tmp_path / "out.png", panels)
    assert path == tmp_path / "out.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temporary left beside it


def test_without_matplotlib_the_message_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"--plot needs matplotlib: pip install 'hf_vocos\[cli\]'"):
        plot_panels(tmp_path / "out.png", [("x", np.zeros((2, 2)), "y")])
    assert not any(tmp_path.iterdir())
