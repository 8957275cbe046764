"""Tests for ``dkt.inference.edges``: an object's soft edge takes the painting, not the photo.

A red disc is pasted with an anti-aliased edge on a flat blue painting, and a stand-in model
turns the object grey and blends as the real one does. Each edge pixel must end up as
``m * grey + (1 - m) * blue``: any red left on it is the photo's colour kept on the rim.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from backends.base import Backend, LoadOptions
from dkt.inference.edges import painting_behind
from dkt.inference.full_resolution import Box
from dkt.inference.harmonizer import Harmonizer

pytestmark = pytest.mark.usefixtures("one_thread")

RED, BLUE, GREY = (
    np.array(c, np.float32) / 255 for c in ((220, 20, 30), (40, 60, 200), (128,) * 3)
)


class GreyModel(Backend):
    """Turns the object grey and blends with the composite by the mask, as DKTNet does."""

    name: ClassVar[str] = "grey"

    @classmethod
    def load(cls, model: Path, options: LoadOptions = LoadOptions()) -> GreyModel:
        return cls()

    def run(self, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        grey = np.broadcast_to(GREY[:, None, None], composite.shape[1:])
        return (mask * grey + (1 - mask) * composite).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}


def _pasted_disc(size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A red disc with a 1-2 px anti-aliased edge, pasted with its alpha on blue."""
    yy, xx = np.mgrid[:size, :size] + 0.5
    distance = np.hypot(yy - size / 2, xx - size / 2)
    mask = np.clip(size / 3 - distance + 0.5, 0.0, 1.0).astype(np.float32)
    composite = mask[..., None] * RED + (1 - mask[..., None]) * BLUE
    return np.round(composite * 255).astype(np.uint8), mask


@pytest.mark.parametrize("size", [0, 48], ids=["full-size", "upsampled"])
def test_the_edge_keeps_the_painting_not_the_photo(size: int) -> None:
    composite, mask = _pasted_disc()
    out = Harmonizer(GreyModel(), size).harmonize(composite, mask).astype(np.float32) / 255
    edge = (mask > 0.2) & (mask < 0.8)
    m = mask[edge][:, None]
    expected = m * GREY + (1 - m) * BLUE
    red_left = out[edge][:, 0] - expected[:, 0]
    assert edge.sum() > 50
    # Before: (1 - m) * m of the photo's red stayed on the rim, up to 0.25 * 0.67 = 43 levels.
    assert np.abs(red_left).max() < 8 / 255
    assert np.array_equal(out[mask == 0], composite[mask == 0].astype(np.float32) / 255)


def test_a_hard_mask_leaves_every_pixel_its_own() -> None:
    composite, mask = _pasted_disc()
    hard = (mask > 0.5).astype(np.float32)
    box = Box(0, 96, 0, 96)
    own = composite.transpose(2, 0, 1).astype(np.float32) / 255
    assert np.array_equal(painting_behind(composite, hard, box, 255.0), own)


def test_an_edge_with_no_painting_near_keeps_its_own_value() -> None:
    """Deep inside a wide feather there is no pure painting to look at: nothing is invented."""
    composite = np.full((40, 40, 3), 200, np.uint8)
    mask = np.full((40, 40), 0.5, np.float32)
    mask[:, :2] = 0.0
    behind = painting_behind(composite, mask, Box(0, 40, 0, 40), 255.0)
    assert np.allclose(behind[:, :, 20:], 200 / 255)
