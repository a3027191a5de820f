"""VocosConfig: release defaults, derived EnCodec fields, validation, serialisation."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import RELEASE_ENCODEC
from transformers import AutoConfig

from hf_vocos import VocosConfig


def test_defaults_are_vocos_mel_24khz():
    config = VocosConfig()
    assert config.model_type == "vocos"
    assert (config.input_channels, config.hidden_size, config.intermediate_size, config.num_hidden_layers) == (100, 512, 1536, 8)
    assert (config.n_fft, config.hop_length, config.win_length, config.istft_padding) == (1024, 256, 1024, "center")
    assert (config.kernel_size, config.input_kernel_size, config.layer_norm_eps, config.hidden_act) == (7, 7, 1e-6, "gelu")
    assert config.layer_scale_init_value == pytest.approx(1 / 8)
    assert config.sampling_rate == 24000 and config.frame_rate == pytest.approx(93.75)
    assert not config.is_codes_model and config.use_adaptive_norm is False and config.num_codebooks is None


def test_encodec_variant_derives_codebooks():
    config = VocosConfig(**RELEASE_ENCODEC)
    assert config.is_codes_model and config.use_adaptive_norm
    assert config.frame_rate == 75
    # EnCodec 24 kHz: 75 frames/s x 10 bits per codebook = 750 bit/s per codebook.
    assert [config.num_quantizers_for_bandwidth(b) for b in config.bandwidths] == [2, 4, 8, 16]
    assert config.num_codebooks == 16
    assert config.bandwidth_index(6) == 2 and config.bandwidth_index(12.0) == 3
    with pytest.raises(ValueError, match=r"bandwidth.*24.*\[1.5, 3.0, 6.0, 12.0\]"):
        config.bandwidth_index(24.0)
    assert config.bandwidth_index(6.0000004) == 2 and config.bandwidth_index(np.float32(1.5)) == 0  # within 1e-6
    for bad in ("6.0", None, True):
        with pytest.raises(TypeError, match=r"`bandwidth` must be a number in kbps \(e.g. 6.0\), got"):
            config.bandwidth_index(bad)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"hidden_size": 0}, "hidden_size"),
        ({"num_hidden_layers": 2.5}, "num_hidden_layers"),
        ({"input_channels": True}, "input_channels"),
        ({"kernel_size": 4}, "kernel_size"),
        ({"input_kernel_size": 2}, "input_kernel_size"),
        ({"istft_padding": "valid"}, "istft_padding"),
        ({"hop_length": 1024}, "hop_length"),
        ({"win_length": 2048}, "win_length"),
        ({"hidden_act": "swishy"}, "hidden_act"),
        ({"layer_norm_eps": -1.0}, "layer_norm_eps"),
        ({"layer_scale_init_value": 0.0}, "layer_scale_init_value"),
        ({"max_magnitude": float("nan")}, "max_magnitude"),
        ({**RELEASE_ENCODEC, "bandwidths": []}, "bandwidths"),
        ({**RELEASE_ENCODEC, "bandwidths": [6.0, 6.0]}, "bandwidths"),
        ({**RELEASE_ENCODEC, "bandwidths": [-1.5]}, "bandwidths"),
        ({**RELEASE_ENCODEC, "input_channels": 100}, "input_channels"),
        ({**RELEASE_ENCODEC, "num_codebooks": 8}, "num_codebooks"),
        ({"num_codebooks": 8}, "num_codebooks"),
        ({"use_adaptive_norm": True}, "use_adaptive_norm"),
    ],
)
def test_invalid_values_raise_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"`{field}`"):
        VocosConfig(**kwargs)


def test_round_trip_and_auto_config(tmp_path):
    config = VocosConfig(**RELEASE_ENCODEC)
    config.save_pretrained(tmp_path)
    reloaded = AutoConfig.from_pretrained(tmp_path)
    assert type(reloaded) is VocosConfig
    assert reloaded.to_diff_dict() == config.to_diff_dict()
    assert reloaded.bandwidths == [1.5, 3.0, 6.0, 12.0] and reloaded.num_codebooks == 16
