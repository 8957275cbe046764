"""Tests for training.losses (style, content, identity, autoencoder, adversarial,
consistency) and training.lossnet."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import pytest
import torch

from dkt.dktnet.model import DKTNet, NetworkOutput
from dkt.dktnet.vgg_weights import ADAIN_INDEX, IMAGENET_MEAN, IMAGENET_STD
from tests.tiny import tiny_config
from training.losses import (
    adversarial_loss,
    autoencoder_loss,
    colour_loss,
    consistency_loss,
    content_loss,
    content_target,
    discriminator_loss,
    discriminator_step_loss,
    identity_loss,
    kernel_diversity_loss,
    patch_targets,
    restandardize_consistency,
    standard_stats_consistency,
    style_loss,
)
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

    Computed by boolean indexing, independently of dkt.dktnet.stats.
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


def test_style_loss_averages_taps_and_has_gradients() -> None:
    comps, far, _, mask = _features()
    far = [f.clone().requires_grad_(True) for f in far]
    total = style_loss(far, comps, mask)
    per_tap = [style_loss([f], [c], mask) for f, c in zip(far, comps, strict=True)]
    torch.testing.assert_close(total, sum(per_tap) / len(per_tap))
    total.backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in far)


def test_style_loss_counts_every_tap_whatever_its_scale() -> None:
    """A tap whose features are 10x larger (as relu1_1's are) must not weigh 100x more."""
    comps, far, _, mask = _features()
    scaled = style_loss([far[0] * 10.0, far[1]], [comps[0] * 10.0, comps[1]], mask)
    torch.testing.assert_close(scaled, style_loss(far, comps, mask), rtol=1e-4, atol=0)


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
    energy = ((feat**2).mean(dim=1, keepdim=True) * m4).sum() / m4.sum()
    assert content_loss(inside, feat, mask).item() == pytest.approx(1.0 / energy.item(), rel=1e-5)


def test_content_loss_is_relative_to_the_target_scale() -> None:
    torch.manual_seed(3)
    mask = _mask()
    feat, other = torch.randn(2, 4, 4, 4), torch.randn(2, 4, 4, 4)
    torch.testing.assert_close(
        content_loss(other * 7.0, feat * 7.0, mask), content_loss(other, feat, mask)
    )


def test_transformed_content_target_has_the_background_statistics() -> None:
    torch.manual_seed(3)
    mask = _mask()
    feat = torch.randn(2, 4, 4, 4) * 3.0 + 2.0
    assert torch.equal(content_target(feat, mask, "composite"), feat)
    target = content_target(feat, mask, "transformed")
    m4 = _block_mask(mask, 4)
    expected = _match_foreground(feat, feat, m4)
    torch.testing.assert_close(target, expected, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="content target"):
        content_target(feat, mask, "nonsense")


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


# ---------------------------------------------------------------------------- adversarial


def _cell_mask(cells: list[tuple[int, int]], grid: int = 4, stride: int = 8) -> torch.Tensor:
    """(1,1,grid*stride,grid*stride) mask covering whole stride x stride cells."""
    mask = torch.zeros(1, 1, grid * stride, grid * stride)
    for i, j in cells:
        mask[..., i * stride : (i + 1) * stride, j * stride : (j + 1) * stride] = 1.0
    return mask


def test_patch_targets_are_the_pasted_fraction_per_patch() -> None:
    mask = _cell_mask([(1, 1), (1, 2)])
    mask[..., 24:28, 0:8] = 1.0  # half of cell (3, 0)
    mask.requires_grad_(True)
    scores = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    target = patch_targets(mask, scores)
    expected = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    expected[..., 1, 1:3] = 1.0
    expected[..., 3, 0] = 0.5
    torch.testing.assert_close(target, expected)
    assert not target.requires_grad
    soft = patch_targets(torch.rand(2, 1, 33, 47), torch.zeros(2, 1, 4, 5))
    assert soft.shape == (2, 1, 4, 5)
    assert soft.min() >= 0.0 and soft.max() <= 1.0


def test_discriminator_loss_is_zero_only_for_a_perfect_discriminator() -> None:
    mask = torch.cat([_cell_mask([(1, 1)]), _cell_mask([(0, 0), (3, 3), (2, 2)])])
    mask[1, :, 8:12, 0:8] = 1.0  # a partial patch: its perfect score is 0.5
    zeros = torch.zeros(2, 1, 4, 4)
    perfect = patch_targets(mask, zeros)
    assert discriminator_loss(perfect, mask).item() == 0.0
    assert discriminator_loss(perfect, mask, zeros, perfect).item() == 0.0
    assert discriminator_loss(zeros, mask).item() > 0.1  # misses the object
    assert discriminator_loss(perfect, mask, zeros + 0.5).item() > 0.1  # flags the painting
    assert discriminator_loss(perfect, mask, zeros, zeros).item() > 0.1  # misses it in one
    scores = zeros.clone().requires_grad_(True)
    discriminator_loss(scores, mask).backward()
    assert scores.grad is not None and scores.grad.abs().sum() > 0


def test_discriminator_loss_weighs_pasted_and_clean_patches_equally() -> None:
    """Scoring 0 everywhere costs the same for a 1-patch and an 8-patch object."""
    zeros = torch.zeros(1, 1, 4, 4)
    small, large = _cell_mask([(0, 0)]), _cell_mask([(i, j) for i in (0, 1) for j in range(4)])
    assert discriminator_loss(zeros, small).item() == pytest.approx(0.5)
    assert discriminator_loss(zeros, large).item() == pytest.approx(0.5)
    # Nothing pasted: a plain mean over the patches.
    assert discriminator_loss(zeros + 0.5, torch.zeros(1, 1, 32, 32)).item() == pytest.approx(0.25)


class _Mean(torch.nn.Module):
    """A stand-in discriminator: the 8x8 block mean of the red channel, times a weight."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(1.0))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.gain * torch.nn.functional.avg_pool2d(image[:, :1], 8)


def test_discriminator_step_loss_detaches_and_matches_the_score_form() -> None:
    torch.manual_seed(6)
    disc = _Mean()
    harmonized = torch.rand(2, 3, 32, 32, requires_grad=True)
    painting, composite = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    mask = torch.cat([_cell_mask([(1, 1)]), _cell_mask([(2, 3)])])
    loss = discriminator_step_loss(disc, harmonized, mask, painting, composite)
    expected = discriminator_loss(disc(harmonized), mask, disc(painting), disc(composite))
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert harmonized.grad is None
    assert disc.gain.grad is not None and disc.gain.grad != 0


def test_adversarial_loss_is_zero_for_unflagged_output_and_focuses_on_the_object() -> None:
    mask = _cell_mask([(0, 0)], grid=8)  # 64x64 image, 8x8 score grid
    zeros = torch.zeros(1, 1, 8, 8)
    assert adversarial_loss(zeros, mask).item() == 0.0
    flagged = zeros.clone()
    flagged[..., 0, 0] = 1.0
    assert adversarial_loss(flagged, mask).item() > 0.1
    ring = zeros.clone()
    ring[..., 1, 1] = 1.0  # a neighbour of the object: its edge shows there
    assert adversarial_loss(ring, mask).item() > 0.1
    far = zeros.clone()
    far[..., 4:, 4:] = 1.0  # a false alarm on the untouched painting: no loss, no gradient
    assert adversarial_loss(far, mask).item() == 0.0


def test_adversarial_loss_does_not_depend_on_image_or_object_size() -> None:
    torch.manual_seed(7)
    mask = _cell_mask([(1, 1), (1, 2), (2, 1)])
    scores = torch.rand(1, 1, 4, 4)
    big_mask = torch.nn.functional.interpolate(mask, scale_factor=2.0, mode="nearest")
    big_scores = torch.nn.functional.interpolate(scores, scale_factor=2.0, mode="nearest")
    small = adversarial_loss(scores, mask)
    big = adversarial_loss(big_scores, big_mask)
    assert big.item() == pytest.approx(small.item(), rel=0.25)
    # Flagged everywhere with score s: the loss is s^2 whatever the object's area.
    for cells in ([(0, 0)], [(i, j) for i in range(3) for j in range(3)]):
        assert adversarial_loss(torch.full((1, 1, 4, 4), 0.5), _cell_mask(cells)).item() == (
            pytest.approx(0.25)
        )


# ---------------------------------------------------------------------------- consistency


def _tiny_render(
    perturb: float = 0.0, size: int = 32
) -> tuple[DKTNet, NetworkOutput, torch.Tensor, torch.Tensor]:
    """A tiny model, its render of a random composite, the blended output and the mask.

    ``perturb`` > 0 scales tau_n^f's back-projection up from its near-zero initialisation,
    so the standardising residual (which the consistency loss constrains) is not ~0.
    """
    torch.manual_seed(8)
    model = DKTNet(tiny_config())
    if perturb:
        with torch.no_grad():
            model.bitransform.to_standard_fg.V.normal_(std=perturb)
    composite = torch.rand(2, 3, size, size)
    mask = torch.zeros(2, 1, size, size)
    mask[0, :, 8:24, 8:24] = 1.0  # whole stride-8 cells, so F_std's regions are crisp
    mask[1, :, 0:16, 16:32] = 1.0
    rendered = model.run_padded(composite, mask)
    output = composite * (1.0 - mask) + rendered.image * mask
    return model, rendered, output, mask


def _shared_standard(channels: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """A 4x4 map whose foreground (4 cells) and background (12) hold the same 4 vectors."""
    torch.manual_seed(9)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 0:4, 0:4] = 1.0  # the top-left 2x2 cells of the 4x4 map
    vectors = torch.randn(4, channels) * 2.0 + 1.0
    fg_cells = [(0, 0), (0, 1), (1, 0), (1, 1)]
    bg_cells = [(i, j) for i in range(4) for j in range(4) if (i, j) not in fg_cells]
    feat = torch.zeros(1, channels, 4, 4)
    for n, (i, j) in enumerate(fg_cells):
        feat[0, :, i, j] = vectors[n]
    for n, (i, j) in enumerate(bg_cells):
        feat[0, :, i, j] = vectors[n % 4]
    return feat, mask


def test_standard_stats_consistency_is_zero_when_regions_share_statistics() -> None:
    shared, mask = _shared_standard()
    assert standard_stats_consistency(shared, mask).item() == pytest.approx(0.0, abs=1e-8)
    shifted = shared + _block_mask(mask, 4)  # foreground mean +1 on every channel
    assert standard_stats_consistency(shifted, mask).item() == pytest.approx(1.0, abs=1e-5)


def test_standard_stats_consistency_sees_channel_correlations() -> None:
    """Same per-channel mean and std in both regions, opposite correlation: not consistent."""
    shared, mask = _shared_standard(channels=2)
    m = _block_mask(mask, 4) > 0.5
    flipped = shared.clone()
    fg = flipped[0, 1][m[0, 0]]
    mean = fg.mean()
    flipped[0, 1][m[0, 0]] = 2 * mean - fg  # channel 1 mirrored in the foreground only
    assert standard_stats_consistency(flipped, mask).item() > 0.1


def test_restandardize_consistency_is_near_zero_when_the_output_is_the_composite() -> None:
    """tau ~ 0 at init: re-standardising the composite itself gives F_std back."""
    model, _, _, mask = _tiny_render()
    composite = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(8))
    rendered = model.run_padded(composite, mask)
    assert restandardize_consistency(model, rendered, composite, mask).item() < 1e-2


def test_restandardize_consistency_compares_f_std_position_by_position_in_the_foreground() -> None:
    model, rendered, output, mask = _tiny_render()
    m = _block_mask(mask, 4)
    base = restandardize_consistency(model, rendered, output, mask)
    fg_moved = rendered._replace(standard=rendered.standard + 3.0 * m)
    bg_moved = rendered._replace(standard=rendered.standard + 2.0 * (1.0 - m))
    torch.testing.assert_close(restandardize_consistency(model, bg_moved, output, mask), base)
    moved = restandardize_consistency(model, fg_moved, output, mask)
    assert moved.item() - base.item() == pytest.approx(9.0, abs=2.0)
    with pytest.raises(ValueError, match="multiples of 8"):
        restandardize_consistency(model, rendered, output[..., :-1], mask[..., :-1])


def test_consistency_loss_trains_the_foreground_kernels_and_the_decoder() -> None:
    model, rendered, output, mask = _tiny_render(perturb=0.5)
    loss = consistency_loss(model, rendered, output, mask)
    assert loss.item() > 1e-4
    loss.backward()
    fg = model.bitransform.to_standard_fg
    for name in ("P", "K_b", "V"):
        grad = getattr(fg, name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert model.decoder.out.weight.grad is not None
    assert model.decoder.out.weight.grad.abs().sum() > 0


def test_restandardize_target_is_detached() -> None:
    """F_std is the fixed target of part (b); only part (a) moves F_std itself."""
    model, rendered, output, mask = _tiny_render(perturb=0.5)
    standard = rendered.standard.detach().requires_grad_(True)
    leaf = rendered._replace(standard=standard)
    restandardize_consistency(model, leaf, output.detach(), mask).backward()
    assert standard.grad is None
    assert model.bitransform.to_standard_fg.V.grad is not None


def test_new_losses_are_finite_and_differentiable_for_a_tiny_mask() -> None:
    model, _, _, _ = _tiny_render(perturb=0.5)
    torch.manual_seed(10)
    composite = torch.rand(2, 3, 32, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[0, :, 5, 5:8] = 1.0  # three pixels
    mask[1, :, 30, 30] = 1.0  # one pixel at the corner
    rendered = model.run_padded(composite, mask)
    output = composite * (1.0 - mask) + rendered.image * mask
    scores = output[:, :1, ::8, ::8] * 2.0 - 0.5  # depends on the output, like D's scores
    painting_scores = torch.rand(2, 1, 4, 4)
    losses = {
        "adversarial": adversarial_loss(scores, mask),
        "discriminator": discriminator_loss(scores, mask, painting_scores, scores),
        "consistency": consistency_loss(model, rendered, output, mask),
    }
    for name, loss in losses.items():
        assert torch.isfinite(loss), name
        model.zero_grad()
        loss.backward(retain_graph=True)
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads, name
        assert all(torch.isfinite(g).all() for g in grads), name
    empty = torch.zeros(2, 1, 32, 32)
    assert adversarial_loss(scores, empty).item() == 0.0
    assert torch.isfinite(discriminator_loss(scores, empty, painting_scores))


# ---------------------------------------------------------------------------- kernel usage


def test_kernel_diversity_prefers_confident_and_spread_mixes() -> None:
    k = 4
    collapsed = torch.full((4, k), 1e-6)
    collapsed[:, 0] = 1.0  # every image on prototype 0: what a collapsed generator does
    spread = torch.eye(k)  # each image confidently on its own prototype
    uniform = torch.full((4, k), 1.0 / k)
    low, mid, high = (kernel_diversity_loss((w,)).item() for w in (spread, collapsed, uniform))
    assert low == pytest.approx(-1.0, abs=1e-3)
    assert mid == pytest.approx(0.0, abs=1e-3)
    assert high == pytest.approx(0.0, abs=1e-3)
    assert low < mid
    one = torch.ones(3, 1)
    assert kernel_diversity_loss((one,)).item() == 0.0


# ---------------------------------------------------------------------------- colour


def test_colour_loss_is_zero_when_the_object_has_the_paintings_lab_statistics() -> None:
    """The object (16 px) holds the same 16 colours the painting (48 px) holds three times."""
    torch.manual_seed(11)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:6, 2:6] = 1.0
    inside = mask[0, 0] > 0
    colours = torch.rand(3, 16)
    image = torch.zeros(1, 3, 8, 8)
    image[0][:, inside] = colours
    image[0][:, ~inside] = colours.repeat(1, 3)
    assert colour_loss(image, image, mask).item() == pytest.approx(0.0, abs=1e-6)
    darker = image.clone()
    darker[0][:, inside] = colours * 0.5
    assert colour_loss(darker, image, mask).item() > 0.5


def test_chroma_noise_loss_sees_colour_speckle_the_painting_lacks() -> None:
    from training.losses import chroma_noise_loss

    torch.manual_seed(0)
    grey = torch.full((1, 3, 48, 48), 0.6)
    painting = grey + 0.02 * torch.randn(1, 3, 48, 48)  # a little colour grain of its own
    mask = torch.zeros(1, 1, 48, 48)
    mask[..., 10:38, 10:38] = 1.0
    smooth = painting * (1 - mask) + grey * mask
    assert float(chroma_noise_loss(smooth, painting, mask)) == 0.0  # less detail: no penalty
    speckle = torch.zeros(1, 3, 48, 48)
    speckle[:, 1, ::2, ::2] = 0.15  # green specks
    speckle[:, 0, 1::2, 1::2] = 0.15  # pink specks
    noisy = (smooth + speckle * mask).clamp(0, 1).requires_grad_(True)
    loss = chroma_noise_loss(noisy, painting, mask)
    assert loss.item() > 1.0
    loss.backward()
    stepped = (noisy - 0.01 * noisy.grad / noisy.grad.abs().max()).detach()
    assert chroma_noise_loss(stepped, painting, mask).item() < loss.item()
