"""The training-free ``adain`` baseline, on the real pretrained relu3_1 weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dkt.dktnet.config import DKTNetConfig
from dkt.dktnet.model import DKTNet
from dkt.dktnet.vgg_weights import load_inverter_state, load_vgg19_encoder
from dkt.evaluation.adain import MaskedAdaIN
from dkt.evaluation.style import colour_distance


@pytest.fixture(scope="module")
def adain(shared_weights: Path) -> MaskedAdaIN:
    return MaskedAdaIN(
        shared_weights / "vgg_normalised_conv3_1.pth",
        shared_weights / "feature_invertor_conv3_1.pth",
    )


def _composite() -> tuple[np.ndarray, np.ndarray]:
    """A blue striped painting with a flat red square pasted in (odd size: padding is used)."""
    yy, xx = np.mgrid[0:61, 0:75]
    painting = np.stack([40 + 0 * xx, 60 + 40 * ((xx // 3) % 2), 170 + 60 * ((yy // 4) % 2)], -1)
    comp = painting.astype(np.uint8)
    mask = np.zeros((61, 75), np.float32)
    mask[20:45, 25:55] = 1.0
    comp[mask > 0] = (220, 30, 30)
    return comp, mask


def test_adain_moves_the_object_to_the_painting_and_keeps_the_painting(
    adain: MaskedAdaIN,
) -> None:
    comp, mask = _composite()
    out = adain(comp, mask)
    assert out.shape == comp.shape and out.dtype == np.uint8
    assert np.array_equal(out[mask == 0], comp[mask == 0])
    assert colour_distance(out, mask) < 0.5 * colour_distance(comp, mask)


def test_an_untrained_relu3_dktnet_starts_as_the_adain_baseline(
    adain: MaskedAdaIN, shared_weights: Path
) -> None:
    """Frozen pretrained encoder, inverter decoder, zero skips, tau ~ 0: masked AdaIN."""
    torch.manual_seed(0)
    model = DKTNet(DKTNetConfig(encoder="vgg19-relu3", kernel_dim=16, cov_rank=4)).eval()
    model.encoder.load_state_dict(
        load_vgg19_encoder(shared_weights / "vgg_normalised_conv3_1.pth").state_dict()
    )
    model.decoder.load_state_dict(
        load_inverter_state(shared_weights / "feature_invertor_conv3_1.pth"), strict=False
    )
    comp, mask = _composite()
    x = torch.from_numpy(comp).permute(2, 0, 1)[None].float() / 255.0
    m = torch.from_numpy(mask)[None, None]
    with torch.no_grad():
        ours = model(x, m)
        reference = adain.render(x, m)
    # tau starts at about 1% of the standardised features, not at exactly zero.
    assert (ours - reference).abs().max().item() < 0.05
    assert (ours - reference).abs().mean().item() < 0.005
