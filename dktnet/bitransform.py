"""Bi-transformation through a "standard style" (METHOD.md step 4).

Foreground and background are each mapped to the standard style by their own dynamic
kernels (tau_n^f, tau_n^b), merged under the mask, then mapped to the painting's style by
kernels predicted from the background (tau_s). Both stages are residuals on standardised
features: tau_n = standardise + tau, tau_s = de-standardise(F_std + tau) with the background's
statistics, so at initialisation (tau ~ 0) the whole block is masked AdaIN.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from dktnet.kernels import KernelGenerator, Kernels, dynamic_kernel_transform
from dktnet.stats import RegionStats, destandardize, masked_stats, standardize


class BiTransformOutput(NamedTuple):
    harmonized: torch.Tensor  # F~_c, (B, C, H, W)
    standard: torch.Tensor  # F_std, (B, C, H, W)
    fg_stats: RegionStats
    bg_stats: RegionStats


def apply_tau(feat: torch.Tensor, kernels: Kernels) -> torch.Tensor:
    """Apply tau to a (B, C, H, W) map by flattening positions to rows."""
    b, c, h, w = feat.shape
    rows = feat.flatten(2).transpose(1, 2)
    out = dynamic_kernel_transform(rows, kernels)
    return out.transpose(1, 2).reshape(b, c, h, w)


class BiTransformation(nn.Module):
    """Three kernel generators: tau_n^f, tau_n^b (to standard) and tau_s (to the painting)."""

    def __init__(self, channels: int, dim: int, prototypes: int, hidden: int) -> None:
        super().__init__()
        self.to_standard_fg = KernelGenerator(channels, dim, prototypes, hidden)
        self.to_standard_bg = KernelGenerator(channels, dim, prototypes, hidden)
        self.to_painting = KernelGenerator(channels, dim, prototypes, hidden)

    def standardize_region(
        self, feat: torch.Tensor, stats: RegionStats, generator: KernelGenerator
    ) -> torch.Tensor:
        """tau_n for one region: whiten with the region's statistics, then its dynamic kernels."""
        z = standardize(feat, stats)
        return z + apply_tau(z, generator(stats))

    def forward(self, feat: torch.Tensor, mask: torch.Tensor) -> BiTransformOutput:
        fg_stats = masked_stats(feat, mask)
        bg_stats = masked_stats(feat, 1.0 - mask)
        std_fg = self.standardize_region(feat, fg_stats, self.to_standard_fg)
        std_bg = self.standardize_region(feat, bg_stats, self.to_standard_bg)
        standard = std_fg * mask + std_bg * (1.0 - mask)
        styled = standard + apply_tau(standard, self.to_painting(bg_stats))
        return BiTransformOutput(destandardize(styled, bg_stats), standard, fg_stats, bg_stats)
