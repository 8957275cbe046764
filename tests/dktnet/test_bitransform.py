"""Tests for dkt.dktnet.bitransform: at initialisation the bi-transformation is masked AdaIN."""

from __future__ import annotations

import torch
from torch import nn

from dkt.dktnet.bitransform import BiTransformation, apply_tau
from dkt.dktnet.kernels import Kernels, dynamic_kernel_transform
from dkt.dktnet.stats import masked_adain, masked_stats

C, D, K, HIDDEN = 16, 4, 3, 16


def _features_and_mask() -> tuple[torch.Tensor, torch.Tensor]:
    """Deep features whose foreground and background differ in per-channel mean and std."""
    b, h, w = 2, 6, 6
    mask = torch.zeros(b, 1, h, w)
    mask[0, :, 1:4, 1:5] = 1.0
    mask[1, :, 2:6, 0:3] = 1.0  # a different mask per sample
    fg_mean, fg_std = torch.randn(b, C, 1, 1) * 3.0, torch.rand(b, C, 1, 1) * 2.0 + 1.5
    bg_mean, bg_std = torch.randn(b, C, 1, 1), torch.rand(b, C, 1, 1) * 0.5 + 0.3
    noise = torch.randn(b, C, h, w)
    feat = mask * (noise * fg_std + fg_mean) + (1.0 - mask) * (noise * bg_std + bg_mean)
    return feat, mask


def test_apply_tau_matches_position_rows() -> None:
    torch.manual_seed(0)
    feat = torch.randn(2, C, 3, 5)
    kern = Kernels(
        torch.randn(2, C, D), torch.randn(2, D, D), torch.randn(2, 1, D), torch.randn(2, D, C),
        torch.ones(2, 1),
    )  # fmt: skip
    out = apply_tau(feat, kern)
    assert out.shape == feat.shape
    for i in range(3):
        for j in range(5):
            row = feat[:, :, i, j][:, None, :]
            torch.testing.assert_close(out[:, :, i, j], dynamic_kernel_transform(row, kern)[:, 0])


def test_initial_bi_transformation_is_near_masked_adain() -> None:
    torch.manual_seed(1)
    bt = BiTransformation(C, D, K, HIDDEN)
    feat, mask = _features_and_mask()
    out = bt(feat, mask)
    assert out.harmonized.shape == feat.shape and out.standard.shape == feat.shape

    bg_in = masked_stats(feat, 1.0 - mask)
    fg_out = masked_stats(out.harmonized, mask)
    # The foreground takes the background's per-channel mean and std...
    torch.testing.assert_close(fg_out.mean, bg_in.mean, atol=0.02, rtol=0)
    torch.testing.assert_close(fg_out.std, bg_in.std, atol=0.02, rtol=0.02)
    # ...which it did not have before (the features were built so).
    fg_in = masked_stats(feat, mask)
    assert (fg_in.std - bg_in.std).abs().mean().item() > 0.5
    # The background keeps its statistics and, element-wise, nearly its values.
    bg_out = masked_stats(out.harmonized, 1.0 - mask)
    torch.testing.assert_close(bg_out.mean, bg_in.mean, atol=0.02, rtol=0)
    torch.testing.assert_close(bg_out.std, bg_in.std, atol=0.02, rtol=0.02)
    torch.testing.assert_close(out.harmonized, masked_adain(feat, mask), atol=0.02, rtol=0)


def test_bi_transformation_with_zero_tau_is_exactly_masked_adain() -> None:
    torch.manual_seed(2)
    bt = BiTransformation(C, D, K, HIDDEN)
    with torch.no_grad():
        for gen in (bt.to_standard_fg, bt.to_standard_bg, bt.to_painting):
            gen.V.zero_()
    feat, mask = _features_and_mask()
    out = bt(feat, mask)
    torch.testing.assert_close(out.harmonized, masked_adain(feat, mask), atol=1e-4, rtol=1e-4)


def test_initial_standard_style_is_zero_mean_unit_std_in_both_regions() -> None:
    torch.manual_seed(3)
    bt = BiTransformation(C, D, K, HIDDEN)
    feat, mask = _features_and_mask()
    out = bt(feat, mask)
    for region in (mask, 1.0 - mask):
        stats = masked_stats(out.standard, region)
        torch.testing.assert_close(stats.mean, torch.zeros_like(stats.mean), atol=0.02, rtol=0)
        torch.testing.assert_close(stats.std, torch.ones_like(stats.std), atol=0.02, rtol=0)


def test_bi_transformation_reports_the_input_region_statistics() -> None:
    torch.manual_seed(4)
    bt = BiTransformation(C, D, K, HIDDEN)
    feat, mask = _features_and_mask()
    out = bt(feat, mask)
    torch.testing.assert_close(out.fg_stats.mean, masked_stats(feat, mask).mean)
    torch.testing.assert_close(out.bg_stats.std, masked_stats(feat, 1.0 - mask).std)


def test_trained_kernels_change_the_result() -> None:
    """The dynamic kernels are really on the path: bigger V moves the output off AdaIN."""
    torch.manual_seed(5)
    bt = BiTransformation(C, D, K, HIDDEN)
    feat, mask = _features_and_mask()
    before = bt(feat, mask).harmonized.detach()
    with torch.no_grad():
        nn.init.normal_(bt.to_painting.V, std=0.5)
    after = bt(feat, mask).harmonized.detach()
    assert (after - before).abs().max().item() > 0.1
