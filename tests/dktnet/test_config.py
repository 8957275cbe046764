"""Tests for dkt.dktnet.config: the model shape stored in every checkpoint."""

from __future__ import annotations

import json

import pytest

from dkt.dktnet.config import DKTNetConfig
from dkt.dktnet.encoders import ENCODERS
from tests.tiny import tiny_config


@pytest.mark.parametrize(
    "config",
    [
        DKTNetConfig(),
        DKTNetConfig(encoder="vgg19", kernel_dim=64, skip_adain=False, working_size=128),
        DKTNetConfig(
            lite_channels=(4, 8, 8, 16), kernel_dim=4, prototypes=3, extra={"note": "x", "n": 2}
        ),
    ],
)
def test_round_trip_through_a_dict_and_json(config: DKTNetConfig) -> None:
    data = config.to_dict()
    assert DKTNetConfig.from_dict(data) == config
    # What a checkpoint stores is JSON: the round trip must survive it too.
    again = DKTNetConfig.from_dict(json.loads(json.dumps(data)))
    assert again == config
    assert isinstance(again.lite_channels, tuple)


def test_to_dict_holds_every_field() -> None:
    data = tiny_config().to_dict()
    assert data == {
        "encoder": "lite",
        "lite_channels": [4, 8, 8, 16],
        "kernel_dim": 4,
        "prototypes": 3,
        "generator_hidden": 16,
        "cov_rank": 0,
        "skip_adain": True,
        "decoder_skips": True,
        "working_size": 256,
        "extra": {},
    }


def test_partial_dict_takes_defaults() -> None:
    config = DKTNetConfig.from_dict({"kernel_dim": 16})
    assert config.kernel_dim == 16
    assert config.encoder == DKTNetConfig().encoder


def test_unknown_keys_are_rejected_by_name() -> None:
    data = tiny_config().to_dict()
    data["kernal_dim"] = 8
    data["zz_extra"] = 1
    with pytest.raises(ValueError, match="kernal_dim") as excinfo:
        DKTNetConfig.from_dict(data)
    assert "zz_extra" in str(excinfo.value)


@pytest.mark.parametrize("encoder", ["vgg16", "", "LITE"])
def test_invalid_encoder_is_rejected(encoder: str) -> None:
    with pytest.raises(ValueError, match="encoder") as excinfo:
        DKTNetConfig(encoder=encoder)
    assert repr(encoder) in str(excinfo.value)
    with pytest.raises(ValueError, match="encoder"):
        DKTNetConfig.from_dict({"encoder": encoder})


@pytest.mark.parametrize(
    "overrides",
    [
        {"lite_channels": (4, 8, 8)},
        {"lite_channels": (4, 0, 8, 16)},
        {"kernel_dim": 0},
        {"kernel_dim": 17},  # more than the deepest lite channel count
        {"prototypes": 0},
        {"generator_hidden": 0},
        {"working_size": 4},
    ],
)
def test_invalid_shapes_are_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        tiny_config(**overrides)


def test_channels_property() -> None:
    assert tiny_config().channels == (4, 8, 8, 16)
    assert isinstance(tiny_config().channels, tuple)
    vgg = DKTNetConfig(encoder="vgg19", lite_channels=(4, 8, 8, 16), kernel_dim=64)
    assert vgg.channels == ENCODERS["vgg19"].channels == (64, 128, 256, 512)
    # kernel_dim is bounded by the encoder's deepest channel count, not by lite_channels.
    assert DKTNetConfig(encoder="vgg19", lite_channels=(4, 8, 8, 16), kernel_dim=512)
    with pytest.raises(ValueError):
        DKTNetConfig(encoder="vgg19", kernel_dim=513)


def test_config_is_immutable() -> None:
    config = tiny_config()
    with pytest.raises(AttributeError):
        config.kernel_dim = 8  # type: ignore[misc]
