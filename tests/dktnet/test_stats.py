"""Tests for dkt.dktnet.stats: masked statistics, mask resizing and masked AdaIN.

Every reference value is computed independently of the code under test (boolean indexing,
float64 loops), on tensors of a few hundred elements.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dkt.dktnet.stats import (
    EPS,
    Z_BOUND,
    RegionStats,
    background_weight,
    destandardize,
    masked_adain,
    masked_stats,
    merge_regions,
    resize_mask,
    standardize,
)

# ---------------------------------------------------------------------------- helpers


def _hard_masks(b: int, h: int, w: int) -> torch.Tensor:
    """A different hard mask per sample, each with both regions non-empty."""
    mask = (torch.rand(b, 1, h, w) > 0.5).float()
    mask[:, :, 0, 0] = 1.0
    mask[:, :, -1, -1] = 0.0
    return mask


def _reference_hard(feat: torch.Tensor, mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sqrt(population var + eps) over the masked positions, by boolean indexing."""
    b, c = feat.shape[:2]
    mean, std = np.zeros((b, c)), np.zeros((b, c))
    f64 = feat.double().numpy()
    sel = mask[:, 0].numpy() > 0.5
    for i in range(b):
        for j in range(c):
            values = f64[i, j][sel[i]]
            mean[i, j] = values.mean()
            std[i, j] = math.sqrt(values.var() + EPS)
    return mean, std


# ---------------------------------------------------------------------------- masked_stats


def test_masked_stats_hard_mask_matches_boolean_indexing() -> None:
    torch.manual_seed(0)
    feat = torch.randn(3, 4, 5, 6) * 2.0 + 1.5
    mask = _hard_masks(3, 5, 6)
    stats = masked_stats(feat, mask)
    assert stats.mean.shape == (3, 4, 1, 1) and stats.std.shape == (3, 4, 1, 1)
    mean, std = _reference_hard(feat, mask)
    np.testing.assert_allclose(stats.mean.flatten(1).numpy(), mean, atol=1e-5)
    np.testing.assert_allclose(stats.std.flatten(1).numpy(), std, atol=1e-5)

    # The complement region is the background: same check with 1 - mask.
    bg = masked_stats(feat, 1.0 - mask)
    mean_bg, std_bg = _reference_hard(feat, 1.0 - mask)
    np.testing.assert_allclose(bg.mean.flatten(1).numpy(), mean_bg, atol=1e-5)
    np.testing.assert_allclose(bg.std.flatten(1).numpy(), std_bg, atol=1e-5)


def test_masked_stats_soft_mask_matches_weighted_formula() -> None:
    torch.manual_seed(1)
    feat = torch.randn(2, 3, 4, 7) * 3.0 - 2.0
    weight = torch.rand(2, 1, 4, 7)
    stats = masked_stats(feat, weight)
    f = feat.double().numpy()
    w = weight.double().numpy()
    for i in range(2):
        for j in range(3):
            total = w[i, 0].sum()
            mean = (w[i, 0] * f[i, j]).sum() / total
            var = (w[i, 0] * (f[i, j] - mean) ** 2).sum() / total
            assert stats.mean[i, j, 0, 0].item() == pytest.approx(mean, abs=1e-5)
            assert stats.std[i, j, 0, 0].item() == pytest.approx(math.sqrt(var + EPS), abs=1e-5)


def test_masked_stats_ignores_values_outside_the_mask() -> None:
    torch.manual_seed(2)
    feat = torch.randn(1, 2, 6, 6)
    mask = torch.zeros(1, 1, 6, 6)
    mask[:, :, :3] = 1.0
    changed = feat.clone()
    changed[:, :, 3:] = 1e4  # huge values in the excluded half
    a, b = masked_stats(feat, mask), masked_stats(changed, mask)
    torch.testing.assert_close(a.mean, b.mean)
    torch.testing.assert_close(a.std, b.std)


def test_masked_stats_empty_mask_is_finite_and_does_not_poison_the_batch() -> None:
    torch.manual_seed(3)
    feat = torch.randn(2, 3, 4, 4) * 5.0
    mask = torch.ones(2, 1, 4, 4)
    mask[0] = 0.0  # sample 0 has an empty region
    stats = masked_stats(feat, mask)
    assert torch.isfinite(stats.mean).all() and torch.isfinite(stats.std).all()
    assert torch.isfinite(stats.as_vector()).all()
    torch.testing.assert_close(stats.mean[0], torch.zeros(3, 1, 1))
    torch.testing.assert_close(stats.std[0], torch.full((3, 1, 1), math.sqrt(EPS)))
    alone = masked_stats(feat[1:], mask[1:])
    torch.testing.assert_close(stats.mean[1:], alone.mean)
    torch.testing.assert_close(stats.std[1:], alone.std)


