"""Tests for ``dkt.evaluation.style`` on constructed cases whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dkt.evaluation.style import (
    colour_distance,
    gabor_bank,
    sliced_wasserstein,
    texture_distance,
    texture_energies,
)
from tests.evaluation.synthetic import square_mask, striped_painting


def test_sliced_wasserstein_of_identical_sets_is_zero() -> None:
    x = np.random.default_rng(0).normal(size=(500, 3))
    assert sliced_wasserstein(x, x) == pytest.approx(0.0, abs=1e-12)


def test_sliced_wasserstein_of_a_shift_is_half_its_length_in_3d() -> None:
    x = np.random.default_rng(0).normal(size=(4000, 3))
    delta = np.array([6.0, -3.0, 2.0])  # |delta| = 7
    got = sliced_wasserstein(x, x + delta, projections=512)
    assert got == pytest.approx(7.0 / 2.0, rel=0.05)


def test_sliced_wasserstein_is_deterministic_and_empty_is_nan() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(100, 3)), rng.normal(size=(80, 3))
    assert sliced_wasserstein(x, y) == sliced_wasserstein(x, y)
    assert math.isnan(sliced_wasserstein(x[:0], y))


def test_gabor_bank_is_zero_mean_and_unit_norm() -> None:
    bank = gabor_bank()
    assert bank.shape[0] == 8 and bank.shape[1] == 1
    sums = bank.sum(dim=(1, 2, 3))
    norms = bank.flatten(1).norm(dim=1)
    assert sums.abs().max() < 1e-5
    np.testing.assert_allclose(norms.numpy(), 1.0, atol=1e-5)


def test_same_texture_and_colour_on_both_sides_scores_near_zero() -> None:
    painting = striped_painting(seed=3)
    mask = square_mask()
    assert colour_distance(painting, mask) < 2.0
    assert texture_distance(painting, mask) < 0.15  # sampling noise of a 40x40 region


def test_pure_colour_shift_raises_colour_but_not_texture_distance() -> None:
    painting = striped_painting(seed=3).astype(np.int16)
    mask = square_mask()
    shifted = painting.copy()
    shifted[mask > 0] += np.array([40, -30, -60], dtype=np.int16)  # stays within 0..255
    assert shifted.min() >= 0 and shifted.max() <= 255
    before = painting.astype(np.uint8)
    after = shifted.astype(np.uint8)
    # The shift is about 27 Lab units long; the sliced distance of a shift is half its length.
    assert colour_distance(after, mask) > colour_distance(before, mask) + 10.0
    assert texture_distance(after, mask) == pytest.approx(texture_distance(before, mask), abs=1e-3)


def test_texture_change_raises_texture_distance_not_colour_much() -> None:
    painting = striped_painting(seed=3)
    mask = square_mask()
    flat = painting.copy()
    fg = mask > 0
    flat[fg] = np.rint(painting[fg].reshape(-1, 3).mean(axis=0)).astype(np.uint8)  # strokes gone
    tex_before, tex_after = texture_distance(painting, mask), texture_distance(flat, mask)
    assert tex_after > tex_before + 1.0
    # Same mean colour, narrower spread: the colour distance moves far less than for a shift.
    assert colour_distance(flat, mask) < 15.0


def test_texture_energies_ignore_the_object_outline() -> None:
    # Two flat colours: the only texture is the square's edge, which must not count.
    image = np.zeros((96, 96, 3), dtype=np.uint8) + 40
    mask = square_mask()
    image[mask > 0] = 200
    fg, bg = texture_energies(image, mask)
    assert np.nanmax(fg) < 1e-4 and np.nanmax(bg) < 1e-4
    assert texture_distance(image, mask) == pytest.approx(0.0, abs=1e-3)


def test_empty_region_gives_nan() -> None:
    painting = striped_painting()
    assert math.isnan(colour_distance(painting, np.zeros(painting.shape[:2])))
    assert math.isnan(texture_distance(painting, np.zeros(painting.shape[:2])))
