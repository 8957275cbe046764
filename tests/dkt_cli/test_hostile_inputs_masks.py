"""Inputs that gave a wrong result without a word (issue 26): integer masks, frames, odd
TIFFs and out-of-range options, through the real ``dkt harmonize``.

One case per kind, judged exactly as in :mod:`tests.dkt_cli.test_hostile_inputs` (the same
check runs them): the exit code, the one line naming the file (or ``error:``) and what is
wrong, and no partial output; a mask that should simply work must really harmonize the
object, not leave it as it was and call that a success.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from tests.dkt_cli.test_hostile_inputs import FAILS, USAGE, WORKS, Case, Setup, _pair
from tests.dkt_cli.test_hostile_inputs import test_hostile_input as _judge

pytestmark = pytest.mark.usefixtures("one_thread")


def _tiff_mask(s: Setup, values: np.ndarray) -> Setup:
    s.mask = s.mask.with_suffix(".tif")
    tifffile.imwrite(s.mask, values)
    return s


# ------------------------------------------------------------- integer masks (item 1)


def int32_tiff_mask_0_255(tmp: Path) -> Setup:
    s = _pair(tmp)
    return _tiff_mask(s, s.mask_pixels.astype(np.int32))


def uint16_tiff_mask_0_255(tmp: Path) -> Setup:
    s = _pair(tmp)
    return _tiff_mask(s, s.mask_pixels.astype(np.uint16))


def uint16_png_mask_0_255(tmp: Path) -> Setup:
    s = _pair(tmp)
    Image.fromarray(s.mask_pixels.astype(np.uint16)).save(s.mask)  # a 16-bit grey PNG
    return s


def int32_mask_past_255(tmp: Path) -> Setup:
    s = _pair(tmp)
    return _tiff_mask(s, (s.mask_pixels > 0).astype(np.int32) * 1000)


def negative_mask(tmp: Path) -> Setup:
    s = _pair(tmp)
    return _tiff_mask(s, np.where(s.mask_pixels > 0, 255, -1).astype(np.int32))


def too_faint_mask(tmp: Path) -> Setup:
    s = _pair(tmp)
    return _tiff_mask(s, (s.mask_pixels > 0).astype(np.float32) * 0.001)


# -------------------------------------------------------------- several frames (item 3)


def animated_gif(tmp: Path) -> Setup:
    s = _pair(tmp)
    s.composite = s.composite.with_suffix(".gif")
    frames = [Image.fromarray(s.composite_pixels), Image.fromarray(255 - s.composite_pixels)]
    frames[0].save(s.composite, save_all=True, append_images=frames[1:], duration=100)
    return s


def animated_png(tmp: Path) -> Setup:
    s = _pair(tmp)
    frames = [Image.fromarray(s.composite_pixels), Image.fromarray(255 - s.composite_pixels)]
    frames[0].save(s.composite, save_all=True, append_images=frames[1:])
    return s


def multi_page_tiff_mask(tmp: Path) -> Setup:
    s = _pair(tmp)
    return _tiff_mask(s, np.stack([s.mask_pixels, 255 - s.mask_pixels]))


def tiff_with_a_preview_page(tmp: Path) -> Setup:
    s = _pair(tmp)
    s.composite = s.composite.with_suffix(".tif")
    with tifffile.TiffWriter(s.composite) as tif:
        tif.write(s.composite_pixels, photometric="rgb")
        tif.write(s.composite_pixels[::4, ::4], photometric="rgb", subfiletype=1)  # reduced
    return s


# ------------------------------------------------------------- TIFF samples (item 14)


def float32_tiff_composite(tmp: Path) -> Setup:
    s = _pair(tmp)
    s.composite = s.composite.with_suffix(".tif")
    tifffile.imwrite(s.composite, s.composite_pixels.astype(np.float32) / 255, photometric="rgb")
    return s


def int64_tiff_mask(tmp: Path) -> Setup:
    s = _pair(tmp)
    return _tiff_mask(s, s.mask_pixels.astype(np.int64))


# ------------------------------------------------------------------ options (item 15)


def _option(*extra: object) -> object:
    def make(tmp: Path) -> Setup:
        s = _pair(tmp)
        s.extra = extra
        return s

    make.__name__ = f"option_{str(extra[0]).lstrip('-')}_{extra[1]}"
    return make


CASES = [
    Case(int32_tiff_mask_0_255, WORKS, ""),
    Case(uint16_tiff_mask_0_255, WORKS, ""),
    Case(uint16_png_mask_0_255, WORKS, ""),
    Case(int32_mask_past_255, FAILS, "mask values run up to 1000: an integer mask", "mask"),
    Case(negative_mask, FAILS, "mask has negative values (down to -1)", "mask"),
    Case(too_faint_mask, FAILS, "mask selects nothing (its largest weight is 0.001", "mask"),
    Case(animated_gif, FAILS, "an animated GIF of 2 frames: dkt reads one still picture"),
    Case(animated_png, FAILS, "an animated PNG of 2 frames: dkt reads one still picture"),
    Case(multi_page_tiff_mask, FAILS, "a multi-page TIFF of 2 frames", "mask"),
    Case(tiff_with_a_preview_page, WORKS, ""),
    Case(float32_tiff_composite, FAILS, "a TIFF of 32-bit floating-point samples, 3 a pixel"),
    Case(int64_tiff_mask, FAILS, "a TIFF of 64-bit signed integer samples, 1 a pixel", "mask"),
    Case(
        _option("--size", 7),
        USAGE,
        "size must be 0 (the image's own) or at least 8, got 7",
        "error",
    ),
    Case(_option("--size", -1), USAGE, "size must be 0 (the image's own) or at least 8", "error"),
    Case(_option("--batch", 0), USAGE, "batch must be at least 1, got 0", "error"),
    Case(_option("--workers", -1), USAGE, "workers must be 0 (no pipeline) or more", "error"),
    Case(_option("--upsample", "nope"), USAGE, "upsample must be guided or residual", "error"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.make.__name__ for c in CASES])
def test_wrong_without_a_word(case: Case, tmp_path: Path, tiny_model: Path) -> None:
    _judge(case, tmp_path, tiny_model)
