from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="hf_vocos",
    version="0.1.0",
    description="The Vocos neural vocoder as a Hugging Face transformers model: mel or EnCodec codes in, audio out.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    package_dir={"": "src"},
    packages=find_packages("src"),
    python_requires=">=3.10",
    # torch is left unpinned on purpose: install the build you want first (here: `pip install torch==2.13.0`, the
    # CPU wheel); any torch >= 2.4 satisfies this and pip then installs no other.
    install_requires=[
        "torch>=2.4",
        "transformers>=5.23,<6",
        "huggingface_hub>=1.0",
        "safetensors>=0.4",
        "numpy>=1.24",
        # the command line: decoding/encoding audio, resampling, progress bars
        "soundfile>=0.12",
        "soxr>=0.3",
        "tqdm>=4.60",
    ],
    entry_points={"console_scripts": ["hf-vocos=hf_vocos.cli:main"]},
    extras_require={
        # The reference implementation (`vocos==0.1.0`, `encodec==0.1.1`) is installed by the Makefile with
        # --no-deps: their requirement on torchaudio would pull a torch build with CUDA, and torchaudio cannot load
        # with the CPU torch build anyway. These are their light requirements plus the test tools.
        "dev": [
            "pytest>=8",
            "ruff==0.8.0",
            "matplotlib>=3.6",
            "datasets>=3.0",
            "accelerate>=1.0",
            "pesq>=0.0.4",
            "pystoi>=0.4",
            "librosa>=0.10",
            "scipy>=1.10",
            "einops",
            "pyyaml",
        ],
        # ONNX export (hf_vocos.onnx_export) and running the exported graph.
        "onnx": ["onnx>=1.16", "onnxruntime>=1.18", "onnxscript>=0.5"],
        # `hf-vocos ... --plot`, and `hf-vocos dataset` (several processes with accelerate).
        "cli": ["matplotlib>=3.6", "datasets>=3.0", "accelerate>=1.0"],
        # hf_vocos.training: the loop runs on accelerate; PESQ/STOI validation and TensorBoard logs when present.
        "train": ["accelerate>=1.0", "datasets>=3.0", "pesq>=0.0.4", "pystoi>=0.4", "tensorboard>=2.10"],
    },
)
