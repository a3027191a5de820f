"""ONNX export of `VocosModel`, and a runner with the model's call signature on onnxruntime.

`torch.istft` does not export to ONNX (gemelo-ai/vocos#38). Here the inverse STFT is a matmul with the inverse DFT
basis (window folded in) followed by the overlap-add as shifted additions (or a fold when the hop does not divide
n_fft): plain MatMul/Pad/Add ops, with a dynamic batch and time axis. One graph serves every bandwidth of an EnCodec
model (the bandwidth's norm row is an input). Needs the `[onnx]` extra: `onnx`, `onnxruntime` and `onnxscript`.

    from hf_vocos.onnx_export import export_onnx, VocosOnnxModel
    export_onnx(model, "vocos-onnx")                    # writes model.onnx + config.json
    onnx_model = VocosOnnxModel.from_pretrained("vocos-onnx")
    audio = onnx_model(input_features=mel).audio        # same arguments and output as VocosModel
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .configuration_vocos import VocosConfig
from .inference_vocos import sample_mask
from .modeling_vocos import VocosOutput, check_attention_mask, check_bandwidth, check_codes, check_features

__all__ = ["VocosOnnxModel", "export_onnx"]

ONNX_FILE_NAME = "model.onnx"


class _ExportedVocos(nn.Module):
    """The decode path with ONNX-friendly inputs: features or codes, a frame mask, the bandwidth's norm row. It runs
    the model's `onnx` inference implementation (`inference_vocos.OnnxImplementation`)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor, attention_mask: torch.Tensor, bandwidth_id: torch.Tensor) -> torch.Tensor:
        model = self.model
        features = model.embed_codes(inputs) if model.config.is_codes_model else inputs
        frame_mask = attention_mask[:, :, None].to(features.dtype)
        norm_row = bandwidth_id if model.config.use_adaptive_norm else None
        return model.implementation_for(features).decode(model, features, frame_mask, norm_row)


@contextlib.contextmanager
def _implementation(model, name: str):
    previous = model.inference_implementation
    model.inference_implementation = name
    try:
        yield
    finally:
        model.inference_implementation = previous


def export_onnx(model, save_directory: str | os.PathLike, opset_version: int = 18) -> Path:
    """Export `model` (float32) to `save_directory/model.onnx`, with its `config.json` beside it.

    Inputs: `input_features` float32 (batch, channels, frames) — or for EnCodec models `codes` int64
    (num_quantizers, batch, frames) — `attention_mask` int64 (batch, frames) and `bandwidth_id` int64 (1,); batch,
    frames (and num_quantizers) are dynamic. Output: `audio` float32 (batch, samples). `VocosOnnxModel` fills the
    mask and bandwidth id from the same arguments `VocosModel.forward` takes.
    """
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise ImportError("ONNX export needs the [onnx] extra: pip install 'hf_vocos[onnx]'") from error
    if model.dtype != torch.float32:
        raise ValueError(f"export a float32 model (got {model.dtype}); onnxruntime runs it in float32.")
    config = model.config
    save_directory = Path(save_directory)
    save_directory.mkdir(parents=True, exist_ok=True)
    device = model.device  # example inputs where the weights are (a GPU model exports as it is, without a copy)
    frames = torch.export.Dim("frames", min=2)
    batch = torch.export.Dim("batch", min=1)
    if config.is_codes_model:
        quantizers = torch.export.Dim("num_quantizers", min=1, max=config.num_codebooks)
        example = torch.zeros(
            config.num_quantizers_for_bandwidth(config.bandwidths[0]), 2, 48, dtype=torch.long, device=device
        )
        input_shapes = {0: quantizers, 1: batch, 2: frames}
        input_name = "codes"
    else:
        example = torch.zeros(2, config.input_channels, 48, device=device)
        input_shapes = {0: batch, 2: frames}
        input_name = "input_features"
    arguments = (
        example,
        torch.ones(2, 48, dtype=torch.long, device=device),
        torch.zeros(1, dtype=torch.long, device=device),
    )
    wrapper = _ExportedVocos(model).eval()
    with _implementation(model, "onnx"), torch.no_grad():
        program = torch.onnx.export(
            wrapper,
            arguments,
            input_names=[input_name, "attention_mask", "bandwidth_id"],
            output_names=["audio"],
            dynamic_shapes=(input_shapes, {0: batch, 1: frames}, None),
            opset_version=opset_version,
            dynamo=True,
            external_data=False,
        )
    program.save(str(save_directory / ONNX_FILE_NAME))
    config.save_pretrained(save_directory)
    return save_directory / ONNX_FILE_NAME


