"""Training-free baselines every learned method must beat.

* ``composite``: no change at all. Every metric's value for the unharmonized input; a
  method that scores worse than this has made things worse.
* ``reinhard``: colour transfer by matching per-channel mean and standard deviation in Lab
  (Reinhard et al., "Color Transfer between Images", 2001), foreground to background. It
  fixes global colour and contrast but not texture or strokes, so it separates what a
  method gains from colour alone from what it gains in painterly texture.
"""

from __future__ import annotations

import numpy as np

from dkt.imaging.colour import lab_to_srgb, srgb_to_lab

__all__ = ["BASELINES", "composite_baseline", "reinhard"]

_EPS = 1e-6


def composite_baseline(composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The unharmonized composite itself (a copy), as uint8 (H, W, 3)."""
    del mask
    return np.array(composite, dtype=np.uint8, copy=True)


def _weighted_mean_std(lab: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of (N, 3) values under (N,) weights."""
    total = max(float(weight.sum()), _EPS)
    mean = (lab * weight[:, None]).sum(axis=0) / total
    var = (((lab - mean) ** 2) * weight[:, None]).sum(axis=0) / total
    return mean, np.sqrt(var)


def reinhard(composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Match the foreground's Lab mean/std to the background's; the background is untouched.

    ``composite`` uint8 (H, W, 3), ``mask`` float (H, W) in [0, 1] (1 = pasted object).
    Statistics are mask-weighted (foreground by ``m``, background by ``1 - m``) so a soft
    border counts partly to each side; the result is blended by ``m`` and every pixel where
    ``m == 0`` is copied byte for byte. A flat foreground (zero std) only has its mean moved
    rather than being amplified to noise.
    """
    comp = np.asarray(composite, dtype=np.uint8)
    m = np.clip(np.asarray(mask, dtype=np.float64), 0.0, 1.0)
    if comp.shape[:2] != m.shape:
        raise ValueError(f"mask shape {m.shape} does not match composite {comp.shape[:2]}")
    if not (m > 0).any() or not (m < 1).any():
        return comp.copy()
    lab = srgb_to_lab(comp)
    flat = lab.reshape(-1, 3)
    mu_f, sd_f = _weighted_mean_std(flat, m.ravel())
    mu_b, sd_b = _weighted_mean_std(flat, 1.0 - m.ravel())
    scale = np.where(sd_f > _EPS, sd_b / np.maximum(sd_f, _EPS), 1.0)
    moved = (lab - mu_f) * scale + mu_b
    rgb = lab_to_srgb(moved)
    blended = comp / 255.0 * (1.0 - m[..., None]) + rgb * m[..., None]
    out = np.clip(np.rint(blended * 255.0), 0, 255).astype(np.uint8)
    return np.where(m[..., None] > 0, out, comp)


#: Baseline name -> function (composite uint8 (H,W,3), mask float (H,W)) -> uint8 (H,W,3).
BASELINES = {"composite": composite_baseline, "reinhard": reinhard}
