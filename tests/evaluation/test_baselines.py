"""Tests for ``dkt.evaluation.baselines``: the painting is untouched, Reinhard matches colours."""

from __future__ import annotations

import numpy as np

from dkt.evaluation.baselines import BASELINES, composite_baseline, reinhard
from dkt.evaluation.style import colour_distance
from dkt.imaging.colour import srgb_to_lab


def test_composite_baseline_is_an_unchanged_copy(composite_case) -> None:
    comp, mask, _ = composite_case
    out = composite_baseline(comp, mask)
    np.testing.assert_array_equal(out, comp)
    assert out is not comp


def test_reinhard_leaves_background_byte_identical(composite_case) -> None:
    comp, mask, _ = composite_case
    out = reinhard(comp, mask)
    assert out.dtype == np.uint8 and out.shape == comp.shape
    np.testing.assert_array_equal(out[mask == 0], comp[mask == 0])
    assert (out[mask > 0] != comp[mask > 0]).any()


def test_reinhard_matches_foreground_lab_statistics_to_background(composite_case) -> None:
    comp, mask, _ = composite_case
    out = reinhard(comp, mask)
    lab = srgb_to_lab(out)
    fg, bg = lab[mask > 0], lab[mask == 0]
    np.testing.assert_allclose(fg.mean(axis=0), bg.mean(axis=0), atol=1.5)
    np.testing.assert_allclose(fg.std(axis=0), bg.std(axis=0), rtol=0.15, atol=1.0)


def test_reinhard_reduces_colour_distance(composite_case) -> None:
    comp, mask, _ = composite_case
    before = colour_distance(comp, mask)
    after = colour_distance(reinhard(comp, mask), mask)
    assert after < 0.25 * before


def test_reinhard_soft_mask_keeps_zero_weight_pixels(composite_case) -> None:
    comp, mask, _ = composite_case
    soft = mask.copy()
    soft[27, 28:68] = 0.5  # a half-weight border row
    out = reinhard(comp, soft)
    np.testing.assert_array_equal(out[soft == 0], comp[soft == 0])


def test_reinhard_without_foreground_or_background_changes_nothing(composite_case) -> None:
    comp, _, _ = composite_case
    np.testing.assert_array_equal(reinhard(comp, np.zeros(comp.shape[:2])), comp)
    np.testing.assert_array_equal(reinhard(comp, np.ones(comp.shape[:2])), comp)


def test_registry_names() -> None:
    assert set(BASELINES) == {"composite", "reinhard"}
