"""Tests for ``dkt.inference.paste``: a cut-out on a painting gives the composite and its mask."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dkt.errors import ImageInputError, PasteError
from dkt.inference import paste as paste_module
from dkt.inference.paste import paste, paste_files, place


def _painting(h: int = 40, w: int = 60) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _cutout(h: int = 10, w: int = 20, alpha: int = 255) -> np.ndarray:
    cut = np.zeros((h, w, 4), np.uint8)
    cut[..., 0] = 250
    cut[2:-2, 2:-2, 3] = alpha
    return cut


def test_alpha_is_the_mask_and_the_painting_is_untouched_outside_it() -> None:
    painting = _painting()
    composite, mask = paste(painting, _cutout(), at=(5, 7))
    assert mask.dtype == np.float32 and mask.shape == (40, 60)
    assert mask[9:15, 7:23].min() == 1.0 and mask.sum() == 6 * 16
    assert np.array_equal(composite[mask == 0], painting[mask == 0])
    assert (composite[mask == 1] == (250, 0, 0)).all()


def test_half_transparent_alpha_blends_and_is_a_soft_mask() -> None:
    painting = np.full((20, 20, 3), 100, np.uint8)
    composite, mask = paste(painting, _cutout(alpha=128), at=(0, 0))
    assert mask.max() == pytest.approx(128 / 255)
    assert composite[5, 5, 0] == round((250 * 128 + 100 * 127) / 255)


def test_default_position_is_centred_and_scale_resizes() -> None:
    spot = place((40, 60), (10, 20))
    assert (spot.x, spot.y, spot.width, spot.height) == (20, 15, 20, 10)
    _, mask = paste(_painting(), np.full((10, 20, 4), 255, np.uint8), scale=2.0)
    ys, xs = np.nonzero(mask)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (10, 29, 10, 49)


def test_a_cutout_partly_outside_is_cropped() -> None:
    painting = _painting()
    composite, mask = paste(painting, np.full((10, 20, 4), 255, np.uint8), at=(-10, 35))
    assert mask.sum() == 5 * 10
    assert np.array_equal(composite[mask == 0], painting[mask == 0])


@pytest.mark.parametrize(
    ("at", "scale", "message"),
    [
        ((100, 0), 1.0, "wholly outside the 60x40 painting"),
        ((-20, 0), 1.0, "wholly outside"),
        (None, 0.01, "it vanishes"),
        (None, 0.0, "scale must be above 0"),
    ],
)
def test_placements_that_leave_nothing_are_refused(at, scale, message) -> None:
    with pytest.raises(PasteError, match=message):
        paste(_painting(), np.full((10, 20, 4), 255, np.uint8), at=at, scale=scale)


def test_a_fully_transparent_visible_part_is_refused() -> None:
    with pytest.raises(PasteError, match="fully transparent"):
        paste(_painting(), _cutout(), at=(-18, 0))  # only the transparent rim is on the painting


def test_files_a_cutout_without_transparency_is_named(tmp_path: Path) -> None:
    Image.fromarray(_painting()).save(tmp_path / "painting.png")
    Image.fromarray(_painting(10, 10)).save(tmp_path / "photo.jpg")
    with pytest.raises(ImageInputError, match=r"photo\.jpg: is not a cut-out"):
        paste_files(tmp_path / "painting.png", tmp_path / "photo.jpg")
    Image.fromarray(_cutout(), "RGBA").save(tmp_path / "cut.png")
    composite, mask = paste_files(tmp_path / "painting.png", tmp_path / "cut.png", (1, 1))
    assert composite.shape == (40, 60, 3) and mask.sum() == 6 * 16


def test_docstring_example_runs() -> None:
    assert doctest.testmod(paste_module).failed == 0


@pytest.mark.parametrize("scale", [float("inf"), 1e308, float("nan"), -float("inf")])
def test_a_scale_no_image_can_have_is_a_paste_error_not_an_overflow(scale: float) -> None:
    """``scale=inf`` and ``1e308`` raised OverflowError (issue 26 item 11)."""
    with pytest.raises(PasteError, match=r"^scale"):
        paste(_painting(), _cutout(), scale=scale)
