"""Synthetic paintings, objects and masks with known properties, for the metric tests."""

from __future__ import annotations

import numpy as np


def striped_painting(h: int = 96, w: int = 96, seed: int = 0) -> np.ndarray:
    """A bluish 'painting' with diagonal brush-like stripes and a little noise (uint8)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (xx + yy) / 6.0)
    base = np.stack([60 + 40 * stripes, 90 + 50 * stripes, 150 + 60 * stripes], axis=-1)
    return np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)


def smooth_object(h: int = 96, w: int = 96) -> np.ndarray:
    """A smooth orange gradient 'photo object' (uint8): colour and texture unlike the painting."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    return np.stack([200 + 30 * xx, 120 + 40 * yy, 40 + 10 * xx], axis=-1).astype(np.uint8)


def square_mask(h: int = 96, w: int = 96, top: int = 28, size: int = 40) -> np.ndarray:
    m = np.zeros((h, w), dtype=np.float32)
    m[top : top + size, top : top + size] = 1.0
    return m
