"""Tests for ``dkt.imaging.colour``: reference Lab values and a lossless round trip."""

from __future__ import annotations

import numpy as np
import pytest

from dkt.imaging.colour import lab_to_srgb, luma, srgb_to_lab


@pytest.mark.parametrize(
    ("rgb", "lab"),
    [
        ((255, 255, 255), (100.0, 0.0, 0.0)),
        ((0, 0, 0), (0.0, 0.0, 0.0)),
        ((255, 0, 0), (53.24, 80.09, 67.20)),
        ((0, 0, 255), (32.30, 79.19, -107.86)),
        ((128, 128, 128), (53.59, 0.0, 0.0)),
    ],
)
def test_reference_values(rgb: tuple[int, int, int], lab: tuple[float, float, float]) -> None:
    got = srgb_to_lab(np.array([rgb], dtype=np.uint8))[0]
    np.testing.assert_allclose(got, lab, atol=0.02)


def test_round_trip_is_lossless_in_8_bit() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    back = np.rint(lab_to_srgb(srgb_to_lab(rgb)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(back, rgb)


def test_float_input_matches_uint8() -> None:
    rgb = np.array([[10, 200, 30]], dtype=np.uint8)
    np.testing.assert_allclose(srgb_to_lab(rgb), srgb_to_lab(rgb / 255.0))


def test_luma_shifts_by_a_constant_under_a_grey_shift() -> None:
    rgb = np.random.default_rng(1).integers(20, 200, (8, 8, 3)).astype(np.uint8)
    np.testing.assert_allclose(luma(rgb + 30) - luma(rgb), 30 / 255.0, atol=1e-12)


def test_rejects_non_rgb() -> None:
    with pytest.raises(ValueError, match="3 channels"):
        srgb_to_lab(np.zeros((4, 4), dtype=np.uint8))


def test_tensor_version_matches_numpy_and_has_finite_gradients() -> None:
    import torch

    from dkt.imaging.colour import srgb_to_lab_tensor

    rgb = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    rgb[0, :, 0, 0] = 0.0  # black: the cube root's steep end
    lab = srgb_to_lab_tensor(rgb).numpy()
    expected = srgb_to_lab(rgb.permute(0, 2, 3, 1).numpy()).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(lab, expected, atol=1e-3)
    rgb.requires_grad_(True)
    srgb_to_lab_tensor(rgb).sum().backward()
    assert torch.isfinite(rgb.grad).all()
