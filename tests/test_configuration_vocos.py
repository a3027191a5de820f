"""VocosConfig and VocosEncodecConfig: release defaults, the Hub's field names, older names mapped, validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from transformers import AutoConfig

from hf_vocos import VocosConfig, VocosEncodecConfig


def test_defaults_are_vocos_mel_24khz():
    config = VocosConfig()
    assert config.model_type == "vocos"
    assert (config.n_mels, config.hidden_size, config.intermediate_size, config.num_layers) == (100, 512, 1536, 8)
    assert (config.n_fft, config.hop_length, config.win_length, config.istft_padding) == (1024, 256, 1024, "center")
    assert (config.kernel_size, config.padding, config.layer_norm_eps, config.hidden_act) == (7, 3, 1e-6, "gelu")
    assert config.layer_scale_init_value == pytest.approx(1 / 8)
    assert config.sample_rate == 24000 and config.frame_rate == pytest.approx(93.75)
    assert not config.is_codes_model and config.use_adaptive_norm is False and config.bandwidths is None
    # the names older code used read the same fields
    assert config.num_hidden_layers == 8 and config.sampling_rate == 24000 and config.input_channels == 100


def test_defaults_are_vocos_encodec_24khz():
    config = VocosEncodecConfig()
    assert config.model_type == "vocos_encodec"
    assert (config.codebook_dim, config.num_quantizers, config.hidden_size, config.intermediate_size) == (
        128,
        16384,
        384,
        1152,
    )
    assert (config.n_fft, config.hop_length, config.istft_padding, config.bandwidths) == (
        1280,
        320,
        "same",
        [1.5, 3.0, 6.0, 12.0],
    )
    assert config.is_codes_model and config.use_adaptive_norm and config.input_channels == 128
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
    "config_class, kwargs, field",
    [
        (VocosConfig, {"hidden_size": 0}, "hidden_size"),
        (VocosConfig, {"num_layers": 2.5}, "num_layers"),
        (VocosConfig, {"n_mels": True}, "n_mels"),
        (VocosConfig, {"kernel_size": 4}, "kernel_size"),
        (VocosConfig, {"padding": 2}, "padding"),
        (VocosConfig, {"n_fft": 1023, "win_length": 1000}, "n_fft"),
        (VocosConfig, {"istft_padding": "valid"}, "istft_padding"),
        (VocosConfig, {"hop_length": 1024}, "hop_length"),
        (VocosConfig, {"win_length": 2048}, "win_length"),
        (VocosConfig, {"hidden_act": "swishy"}, "hidden_act"),
        (VocosConfig, {"layer_norm_eps": -1.0}, "layer_norm_eps"),
        (VocosConfig, {"layer_scale_init_value": 0.0}, "layer_scale_init_value"),
        (VocosConfig, {"max_magnitude": float("nan")}, "max_magnitude"),
        (VocosConfig, {"input_channels": 100, "input_kernel_size": 5}, "input_kernel_size"),
        (VocosEncodecConfig, {"bandwidths": []}, "bandwidths"),
        (VocosEncodecConfig, {"bandwidths": [6.0, 6.0]}, "bandwidths"),
        (VocosEncodecConfig, {"bandwidths": [-1.5]}, "bandwidths"),
        (VocosEncodecConfig, {"num_quantizers": 8192}, "num_quantizers"),
        (VocosEncodecConfig, {"num_quantizers": 16000}, "num_quantizers"),
        (VocosEncodecConfig, {"codebook_dim": 0}, "codebook_dim"),
        (VocosEncodecConfig, {"use_adaptive_norm": "yes"}, "use_adaptive_norm"),
    ],
)
def test_invalid_values_raise_naming_the_field(config_class, kwargs, field):
    with pytest.raises(ValueError, match=f"`{field}`"):
        config_class(**kwargs)


def test_a_mel_config_that_describes_an_encodec_model_names_the_class_to_use():
    with pytest.raises(ValueError, match="describes an EnCodec model.*use VocosEncodecConfig"):
        VocosConfig(bandwidths=[1.5, 3.0, 6.0, 12.0], use_adaptive_norm=True)


@pytest.mark.parametrize(
    "config", [VocosConfig(hidden_size=64), VocosEncodecConfig(hidden_size=64)], ids=["mel", "encodec"]
)
def test_round_trip_and_auto_config(tmp_path, config):
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    # The Hub's field names, none of the older ones.
    assert not {"input_channels", "num_hidden_layers", "sampling_rate", "num_codebooks", "input_kernel_size"} & set(
        saved
    )
    assert ("n_mels" in saved) != config.is_codes_model and ("codebook_dim" in saved) == config.is_codes_model
    for loader in (AutoConfig.from_pretrained, VocosConfig.from_pretrained, type(config).from_pretrained):
        reloaded = loader(tmp_path)
        assert type(reloaded) is type(config)
        assert reloaded.to_diff_dict() == config.to_diff_dict()


@pytest.mark.parametrize(
    "fields, config_class, expected",
    [
        # generations A-B: hidden_dim, intermediate_dim, spec_padding, input_channels
        (
            {
                "input_channels": 100,
                "hidden_dim": 64,
                "intermediate_dim": 96,
                "num_layers": 3,
                "spec_padding": "center",
                "use_adaptive_norm": False,
                "num_bandwidths": 4,
            },
            VocosConfig,
            {"n_mels": 100, "hidden_size": 64, "intermediate_size": 96, "num_layers": 3, "istft_padding": "center"},
        ),
        # generation C mel: bandwidths written although the norms are not adaptive: a mel model
        (
            {
                "input_channels": 100,
                "hidden_size": 64,
                "intermediate_size": 96,
                "istft_padding": "center",
                "use_adaptive_norm": False,
                "bandwidths": [1.5, 3.0, 6.0, 12.0],
                "sampling_rate": 22050,
            },
            VocosConfig,
            {"n_mels": 100, "hidden_size": 64, "sample_rate": 22050},
        ),
        # generation D EnCodec: n_mels is the codebook width, use_adaptive_norm marks the variant
        (
            {
                "n_mels": 128,
                "hidden_size": 64,
                "intermediate_size": 96,
                "istft_padding": "same",
                "use_adaptive_norm": True,
                "bandwidths": [1.5, 3.0, 6.0, 12.0],
            },
            VocosEncodecConfig,
            {"codebook_dim": 128, "hidden_size": 64, "num_quantizers": 16384},
        ),
        # hf_vocos before the Hub format
        (
            {
                "input_channels": 128,
                "hidden_size": 64,
                "num_hidden_layers": 2,
                "input_kernel_size": 7,
                "bandwidths": [1.5, 3.0, 6.0, 12.0],
                "num_codebooks": 16,
                "use_adaptive_norm": True,
                "sampling_rate": 24000,
                "n_fft": 1280,
                "hop_length": 320,
            },
            VocosEncodecConfig,
            {"codebook_dim": 128, "num_layers": 2, "num_quantizers": 16384, "sample_rate": 24000},
        ),
        (
            {
                "input_channels": 80,
                "hidden_size": 64,
                "num_hidden_layers": 2,
                "input_kernel_size": 7,
                "bandwidths": None,
                "num_codebooks": None,
                "use_adaptive_norm": False,
                "codebook_size": 1024,
                "codebook_dim": 128,
            },
            VocosConfig,
            {"n_mels": 80, "num_layers": 2},
        ),
    ],
)
def test_older_config_formats_are_mapped(tmp_path, fields, config_class, expected):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vocos", **fields}))
    for loader in (AutoConfig.from_pretrained, VocosConfig.from_pretrained):
        config = loader(tmp_path)
        assert type(config) is config_class
        assert {key: getattr(config, key) for key in expected} == expected


def test_release_sizes_have_the_hub_formats_weights():
    """The release-size models hold exactly the weights hub-formats.md lists for generation E: mel 81 tensors of
    13,532,674 elements, EnCodec 82 (the codebook table added) of 10,082,690, under its names and shapes."""
    from hub_formats import expected_generation_e_weights

    from hf_vocos import VocosEncodecModel, VocosModel

    for model, tensors, elements in (
        (VocosModel(VocosConfig()), 81, 13_532_674),
        (VocosEncodecModel(VocosEncodecConfig()), 82, 10_082_690),
    ):
        state = model.state_dict()
        assert len(state) == tensors and sum(value.numel() for value in state.values()) == elements
        config = model.config.to_dict()
        assert {name: tuple(value.shape) for name, value in state.items()} == expected_generation_e_weights(config)


def test_a_transformers_that_registers_vocos_itself_does_not_break_the_import():
    """If a later transformers ships `vocos` / `vocos_encodec`, `import hf_vocos` still works and hf_vocos's classes
    are the ones the Auto classes give (registered with exist_ok: transformers looks up registered classes first)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        from transformers import PreTrainedConfig
        from transformers.models.auto import configuration_auto

        class NativeVocosConfig(PreTrainedConfig):
            model_type = "vocos"

        for model_type in ("vocos", "vocos_encodec"):  # as if transformers had them built in
            configuration_auto.CONFIG_MAPPING._mapping[model_type] = "NativeVocosConfig"
        import hf_vocos
        from transformers import AutoConfig, AutoModel
        assert type(AutoConfig.for_model("vocos")) is hf_vocos.VocosConfig
        assert type(AutoConfig.for_model("vocos_encodec")) is hf_vocos.VocosEncodecConfig
        assert type(AutoModel.from_config(hf_vocos.VocosEncodecConfig(num_layers=1))) is hf_vocos.VocosEncodecModel
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
