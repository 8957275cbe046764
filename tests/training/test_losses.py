"""Tests for training.losses (style, content, identity, autoencoder) and training.lossnet."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import pytest
import torch

from dktnet.vgg_weights import ADAIN_INDEX, IMAGENET_MEAN, IMAGENET_STD
from training.losses import autoencoder_loss, content_loss, identity_loss, style_loss
from training.lossnet import load_loss_network

# ---------------------------------------------------------------------------- helpers


def _mask() -> torch.Tensor:
    """8x8 hard mask aligned to 2x2 blocks, so it stays hard on a 4x4 tap too."""
    mask = torch.zeros(2, 1, 8, 8)
    mask[0, :, 2:6, 2:6] = 1.0
    mask[1, :, 0:4, 4:8] = 1.0
    return mask


def _block_mask(mask: torch.Tensor, size: int) -> torch.Tensor:
    return torch.nn.functional.adaptive_avg_pool2d(mask, size)


def _match_foreground(out: torch.Tensor, comp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Give ``out``'s foreground the composite's background mean and (population) std.

    Computed by boolean indexing, independently of dktnet.stats.
    """
    result = out.clone()
    for b in range(out.shape[0]):
        fg = mask[b, 0] > 0.5
        for c in range(out.shape[1]):
            x = out[b, c][fg]
            ref = comp[b, c][~fg]
            z = (x - x.mean()) / x.std(unbiased=False)
            result[b, c][fg] = z * ref.std(unbiased=False) + ref.mean()
    return result


def _features() -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """Composite taps, far-off output taps and matched output taps at 8x8 and 4x4."""
    torch.manual_seed(0)
    mask = _mask()
    comps, far, matched = [], [], []
    for size, channels in ((8, 3), (4, 5)):
        comp = torch.randn(2, channels, size, size) * 0.5 + 1.0
        out = torch.randn(2, channels, size, size) * 3.0 - 2.0  # very different statistics
        comps.append(comp)
        far.append(out)
        matched.append(_match_foreground(out, comp, _block_mask(mask, size)))
    return comps, far, matched, mask


# ---------------------------------------------------------------------------- style


def test_style_loss_is_zero_when_foreground_has_background_statistics() -> None:
    comps, _, matched, mask = _features()
    assert style_loss(matched, comps, mask).item() == pytest.approx(0.0, abs=1e-8)


def test_style_loss_is_positive_and_decreases_towards_the_match() -> None:
    comps, far, matched, mask = _features()
    losses = []
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        feats = [(1.0 - t) * f + t * m for f, m in zip(far, matched, strict=True)]
        losses.append(style_loss(feats, comps, mask).item())
    assert losses[0] > 1.0
    assert all(a > b for a, b in itertools.pairwise(losses))
    assert losses[-1] == pytest.approx(0.0, abs=1e-8)


def test_style_loss_reads_output_foreground_and_composite_background_only() -> None:
    comps, far, _, mask = _features()
    base = style_loss(far, comps, mask)
    torch.manual_seed(1)
    out_bg_changed, comp_fg_changed = [], []
    for out, comp in zip(far, comps, strict=True):
        m = _block_mask(mask, out.shape[-1])
        out_bg_changed.append(out + (1.0 - m) * torch.randn_like(out) * 5.0)
        comp_fg_changed.append(comp + m * torch.randn_like(comp) * 5.0)
    torch.testing.assert_close(style_loss(out_bg_changed, comps, mask), base)
    torch.testing.assert_close(style_loss(far, comp_fg_changed, mask), base)


def test_style_loss_sums_taps_and_has_gradients() -> None:
    comps, far, _, mask = _features()
    far = [f.clone().requires_grad_(True) for f in far]
    total = style_loss(far, comps, mask)
    per_tap = sum(style_loss([f], [c], mask) for f, c in zip(far, comps, strict=True))
    torch.testing.assert_close(total, per_tap)
    total.backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in far)


# ---------------------------------------------------------------------------- content


def test_content_loss_zero_for_identical_features() -> None:
    torch.manual_seed(2)
    feat = torch.randn(2, 4, 4, 4)
    assert content_loss(feat, feat.clone(), torch.rand(2, 1, 8, 8)).item() == 0.0


def test_content_loss_ignores_differences_outside_the_mask() -> None:
    torch.manual_seed(3)
    mask = _mask()  # 8x8, resized to the 4x4 features inside
    feat = torch.randn(2, 4, 4, 4)
    m4 = _block_mask(mask, 4)
    outside = feat + (1.0 - m4) * torch.randn_like(feat) * 10.0
    assert content_loss(outside, feat, mask).item() == 0.0
    inside = feat + m4 * 1.0  # +1 on every channel inside the mask
    assert content_loss(inside, feat, mask).item() == pytest.approx(1.0, abs=1e-6)


# ---------------------------------------------------------------------------- reconstruction


def test_identity_and_autoencoder_losses() -> None:
    torch.manual_seed(4)
    image = torch.rand(2, 3, 8, 8)
    assert identity_loss(image.clone(), image).item() == 0.0
    assert autoencoder_loss(image.clone(), image).item() == 0.0
    assert identity_loss(image + 0.1, image).item() == pytest.approx(0.1, abs=1e-6)
    assert autoencoder_loss(image - 0.2, image).item() == pytest.approx(0.2, abs=1e-6)


# ---------------------------------------------------------------------------- loss network


def test_random_loss_network_is_seeded_and_says_so() -> None:
    a = load_loss_network("random:3")
    b = load_loss_network("random:3")
    c = load_loss_network("random:4")
    for name, t in a.network.state_dict().items():
        assert torch.equal(t, b.network.state_dict()[name]), name
    assert not torch.equal(a.network.convs["conv1_1"].weight, c.network.convs["conv1_1"].weight)
    assert a.provenance["pretrained"] is False
    assert a.provenance["seed"] == 3
    assert c.provenance["seed"] == 4
    assert not a.network.training
    assert not any(p.requires_grad for p in a.network.parameters())
    # Its input layer is the ImageNet normalisation, as for torchvision weights.
    x = torch.rand(1, 3, 2, 2)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(a.network.conv0(x), (x - mean) / std)


def test_random_loss_network_taps_stay_informative() -> None:
    """He-initialised weights: deep taps neither vanish nor explode on an image."""
    net = load_loss_network("random:0").network
    torch.manual_seed(5)
    with torch.no_grad():
        taps = net(torch.rand(1, 3, 16, 16))
    for tap in taps:
        assert torch.isfinite(tap).all()
        assert 1e-3 < tap.std().item() < 1e3


def test_path_spec_loads_a_vgg_file(tmp_path: Path) -> None:
    source = load_loss_network("random:7").network.state_dict()
    adain = {}
    for name, index in ADAIN_INDEX.items():
        prefix = "conv0" if name == "conv0" else f"convs.{name}"
        adain[f"{index}.weight"] = source[f"{prefix}.weight"]
        adain[f"{index}.bias"] = source[f"{prefix}.bias"]
    path = tmp_path / "vgg_normalised.pth"
    torch.save(adain, path)

    loss_net = load_loss_network(str(path))
    for name, t in source.items():
        assert torch.equal(loss_net.network.state_dict()[name], t), name
    assert loss_net.provenance["pretrained"] is True
    assert loss_net.provenance["file"] == "vgg_normalised.pth"
    assert loss_net.provenance["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not loss_net.network.training
    assert not any(p.requires_grad for p in loss_net.network.parameters())
