"""The chroma speckle metric (``dkt.imaging.chroma``) and its place in ``dkt evaluate``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from dkt.evaluation.runner import METRICS, MethodResult
from dkt.imaging.chroma import chroma_speckle
from dkt.imaging.colour import srgb_to_lab
from tests.evaluation.synthetic import square_mask, striped_painting

CHROMA = next(m for m in METRICS if m.key == "chroma_speckle")


def _reference_rms(image: np.ndarray, region: np.ndarray) -> float:
    """The same measurement written independently in numpy: a/b minus their edge-padded 5x5
    mean, RMS over the pixels whose whole 5x5 box (zero outside the image) is in ``region``."""
    ab = srgb_to_lab(image)[..., 1:]
    padded = np.pad(ab, ((2, 2), (2, 2), (0, 0)), mode="edge")
    detail = ab - sliding_window_view(padded, (5, 5), axis=(0, 1)).mean(axis=(-2, -1))
    inner = sliding_window_view(np.pad(region, 2), (5, 5)).min(axis=(-2, -1))
    return math.sqrt(float((detail**2).sum(-1)[inner].sum()) / (2 * inner.sum()))


def _speckled(image: np.ndarray, mask: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """``image`` with green and pink single pixels scattered over the object."""
    rng = np.random.default_rng(0)
    out = image.copy()
    hit = (mask > 0) & (rng.random(mask.shape) < fraction)
    colours = np.array([[40, 200, 60], [255, 120, 200]], dtype=np.uint8)
    out[hit] = colours[rng.integers(0, 2, int(hit.sum()))]
    return out


def test_the_composite_gives_its_photo_to_painting_ratio(composite_case) -> None:
    comp, mask, _ = composite_case
    expected = _reference_rms(comp, mask >= 0.99) / _reference_rms(comp, mask <= 0.01)
    assert chroma_speckle(comp, comp, mask) == pytest.approx(expected, rel=1e-3)
    assert expected < 0.5  # a smooth photo object has far less colour detail than the painting


def test_green_and_pink_speckle_on_the_object_scores_clearly_higher(composite_case) -> None:
    comp, mask, _ = composite_case
    clean = chroma_speckle(comp, comp, mask)
    noisy = chroma_speckle(_speckled(comp, mask), comp, mask)
    assert clean is not None and noisy is not None
    assert noisy > 1.5 and noisy > 10 * clean


def test_the_painting_s_own_texture_on_the_object_is_about_one(composite_case) -> None:
    comp, mask, _ = composite_case
    painted = np.where(mask[..., None] > 0, striped_painting(seed=1), comp).astype(np.uint8)
    assert chroma_speckle(painted, comp, mask) == pytest.approx(1.0, abs=0.15)


def test_the_painting_is_measured_in_the_composite_not_the_result(composite_case) -> None:
    """Repainting the background of the result must not move the yardstick."""
    comp, mask, _ = composite_case
    result = _speckled(comp, mask)
    flat_bg = np.where(mask[..., None] > 0, result, 128).astype(np.uint8)
    assert chroma_speckle(flat_bg, comp, mask) == pytest.approx(chroma_speckle(result, comp, mask))


@pytest.mark.parametrize(
    "mask",
    [square_mask(32, 32, top=10, size=4), np.ones((32, 32), np.float32)],
    ids=["object-too-small-for-a-5x5-box", "no-painting-left"],
)
def test_no_inner_pixel_gives_none(mask: np.ndarray) -> None:
    image = striped_painting(32, 32)
    assert chroma_speckle(image, image, mask) is None


def test_aggregate_is_the_geometric_mean_and_skips_none() -> None:
    assert CHROMA.aggregate == "geomean" and CHROMA.arrow == "→1"
    result = MethodResult("m", "m", "baseline", {})
    result.per_item = {
        "a": {"chroma_speckle": 0.5},
        "b": {"chroma_speckle": 8.0},
        "c": {"chroma_speckle": None},
    }
    assert result.aggregate(CHROMA) == pytest.approx(2.0)
    result.per_item = {"c": {"chroma_speckle": None}}
    assert result.aggregate(CHROMA) is None


def test_a_flat_object_does_not_zero_the_aggregate() -> None:
    result = MethodResult("m", "m", "baseline", {})
    result.per_item = {"a": {"chroma_speckle": 0.0}, "b": {"chroma_speckle": 1000.0}}
    with np.errstate(all="raise"):
        assert result.aggregate(CHROMA) == pytest.approx(1.0)
