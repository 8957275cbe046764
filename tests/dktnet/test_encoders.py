"""Tests for dkt.dktnet.encoders: the encoder registry is the one place an encoder is named."""

from __future__ import annotations

import pytest
import torch

from dkt.dktnet.config import DKTNetConfig
from dkt.dktnet.encoders import ENCODERS, EncoderKind, LiteEncoder, build_encoder
from dkt.dktnet.model import DKTNet


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_each_encoder_s_taps_have_the_channels_it_registers(name: str) -> None:
    encoder = build_encoder(name, (8, 16, 24, 32))
    taps = encoder(torch.rand(1, 3, 32, 32))
    expected = ENCODERS[name].channels or (8, 16, 24, 32)
    assert tuple(t.shape[1] for t in taps) == tuple(expected) == tuple(encoder.channels)


def test_an_unknown_encoder_is_refused_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="cd16x-relu4"):
        DKTNetConfig(encoder="resnet")


def test_one_registration_makes_a_new_encoder_usable(monkeypatch) -> None:
    """A new encoder needs its module and one entry: config and model pick it up."""
    wide = (8, 16, 32, 48)
    monkeypatch.setitem(ENCODERS, "wide-lite", EncoderKind(lambda _: LiteEncoder(wide), wide))
    cfg = DKTNetConfig(encoder="wide-lite", kernel_dim=8, working_size=32)
    model = DKTNet(cfg).eval()
    with torch.inference_mode():
        out = model(torch.rand(1, 3, 32, 32), torch.ones(1, 1, 32, 32))
    assert out.shape == (1, 3, 32, 32)
