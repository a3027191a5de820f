"""The environment check `import hf_vocos` runs first (_environment): a broken torchaudio/torchcodec or an old
transformers gives one message saying what is wrong and how to fix it, not a traceback from inside transformers."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from hf_vocos._environment import BrokenEnvironmentError, check_transformers


@pytest.mark.parametrize("package", ["torchaudio", "torchcodec"])
def test_broken_audio_backend_gives_one_clear_message(tmp_path, package):
    fake = tmp_path / "site"
    (fake / package).mkdir(parents=True)
    (fake / package / "__init__.py").write_text(
        f'raise OSError("lib{package}.so: undefined symbol: _ZN3c1017RegisterOperatorsD1Ev")\n'
    )
    (fake / f"{package}-2.9.0.dist-info").mkdir()
    (fake / f"{package}-2.9.0.dist-info" / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {package}\nVersion: 2.9.0\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", "import hf_vocos"], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("hf_vocos._environment.BrokenEnvironmentError: ")
    assert f"{package} 2.9.0 is installed but cannot be loaded with torch {torch.__version__}" in last
    assert "undefined symbol" in last and f"Fix: pip uninstall -y {package}" in last
    assert "site-packages/transformers" not in result.stderr  # not a traceback from inside transformers
    assert len(result.stderr.strip().splitlines()) < 12


def test_old_transformers_gives_one_clear_message():
    with pytest.raises(
        BrokenEnvironmentError,
        match=r"needs transformers >= 5.23, but transformers 4.46.0 is installed.*pip install -U",
    ):
        check_transformers("4.46.0")
    check_transformers("5.23.0")
