"""Calibration composites for int8: read from a folder, at the working size, one square shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backends.shapes import ShapeProfile
from dkt.demo.samples import make_demo_sample
from dkt.errors import BackendError
from dkt.export.calibration import calibration_samples
from dkt.export.quantize import MAX_CALIBRATION_IMAGES
from dkt.imaging.imageio import write_image


def _box(height: int, width: int) -> ShapeProfile:
    """A profile whose calibration shape is height x width (at any larger working size)."""
    return ShapeProfile((1, 16, 16), (1, height, width), (1, height, width))


def write_pairs(folder: Path, count: int, height: int = 120, width: int = 160) -> None:
    for i in range(count):
        sample = make_demo_sample(height, width, seed=i)
        write_image(folder / f"k{i}_comp.png", sample.composite)
        write_image(folder / f"k{i}_mask.png", sample.mask)


def test_pairs_come_at_the_working_size_padded_square(tmp_path: Path) -> None:
    write_pairs(tmp_path, 2)
    samples = calibration_samples(tmp_path, working_size=64, profile=_box(64, 64))
    assert len(samples) == 2
    for composite, mask in samples:
        assert composite.shape == (3, 64, 64) and mask.shape == (1, 64, 64)
        assert composite.dtype == np.float32 and 0 <= composite.min() <= composite.max() <= 1
        assert mask[:, 48:].max() == 0  # 160x120 -> 64x48: the rows below are padding
        assert mask.max() > 0.5


def test_no_more_than_the_limit_are_read(tmp_path: Path) -> None:
    write_pairs(tmp_path, MAX_CALIBRATION_IMAGES + 1, 32, 40)
    assert (
        len(calibration_samples(tmp_path, working_size=40, profile=_box(40, 40)))
        == MAX_CALIBRATION_IMAGES
    )


def test_small_images_are_not_upsampled(tmp_path: Path) -> None:
    write_pairs(tmp_path, 1, 32, 40)
    composite, _ = calibration_samples(tmp_path, working_size=64, profile=_box(64, 64))[0]
    np.testing.assert_array_equal(composite[:, :, 40:], composite[:, :, 39:40].repeat(24, 2))


def test_a_smaller_box_shrinks_the_image_aspect_kept(tmp_path: Path) -> None:
    write_pairs(tmp_path, 1)  # 160x120
    composite, mask = calibration_samples(tmp_path, working_size=128, profile=_box(48, 96))[0]
    assert composite.shape == (3, 48, 96)
    assert mask[:, :, 64:].max() == 0 and mask[:, :, :64].max() > 0.5  # 64x48, padded right


@pytest.mark.parametrize(("make", "message"), [(False, "not a folder"), (True, "no <key>_comp")])
def test_a_folder_without_pairs_is_named(tmp_path: Path, make: bool, message: str) -> None:
    folder = tmp_path / "calib"
    if make:
        folder.mkdir()
        (folder / "notes.txt").write_text("no images")
    with pytest.raises(BackendError, match=message) as caught:
        calibration_samples(folder, working_size=64, profile=_box(64, 64))
    assert str(folder) in str(caught.value)
