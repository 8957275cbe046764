"""Tests for ``dkt.inference.full_resolution``: a low-resolution result at full resolution."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dkt.inference.full_resolution import (
    STRIP_PIXELS,
    Box,
    LowResTransform,
    bounds,
    fit_transform,
    guided_coefficients,
    strips,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    """(3,h,w) float32 colours that vary smoothly in all three channels, plus a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    waves = [xx / 3 + yy / 7, xx / 6 - yy / 4, (xx + yy) / 2.5]  # three independent directions
    img = np.stack([0.5 + 0.3 * np.sin(wave + rng.uniform(0, 6)) for wave in waves])
    return (img + rng.normal(0, 0.02, img.shape)).astype(np.float32)


def test_guided_reproduces_the_output_exactly_at_scale_one() -> None:
    """No resizing: whatever the fit, the fit's residual rides along, so nothing is lost."""
    low_in = _smooth_image(20, 24, 0)
    low_out = np.clip(
        low_in[::-1] * 0.7 + np.random.default_rng(1).normal(0, 0.05, low_in.shape), 0, 1
    )
    weight = np.ones((20, 24), np.float32)
    transform = fit_transform(
        "guided", low_in, low_out.astype(np.float32), weight, (20, 24), Box(0, 20, 0, 24)
    )
    out = transform.apply(low_in, Box(0, 20, 0, 24), (20, 24))
    np.testing.assert_allclose(out, low_out, atol=1e-5)


def test_guided_recovers_a_colour_matrix_where_the_object_is() -> None:
    low_in = _smooth_image(40, 40, 2)
    matrix = np.array([[0.6, 0.2, 0.1], [0.3, 0.5, 0.2], [0.1, 0.1, 0.4]], np.float32)
    low_out = np.einsum("ij,ihw->jhw", matrix, low_in) + 0.05
    weight = np.zeros((40, 40), np.float32)
    weight[4:20, 4:20] = 1.0
    fitted, _ = guided_coefficients(low_in, low_out, weight)
    centre = (slice(None), slice(None), slice(8, 16), slice(8, 16))
    np.testing.assert_allclose(
        fitted[centre], matrix[..., None, None].repeat(8, 2).repeat(8, 3), atol=0.05
    )
    # Far from every object pixel: the identity and no offset beyond the fit's residual.
    np.testing.assert_allclose(fitted[:, :, 39, 39], np.eye(3), atol=1e-6)


def test_fitting_around_the_object_only_gives_the_whole_image_result() -> None:
    """The crop to the object's surroundings is an optimisation, not an approximation."""
    low_in = _smooth_image(30, 40, 3)
    low_out = np.clip(low_in**2 + 0.1, 0, 1).astype(np.float32)
    weight = np.zeros((30, 40), np.float32)
    weight[10:18, 12:25] = 1.0
    full_shape = (120, 160)
    box = Box(41, 70, 50, 98)  # the full-resolution object's bounds
    cropped = fit_transform("guided", low_in, low_out, weight, full_shape, box)
    assert cropped.offset.shape[-2:] != (30, 40)  # it really did crop
    matrix, offset = guided_coefficients(low_in, low_out, weight)
    whole = LowResTransform(matrix, offset, (30, 40))
    pixels = np.random.default_rng(4).uniform(0, 1, (3, box.y1 - box.y0, box.x1 - box.x0))
    pixels = pixels.astype(np.float32)
    np.testing.assert_allclose(
        cropped.apply(pixels, box, full_shape), whole.apply(pixels, box, full_shape), atol=1e-5
    )


@pytest.mark.parametrize("shapes", [((7, 9), (30, 41)), ((16, 16), (64, 64)), ((5, 12), (6, 50))])
def test_upsampling_matches_torch_bilinear(shapes) -> None:
    (h, w), (big_h, big_w) = shapes
    change = np.random.default_rng(5).normal(size=(3, h, w)).astype(np.float32)
    transform = LowResTransform(None, change, (h, w))
    zeros = np.zeros((3, big_h, big_w), np.float32)
    ours = transform.apply(zeros, Box(0, big_h, 0, big_w), (big_h, big_w))
    ref = F.interpolate(torch.from_numpy(change)[None], size=(big_h, big_w), mode="bilinear",
                        align_corners=False)[0].numpy()  # fmt: skip
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_residual_adds_the_change() -> None:
    low_in = _smooth_image(10, 10, 6)
    transform = fit_transform("residual", low_in, low_in + 0.25, np.ones((10, 10)), (40, 40),
                              Box(0, 40, 0, 40))  # fmt: skip
    pixels = np.random.default_rng(7).uniform(0, 0.5, (3, 40, 40)).astype(np.float32)
    np.testing.assert_allclose(transform.apply(pixels, Box(0, 40, 0, 40), (40, 40)), pixels + 0.25,
                               atol=1e-6)  # fmt: skip


def test_unknown_method_is_refused() -> None:
    low = np.zeros((3, 4, 4), np.float32)
    with pytest.raises(ValueError, match="guided, residual"):
        fit_transform("nearest", low, low, np.ones((4, 4)), (8, 8), Box(0, 8, 0, 8))


def test_bounds_and_strips_cover_the_object_exactly() -> None:
    mask = np.zeros((3000, 700), bool)
    mask[5, 600] = mask[2990, 3] = True
    box = bounds(mask)
    assert box == Box(5, 2991, 3, 601)
    parts = strips(box)
    assert parts[0].y0 == 5 and parts[-1].y1 == 2991
    assert all(a.y1 == b.y0 for a, b in itertools.pairwise(parts))
    assert all((p.y1 - p.y0) * (p.x1 - p.x0) <= STRIP_PIXELS for p in parts)
    assert len(parts) > 1  # a big object really is cut, so memory stays bounded
    assert bounds(np.zeros((4, 4), bool)) is None