def test_masked_stats_of_half_precision_input_is_float32() -> None:
    torch.manual_seed(4)
    feat = (torch.randn(1, 2, 4, 4) * 100.0).half()
    stats = masked_stats(feat, torch.ones(1, 1, 4, 4, dtype=torch.float16))
    assert stats.mean.dtype == torch.float32 and stats.std.dtype == torch.float32
    torch.testing.assert_close(stats.mean.flatten(), feat.float().mean(dim=(2, 3)).flatten())


def test_as_vector_is_mean_then_log_std() -> None:
    mean = torch.tensor([[1.0, -2.0]]).view(1, 2, 1, 1)
    std = torch.tensor([[1.0, math.e]]).view(1, 2, 1, 1)
    vec = RegionStats(mean, std).as_vector()
    torch.testing.assert_close(vec, torch.tensor([[1.0, -2.0, 0.0, 1.0]]))


# ---------------------------------------------------------------------------- resize_mask


def test_resize_mask_stride_one_is_identity() -> None:
    mask = torch.rand(1, 1, 5, 7)
    assert torch.equal(resize_mask(mask, 1), mask)


@pytest.mark.parametrize("stride", [2, 4])
def test_resize_mask_area_averages_blocks(stride: int) -> None:
    torch.manual_seed(5)
    mask = torch.rand(2, 1, 8, 12)
    out = resize_mask(mask, stride)
    assert out.shape == (2, 1, 8 // stride, 12 // stride)
    for b in range(2):
        for i in range(8 // stride):
            for j in range(12 // stride):
                block = mask[b, 0, i * stride : (i + 1) * stride, j * stride : (j + 1) * stride]
                assert out[b, 0, i, j].item() == pytest.approx(block.mean().item(), abs=1e-6)


def test_resize_mask_keeps_edges_fractional() -> None:
    mask = torch.zeros(1, 1, 4, 4)
    mask[:, :, :, :1] = 1.0  # the first column: half of each left-hand 2x2 block
    out = resize_mask(mask, 2)
    torch.testing.assert_close(out, torch.tensor([[[[0.5, 0.0], [0.5, 0.0]]]]))


# ---------------------------------------------------------------------------- (de)standardize


def test_standardize_then_destandardize_round_trips() -> None:
    torch.manual_seed(6)
    feat = torch.randn(2, 3, 4, 4) * 4.0 + 2.0
    stats = masked_stats(feat, torch.rand(2, 1, 4, 4))
    z = standardize(feat, stats)
    torch.testing.assert_close(destandardize(z, stats), feat, atol=1e-5, rtol=1e-5)


def test_standardize_gives_zero_mean_unit_std_over_the_region() -> None:
    torch.manual_seed(6)
    feat = torch.randn(2, 3, 4, 4) * 4.0 + 2.0
    full = torch.ones(2, 1, 4, 4)
    z = standardize(feat, masked_stats(feat, full))
    z_stats = masked_stats(z, full)
    torch.testing.assert_close(z_stats.mean, torch.zeros(2, 3, 1, 1), atol=1e-5, rtol=0)
    torch.testing.assert_close(z_stats.std, torch.ones(2, 3, 1, 1), atol=1e-3, rtol=0)


# ---------------------------------------------------------------------------- masked_adain


def test_masked_adain_hard_mask_background_exact_and_foreground_takes_background_stats() -> None:
    torch.manual_seed(7)
    feat = torch.randn(2, 4, 6, 6)
    feat = feat + torch.arange(4.0).view(1, 4, 1, 1)  # channels differ in mean
    mask = _hard_masks(2, 6, 6)
    feat = feat * (1.0 + 3.0 * mask)  # the foreground has a different spread
    out = masked_adain(feat, mask)
    bg_sel = (mask == 0).expand_as(feat)
    assert torch.equal(out[bg_sel], feat[bg_sel])

    got = masked_stats(out, mask)
    want = masked_stats(feat, 1.0 - mask)
    torch.testing.assert_close(got.mean, want.mean, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got.std, want.std, atol=1e-3, rtol=1e-3)
    # ...and the foreground did change (the test is not trivially satisfied).
    assert not torch.allclose(out[~bg_sel], feat[~bg_sel], atol=1e-2)


def test_masked_adain_soft_mask_keeps_zero_weight_positions_exact() -> None:
    torch.manual_seed(8)
    feat = torch.randn(1, 3, 6, 6) * 2.0
    mask = torch.rand(1, 1, 6, 6)
    mask[:, :, :, :2] = 0.0
    out = masked_adain(feat, mask)
    bg_sel = (mask == 0).expand_as(feat)
    assert torch.equal(out[bg_sel], feat[bg_sel])
    assert torch.isfinite(out).all()


def test_masked_adain_with_empty_mask_is_the_identity() -> None:
    torch.manual_seed(9)
    feat = torch.randn(1, 3, 4, 4)
    assert torch.equal(masked_adain(feat, torch.zeros(1, 1, 4, 4)), feat)


def test_masked_adain_strength_moves_the_foreground_part_of_the_way() -> None:
    """``skip + s * (adain(skip) - skip)``: exact at 0 and 1, the background never moves."""
    torch.manual_seed(10)
    feat = torch.randn(2, 4, 6, 6) * 2.0
    mask = torch.rand(2, 1, 6, 6)
    mask[:, :, :, :2] = 0.0
    full = masked_adain(feat, mask)
    assert torch.equal(masked_adain(feat, mask, strength=torch.tensor([1.0])), full)
    assert torch.equal(masked_adain(feat, mask, strength=torch.tensor([0.0])), feat)
    part = masked_adain(feat, mask, strength=torch.tensor([0.3]))
    torch.testing.assert_close(part, feat + 0.3 * (full - feat), atol=1e-5, rtol=1e-5)
    bg_sel = (mask == 0).expand_as(feat)
    assert torch.equal(part[bg_sel], feat[bg_sel])


# ---------------------------------------------------------------------------- half precision


def _flat_foreground_fp16() -> tuple[torch.Tensor, torch.Tensor]:
    """A foreground with one flat channel, next to large background values, in fp16.

    The flat channel's std is floored at sqrt(EPS) ~ 3e-3, so standardising a background
    value of 300 by it gives 1e5, past fp16's 65504: inf, and inf * 0 in a merge is NaN.
    """
    feat = torch.rand(1, 4, 8, 8) * 10.0
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:6, 2:6] = 1.0
    feat[:, 0] = torch.where(mask[0, 0] > 0, torch.tensor(1.0), torch.tensor(300.0))
    return feat.half(), mask.half()


def test_standardize_is_bounded_so_fp16_stays_finite() -> None:
    feat, mask = _flat_foreground_fp16()
    z = standardize(feat, masked_stats(feat, mask))
    assert z.dtype == torch.float16
    assert torch.isfinite(z).all()
    assert z.abs().max().item() <= Z_BOUND


def test_masked_adain_in_fp16_with_a_flat_foreground_is_finite_and_keeps_the_background() -> None:
    feat, mask = _flat_foreground_fp16()
    out = masked_adain(feat, mask)
    assert torch.isfinite(out).all()
    outside = mask[0, 0] == 0
    assert torch.equal(out[..., outside], feat[..., outside])


def test_merge_regions_never_lets_a_non_finite_value_through_the_other_region() -> None:
    fg = torch.full((1, 2, 4, 4), 1e4, dtype=torch.float16) * 10  # inf in fp16
    bg = torch.ones(1, 2, 4, 4, dtype=torch.float16)
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.float16)
    mask[..., :2, :] = 1.0
    assert torch.isinf(fg).all()
    merged = merge_regions(bg, fg.clamp(-Z_BOUND, Z_BOUND), mask)
    assert torch.isfinite(merged).all()


def test_padding_weight_belongs_to_neither_region() -> None:
    """``valid - mask``: padded positions (valid 0, mask 0) weigh nothing in the background."""
    mask = torch.tensor([[[[1.0, 0.0, 0.0]]]])
    valid = torch.tensor([[[[1.0, 1.0, 0.0]]]])
    assert torch.equal(background_weight(mask, valid), torch.tensor([[[[0.0, 1.0, 0.0]]]]))
    assert torch.equal(background_weight(mask), torch.tensor([[[[0.0, 1.0, 1.0]]]]))
