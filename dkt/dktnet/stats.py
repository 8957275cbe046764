"""Masked per-channel statistics of feature maps.

Everything in DKTNet that reads "the style of a region" reads these numbers: the kernel
generator's input, the standardisation before the dynamic kernels, the masked AdaIN on the
decoder's skips. They are always computed in float32 so fp16/bf16 inference stays stable.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

EPS = 1e-5
#: Standardised values are bounded to +-Z_BOUND. A value further out than that says nothing
#: about style (it is a position outside the region the statistics came from, standardised by
#: a near-flat channel), and unbounded it overflows fp16: a flat channel's std is sqrt(EPS),
#: so a background value of 300 becomes 1e5 > 65504, and inf * 0 in a mask merge is NaN.
Z_BOUND = 100.0


class RegionStats(NamedTuple):
    """Mean and standard deviation per channel over one masked region, shape (B, C, 1, 1)."""

    mean: torch.Tensor
    std: torch.Tensor

    def as_vector(self) -> torch.Tensor:
        """(B, 2C) summary for the kernel generator; log-std keeps scales comparable."""
        return torch.cat([self.mean.flatten(1), self.std.log().flatten(1)], dim=1)


def resize_mask(mask: torch.Tensor, stride: int) -> torch.Tensor:
    """Area-downsample a (B,1,H,W) mask by an integer stride (H, W divisible by it).

    Average pooling with a fixed kernel keeps soft edges as fractional weights and exports
    to ONNX with dynamic spatial sizes, unlike size-based interpolation.
    """
    if stride == 1:
        return mask
    return F.avg_pool2d(mask, kernel_size=stride, stride=stride)


def masked_stats(feat: torch.Tensor, weight: torch.Tensor, eps: float = EPS) -> RegionStats:
    """Weighted mean/std of ``feat`` (B,C,H,W) under ``weight`` (B,1,H,W) in [0,1].

    An empty region (all-zero weight) gives mean 0 and std sqrt(eps) rather than NaN, so a
    batch with one empty mask does not poison the others.
    """
    return region_stats(feat, (weight,), eps)[0]


def region_stats(
    feat: torch.Tensor, weights: tuple[torch.Tensor, ...], eps: float = EPS
) -> list[RegionStats]:
    """:func:`masked_stats` of several regions of one map.

    Why this form: on a full-resolution skip (64 channels at 512 x 512) the element-wise
    formula (multiply, sum, subtract, square, multiply, sum per region) made the masked
    statistics cost more than the convolutions. Every weighted sum here is a matrix-vector
    product instead, over the (B, C, HW) flattening of the map: a view, no copy, of an NCHW
    map and of the channels-last maps PyTorch's CPU convolutions produce alike, so ONNX
    Runtime needs no second layout of the map for them either. The variance stays two-pass
    (centred on the region's own mean), so values outside the region, however large, cannot
    leak into it through cancellation.
    """
    b = feat.shape[0]
    flat = feat.float().flatten(2)  # (B, C, HW)
    out = []
    for weight in weights:
        w = weight.float().reshape(b, -1, 1)  # (B, HW, 1)
        total = w.sum(dim=1, keepdim=True).clamp_min(eps)  # (B, 1, 1)
        mean = torch.bmm(flat, w) / total  # (B, C, 1)
        centred = flat - mean
        # x * x, not square(): the same values, but ONNX has no square and ONNX Runtime's
        # generic Pow took 4% of a run at 512 px where a Mul is a plain vector loop.
        # In place where autograd does not need ``centred`` (inference: no extra map).
        squared = centred * centred if centred.requires_grad else centred.mul_(centred)
        var = torch.bmm(squared, w) / total
        out.append(RegionStats(mean.unsqueeze(-1), (var + eps).sqrt().unsqueeze(-1)))
    return out


def background_weight(mask: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """The background's weight: ``1 - mask`` inside the image, 0 on padding.

    ``valid`` is 1 on real pixels and 0 on the padding a network adds to reach its stride
    multiple; the mask itself is zero-padded, so ``valid - mask`` gives padding no weight in
    either region.
    """
    return 1.0 - mask if valid is None else valid - mask


def merge_regions(fg: torch.Tensor, bg: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``fg`` under the mask, ``bg`` outside it, blended in float32 (fp16 maps stay finite)."""
    m = mask.float()
    return (fg.float() * m + bg.float() * (1.0 - m)).to(fg.dtype)


def standardize(feat: torch.Tensor, stats: RegionStats) -> torch.Tensor:
    """Zero-mean, unit-std features with respect to a region's statistics, bounded (Z_BOUND)."""
    z = (feat.float() - stats.mean) / stats.std
    return z.clamp(-Z_BOUND, Z_BOUND).to(feat.dtype)


def destandardize(feat: torch.Tensor, stats: RegionStats) -> torch.Tensor:
    """Inverse of :func:`standardize`: give standard features a region's mean and std."""
    return (feat.float() * stats.std + stats.mean).to(feat.dtype)


def masked_covariance(z: torch.Tensor, weight: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Weighted channel covariance (B, C, C) of ``z`` (B,C,H,W) under ``weight`` (B,1,H,W).

    What mean and std cannot see: how a region's channels move together (the part of a
    style that whitening and colouring transforms act on).
    """
    z32, w = z.float(), weight.float()
    total = w.sum(dim=(2, 3), keepdim=True).clamp_min(eps)
    mean = (z32 * w).sum(dim=(2, 3), keepdim=True) / total
    centred = ((z32 - mean) * w.sqrt()).flatten(2)
    return centred @ centred.transpose(1, 2) / total.flatten(1)[:, :, None]


def masked_adain(
    feat: torch.Tensor,
    mask: torch.Tensor,
    valid: torch.Tensor | None = None,
    strength: torch.Tensor | None = None,
) -> torch.Tensor:
    """Re-normalise the foreground (``mask``) to the background's statistics (PHDNet-style).

    Outside the mask the features are returned unchanged. ``valid`` (see
    :func:`background_weight`) keeps padding out of the background's statistics. The
    standardise/de-standardise pair is one per-channel affine map, bounded where
    :func:`standardize` would bound it (Z_BOUND standard deviations), and the merge is
    ``feat + mask * (moved - feat)`` with the mask broadcast over channels: this runs on
    full-resolution skips, where every pass over the map counts (``lerp`` with an expanded
    mask exported as seven full-size operators, both of its branches and a ``Where``).
    Outside the mask the product is exactly zero, so the features stay bit-identical.

    ``strength`` (shape [1], :mod:`dkt.dktnet.strength`) gives ``feat + s * (adain - feat)``
    by scaling the merge's one-channel mask, not the full map: exact at 0 and 1 (``m * 1``
    is ``m``), and the statistics still come from the whole mask. ``None``: full strength.
    """
    fg, bg = region_stats(feat, (mask, background_weight(mask, valid)))
    scale = bg.std / fg.std
    offset = bg.mean - fg.mean * scale
    low, high = bg.mean - Z_BOUND * bg.std, bg.mean + Z_BOUND * bg.std
    feat32 = feat.float()
    # feat32 leads every product, so each result keeps its memory layout (channels-last
    # on the CPU) instead of mixing it with the (B, C, 1, 1) statistics' NCHW.
    moved = (feat32 * scale).add_(offset).clamp_(low, high)
    weight = mask.float() if strength is None else mask.float() * strength.float()
    return torch.addcmul(feat32, moved.sub_(feat32), weight).to(feat.dtype)
