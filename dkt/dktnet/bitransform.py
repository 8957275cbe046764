"""Bi-transformation through a "standard style" (METHOD.md step 4).

Foreground and background are each mapped to the standard style by their own dynamic
kernels (tau_n^f, tau_n^b), merged under the mask, then mapped to the painting's style by
kernels predicted from the background (tau_s). Both stages are residuals on standardised
features: tau_n = standardise + tau, tau_s = de-standardise(F_std + tau) with the background's
statistics, so at initialisation (tau ~ 0) the whole block is masked AdaIN.

Padding added to reach the stride multiple is in neither region (``valid``): an object that
touches the right or bottom edge must not have its edge pixels counted again and again.
Merges under the mask run in float32 on bounded standardised values, so an fp16 run cannot
turn a flat foreground channel into inf and the mask merge into NaN.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from dkt.dktnet.kernels import KernelGenerator, Kernels, dynamic_kernel_transform
from dkt.dktnet.stats import (
    RegionStats,
    background_weight,
    destandardize,
    masked_stats,
    merge_regions,
    standardize,
)


class BiTransformOutput(NamedTuple):
    harmonized: torch.Tensor  # F~_c, (B, C, H, W)
    standard: torch.Tensor  # F_std, (B, C, H, W)
    fg_stats: RegionStats
    bg_stats: RegionStats
    weights: tuple[torch.Tensor, ...]  # prototype weights of tau_n^f, tau_n^b, tau_s: (B, K)


def apply_tau(feat: torch.Tensor, kernels: Kernels) -> torch.Tensor:
    """Apply tau to a (B, C, H, W) map by flattening positions to rows.

    Rows, not channels first: on the channels-last maps PyTorch's CPU convolutions produce
    the rows are a view and so is the result's way back, where a channels-first product
    gave the decoder a map in the other layout (measured 5% slower eager end to end; the
    exported graph pays one transpose per use instead, 1% of an ONNX Runtime run).
    """
    b, c, h, w = feat.shape
    rows = feat.flatten(2).transpose(1, 2)
    out = dynamic_kernel_transform(rows, kernels)
    return out.transpose(1, 2).reshape(b, c, h, w)


class BiTransformation(nn.Module):
    """Three kernel generators: tau_n^f, tau_n^b (to standard) and tau_s (to the painting)."""

    def __init__(
        self, channels: int, dim: int, prototypes: int, hidden: int, cov_rank: int = 0
    ) -> None:
        super().__init__()
        args = (channels, dim, prototypes, hidden, cov_rank)
        self.to_standard_fg = KernelGenerator(*args)
        self.to_standard_bg = KernelGenerator(*args)
        self.to_painting = KernelGenerator(*args)

    def standardize_region(
        self,
        feat: torch.Tensor,
        stats: RegionStats,
        generator: KernelGenerator,
        weight: torch.Tensor,
    ) -> tuple[torch.Tensor, Kernels]:
        """tau_n for one region: whiten with the region's statistics, then its dynamic kernels."""
        return _residual(standardize(feat, stats), stats, generator, weight)

    def forward(
        self, feat: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor | None = None
    ) -> BiTransformOutput:
        bg_weight = background_weight(mask, valid)
        fg_stats = masked_stats(feat, mask)
        bg_stats = masked_stats(feat, bg_weight)
        z_bg = standardize(feat, bg_stats)
        std_fg, k_fg = self.standardize_region(feat, fg_stats, self.to_standard_fg, mask)
        std_bg, k_bg = _residual(z_bg, bg_stats, self.to_standard_bg, bg_weight)
        standard = merge_regions(std_fg, std_bg, mask)
        # tau_s reads the painting's style from the background's own standardised features.
        k_s = self.to_painting(bg_stats, z_bg, bg_weight)
        styled = standard + apply_tau(standard, k_s)
        weights = (k_fg.weights, k_bg.weights, k_s.weights)
        harmonized = destandardize(styled, bg_stats)
        return BiTransformOutput(harmonized, standard, fg_stats, bg_stats, weights)


def _residual(
    z: torch.Tensor, stats: RegionStats, generator: KernelGenerator, weight: torch.Tensor
) -> tuple[torch.Tensor, Kernels]:
    """z + tau(z) with kernels predicted from the region's statistics and standardised map."""
    kernels = generator(stats, z, weight)
    return z + apply_tau(z, kernels), kernels
