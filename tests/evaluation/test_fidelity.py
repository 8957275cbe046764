"""Tests for ``dkt.evaluation.fidelity``: SSIM and background change on known cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dkt.evaluation.fidelity import background_change, content_ssim, ssim_map


def test_ssim_of_identical_images_is_one(composite_case) -> None:
    comp, mask, _ = composite_case
    assert content_ssim(comp, comp, mask) == pytest.approx(1.0, abs=1e-12)
    grey = comp[..., 0] / 255.0
    np.testing.assert_allclose(ssim_map(grey, grey), 1.0, atol=1e-12)


def test_ssim_drops_with_structure_damage_and_ignores_the_background(composite_case) -> None:
    comp, mask, _ = composite_case
    rng = np.random.default_rng(0)
    noisy = comp.astype(np.int16)
    noisy[mask > 0] += rng.integers(-60, 61, noisy[mask > 0].shape, dtype=np.int16)
    noisy = np.clip(noisy, 0, 255).astype(np.uint8)
    assert content_ssim(noisy, comp, mask) < 0.5
    far = comp.copy()
    far[:20] = 0  # painting more than the window's radius away from the object
    assert content_ssim(far, comp, mask) == pytest.approx(1.0, abs=1e-12)


def test_ssim_window_is_11_with_sigma_1_5() -> None:
    # A single differing pixel lowers SSIM exactly within radius 5 and nowhere else.
    x = np.full((31, 31), 0.5)
    x[::2, ::2] = 0.2
    y = x.copy()
    y[15, 15] = 0.9
    changed = ssim_map(x, y) < 1 - 1e-12
    rows, cols = np.nonzero(changed)
    assert rows.min() == 10 and rows.max() == 20 and cols.min() == 10 and cols.max() == 20


def test_content_ssim_empty_mask_is_nan(composite_case) -> None:
    comp, _, _ = composite_case
    assert math.isnan(content_ssim(comp, comp, np.zeros(comp.shape[:2])))


def test_background_change(composite_case) -> None:
    comp, mask, _ = composite_case
    assert background_change(comp, comp, mask) == 0
    inside = comp.copy()
    inside[mask > 0] = 0
    assert background_change(inside, comp, mask) == 0  # changes under the mask are allowed
    outside = comp.copy()
    outside[0, 0] = (int(comp[0, 0, 0]) + 7) % 256, comp[0, 0, 1], comp[0, 0, 2]
    assert background_change(outside, comp, mask) == 7


def test_background_change_counts_only_exact_zero_mask(composite_case) -> None:
    comp, mask, _ = composite_case
    soft = mask.copy()
    soft[0, 0] = 0.01
    out = comp.copy()
    out[0, 0] = 255 - comp[0, 0]
    assert background_change(out, comp, soft) == 0
    assert background_change(out, comp, mask) > 0


def test_background_change_float_input_and_size_check(composite_case) -> None:
    comp, mask, _ = composite_case
    assert background_change(comp / 255.0, comp, mask) == 0
    with pytest.raises(ValueError, match="differ in size"):
        background_change(comp[:10], comp, mask)
