"""What the subcommands share (cli_support): a model that cannot load or a bad option becomes one CliError line
naming the option."""

from __future__ import annotations

import argparse

import pytest
from conftest import save_small_checkpoint

from hf_vocos.cli_support import DTYPE_CHOICES, CliError, load_vocoder
from hf_vocos.vocoder import DTYPE_CHOICES as VOCODER_DTYPE_CHOICES


def _args(folder, **overrides):
    values = dict(model=str(folder), device="cpu", dtype="float32", batch_size=2, long_seconds=60.0)
    return argparse.Namespace(**{**values, **overrides})


def test_load_vocoder(tmp_path):
    folder = save_small_checkpoint(tmp_path / "mel", "mel", seed=3)
    vocoder = load_vocoder(_args(folder))
    assert vocoder.batch_size == 2 and vocoder.sampling_rate == 24000


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model": "no/such-model-here"}, r"^--model no/such-model-here: cannot load it \("),
        ({"batch_size": 0}, r"^--batch-size 0: expected a whole number >= 1$"),
        ({"dtype": "int8"}, r"^--dtype 'int8': expected one of"),
    ],
)
def test_failures_become_one_cli_error_line(tmp_path, monkeypatch, overrides, message):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # (read at import: the variable is too late)
    folder = save_small_checkpoint(tmp_path / "mel", "mel", seed=3)
    with pytest.raises(CliError, match=message) as raised:
        load_vocoder(_args(folder, **overrides))
    assert "\n" not in str(raised.value)


def test_dtype_choices_are_the_vocoders():
    assert DTYPE_CHOICES == VOCODER_DTYPE_CHOICES
