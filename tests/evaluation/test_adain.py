"""The training-free ``adain`` baselines: relu3_1 on the real pretrained VGG-19 weights,
``adain-relu4`` on the real distilled ones and on self-made files of their layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dkt.dktnet.config import DKTNetConfig
from dkt.dktnet.model import DKTNet
from dkt.dktnet.pretrained import CD16X_DECODER_RELU4_FILE, CD16X_ENCODER_RELU4_FILE
from dkt.dktnet.vgg_weights import load_inverter_state, load_vgg19_encoder
from dkt.errors import CheckpointError
from dkt.evaluation.adain import MaskedAdaIN
from dkt.evaluation.style import colour_distance
from tests.cd16x_files import write_cd16x_decoder, write_cd16x_encoder


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


# --------------------------------------------------------------------------- adain-relu4


def test_adain_relu4_on_the_real_distilled_weights(shared_cd16x_weights: Path) -> None:
    adain4 = MaskedAdaIN(
        shared_cd16x_weights / CD16X_ENCODER_RELU4_FILE,
        shared_cd16x_weights / CD16X_DECODER_RELU4_FILE,
        variant="adain-relu4",
    )
    comp, mask = _composite()
    out = adain4(comp, mask)
    assert out.shape == comp.shape and out.dtype == np.uint8
    assert np.array_equal(out[mask == 0], comp[mask == 0])
    assert colour_distance(out, mask) < 0.5 * colour_distance(comp, mask)
    assert "VGG-19 approximation" in adain4.describe()["label"]


@pytest.fixture(scope="module")
def tiny_cd16x(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("cd16x")
    return (
        write_cd16x_encoder(folder / CD16X_ENCODER_RELU4_FILE),
        write_cd16x_decoder(folder / CD16X_DECODER_RELU4_FILE),
    )


def test_adain_relu4_loads_both_files_and_works_at_relu4_1(tiny_cd16x: tuple[Path, Path]) -> None:
    encoder_file, decoder_file = tiny_cd16x
    adain4 = MaskedAdaIN(encoder_file, decoder_file, variant="adain-relu4")
    encoder_state = torch.load(encoder_file, weights_only=True)["model"]
    decoder_state = torch.load(decoder_file, weights_only=True)["model"]
    assert torch.equal(adain4.encoder.convs["conv41"].weight, encoder_state["conv41.weight"])
    assert torch.equal(adain4.decoder.convs["conv11"].weight, decoder_state["conv11.weight"])
    assert adain4.encoder.tap_names[-1] == "relu4_1" and not len(adain4.decoder.skips)
    assert adain4.describe() == {
        "label": "adain-relu4 (distilled VGG-19 approximation, cd16x)",
        "network": "distilled-vgg19-cd16x",
        "tap": "relu4_1",
        "weights": {"encoder": encoder_file.name, "decoder": decoder_file.name},
    }


def test_adain_relu4_keeps_the_painting_and_follows_its_statistics(
    tiny_cd16x: tuple[Path, Path],
) -> None:
    """Random weights: the plumbing, not the look. The object is re-normalised to the
    painting's relu4_1 statistics, so another painting gives another object."""
    adain4 = MaskedAdaIN(*tiny_cd16x, variant="adain-relu4")
    comp, mask = _composite()
    out = adain4(comp, mask)
    assert out.shape == comp.shape and out.dtype == np.uint8
    assert np.array_equal(out[mask == 0], comp[mask == 0])
    other = np.where(mask[..., None] > 0, comp, 255 - comp).astype(np.uint8)
    moved = adain4(other, mask)
    assert np.abs(moved[mask > 0].astype(int) - out[mask > 0]).mean() > 1.0


def test_a_wrong_file_for_adain_relu4_names_it(tmp_path: Path, tiny_cd16x) -> None:
    encoder_file, _ = tiny_cd16x
    with pytest.raises(CheckpointError, match="not a distilled relu4_1 decoder") as err:
        MaskedAdaIN(encoder_file, encoder_file, variant="adain-relu4")
    assert encoder_file.name in str(err.value)