class VocosOnnxModel:
    """A `VocosModel` exported with `export_onnx`, run by onnxruntime: same arguments, same `VocosOutput`, same
    input checks (they raise before anything reaches onnxruntime).

    Without `session_options`, onnxruntime's worker threads sleep as soon as a run ends instead of spinning for a
    while (onnxruntime's default): this class always shares its process with torch (its tensors, the feature
    extractor), and spinning workers took a core from torch's threads, making torch work up to twice as slow
    (docs/benchmarks.md, "ONNX"), while onnxruntime's own times stayed the same. Pass `session_options` to choose."""

    def __init__(
        self,
        onnx_path: str | os.PathLike,
        config: VocosConfig,
        providers: list[str] | None = None,
        session_options=None,
    ):
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError("VocosOnnxModel needs the [onnx] extra: pip install 'hf_vocos[onnx]'") from error
        if session_options is None:
            session_options = onnxruntime.SessionOptions()
            session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.config = config
        self.session = onnxruntime.InferenceSession(
            str(onnx_path), sess_options=session_options, providers=providers or ["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    @classmethod
    def from_pretrained(cls, save_directory: str | os.PathLike, **kwargs) -> "VocosOnnxModel":
        """Load `model.onnx` and `config.json` written by `export_onnx`."""
        save_directory = Path(save_directory)
        return cls(save_directory / ONNX_FILE_NAME, VocosConfig.from_pretrained(save_directory), **kwargs)

    def __call__(self, input_features=None, codes=None, bandwidth=None, attention_mask=None, return_dict=True):
        """Decode like `VocosModel.forward` (see there); returns torch tensors."""
        if (input_features is None) == (codes is None):
            raise ValueError(
                "Pass exactly one of `input_features` and `codes`; got "
                f"{'both' if input_features is not None else 'neither'}."
            )
        if codes is not None:
            inputs = check_codes(self.config, codes, bandwidth)
            if self.input_name != "codes":
                raise ValueError("`codes` were given, but this ONNX model was exported from a mel model.")
            batch_size, num_frames = inputs.shape[1], inputs.shape[2]
        else:
            inputs = check_features(self.config, input_features).float()
            if self.input_name != "input_features":
                raise ValueError("`input_features` were given, but this ONNX model takes EnCodec `codes`.")
            batch_size, num_frames = inputs.shape[0], inputs.shape[2]
        if num_frames < 2:
            raise ValueError(f"the ONNX model needs at least 2 frames, got {num_frames}.")
        norm_row = check_bandwidth(self.config, bandwidth)
        mask = check_attention_mask(attention_mask, batch_size, num_frames)
        feed = {
            self.input_name: inputs.cpu().numpy(),
            "attention_mask": (
                np.ones((batch_size, num_frames), np.int64) if mask is None else mask.cpu().numpy().astype(np.int64)
            ),
            "bandwidth_id": np.array([norm_row or 0], dtype=np.int64),
        }
        audio = torch.from_numpy(self.session.run(["audio"], feed)[0])
        output_mask = sample_mask(self.config, audio, None if mask is None else mask.sum(dim=1))
        if mask is not None:
            audio = audio * output_mask
        if not return_dict:
            return audio, output_mask
        return VocosOutput(audio=audio, attention_mask=output_mask)
