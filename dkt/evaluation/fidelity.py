"""What a harmonizer must not destroy: the object's content and the painting around it.

* Content preservation: SSIM between the output's and the composite's foreground. Style
  metrics reward repainting the object as background; this one catches it.
* Background fidelity: the largest change outside the mask. METHOD.md promises the painting
  is never altered, so anything but 0 is a bug (or a lossy output file).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter

from dkt.imaging.colour import luma

__all__ = ["background_change", "content_ssim", "ssim_map"]

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # window 11 x 11, as in Wang et al. 2004
SSIM_K1, SSIM_K2 = 0.01, 0.03


def ssim_map(x: np.ndarray, y: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Per-pixel SSIM of two grey images (H, W) with an 11x11 Gaussian window (sigma 1.5).

    The standard constants ``C1 = (0.01 L)^2`` and ``C2 = (0.03 L)^2`` keep flat regions
    stable; borders are handled by reflection so the map has the input's size.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"expected two (H, W) images of one size, got {x.shape} and {y.shape}")
    truncate = (SSIM_RADIUS + 0.25) / SSIM_SIGMA  # scipy's radius = int(truncate * sigma + 0.5)

    def blur(a: np.ndarray) -> np.ndarray:
        return gaussian_filter(a, SSIM_SIGMA, truncate=truncate, mode="reflect")

    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return num / den


def _bbox(region: np.ndarray, pad: int) -> tuple[slice, slice] | None:
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    if len(rows) == 0:
        return None
    h, w = region.shape
    return (
        slice(max(0, rows[0] - pad), min(h, rows[-1] + pad + 1)),
        slice(max(0, cols[0] - pad), min(w, cols[-1] + pad + 1)),
    )


def content_ssim(output: np.ndarray, composite: np.ndarray, mask: np.ndarray) -> float:
    """Mask-weighted mean SSIM on luma between output and composite foregrounds (1 = same).

    Computed over the mask's bounding box (plus the window's radius, so windows at the
    object's edge see real pixels), each pixel's SSIM weighted by its mask value: the score
    is about the object, and its size does not depend on how much painting surrounds it.
    NaN for an empty mask.
    """
    m = np.asarray(mask, dtype=np.float64)
    box = _bbox(m > 0, SSIM_RADIUS)
    if box is None:
        return math.nan
    s = ssim_map(luma(output)[box], luma(composite)[box])
    w = m[box]
    return float((s * w).sum() / w.sum())


def background_change(output: np.ndarray, composite: np.ndarray, mask: np.ndarray) -> int:
    """Largest absolute change, in 0..255 levels, at any pixel where the mask is exactly 0.

    Exactly 0 rather than "below 0.5": a soft border may legitimately change, but pixels the
    mask leaves entirely to the painting may not. 0 when there is no such pixel.
    """
    out = np.asarray(output)
    comp = np.asarray(composite)
    if out.shape != comp.shape:
        raise ValueError(f"output {out.shape} and composite {comp.shape} differ in size")
    outside = np.asarray(mask) <= 0
    if not outside.any():
        return 0
    diff = np.abs(_as_levels(out) - _as_levels(comp))[outside]
    return int(np.ceil(diff.max() - 1e-9))


def _as_levels(image: np.ndarray) -> np.ndarray:
    """uint8 as is, float in [0, 1] scaled to 0..255, both as float64."""
    if image.dtype == np.uint8:
        return image.astype(np.float64)
    return np.asarray(image, dtype=np.float64) * 255.0
