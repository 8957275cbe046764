"""Figures put results next to each other at one scale, with readable labels."""

from __future__ import annotations

import numpy as np
import pytest

from dkt.demo.figures import contact_sheet, side_by_side


def _img(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_side_by_side_size_and_panels_unchanged_at_common_height() -> None:
    a, b, c = _img(40, 30, 0), _img(40, 50, 1), _img(40, 20, 2)
    out = side_by_side([a, b, c], gap=8)
    assert out.dtype == np.uint8
    assert out.shape == (40 + 2 * 8, 30 + 50 + 20 + 4 * 8, 3)
    assert np.array_equal(out[8:48, 8:38], a)
    assert np.array_equal(out[8:48, 46:96], b)
    assert np.array_equal(out[8:48, 104:124], c)
    # Gaps and frame are the background colour.
    assert (out[:8] == 255).all() and (out[:, 38:46] == 255).all()


def test_side_by_side_scales_to_common_height_keeping_aspect() -> None:
    small, tall = _img(20, 10, 0), _img(40, 30, 1)
    out = side_by_side([small, tall], gap=4)
    # The 20x10 image is shown 40 tall and 20 wide.
    assert out.shape == (40 + 8, 20 + 30 + 12, 3)
    assert np.array_equal(out[4:44, 28:58], tall)
    # The upscaled panel still looks like its source (coarse check on block means).
    shown = out[4:44, 4:24].astype(float).reshape(20, 2, 10, 2, 3).mean(axis=(1, 3))
    assert np.abs(shown - small).mean() < 40


def test_side_by_side_explicit_height() -> None:
    out = side_by_side([_img(40, 40, 0), _img(80, 40, 1)], gap=0, height=20)
    assert out.shape == (20, 20 + 10, 3)


def test_side_by_side_grey_mask_shown_as_grey() -> None:
    mask = np.zeros((30, 30), np.uint8)
    mask[10:20, 10:20] = 255
    out = side_by_side([_img(30, 30, 0), mask], gap=2)
    panel = out[2:32, 34:64]
    assert np.array_equal(panel[..., 0], mask)
    assert np.array_equal(panel[..., 0], panel[..., 1])
    assert np.array_equal(panel[..., 0], panel[..., 2])


def test_side_by_side_accepts_bool_and_float() -> None:
    boolean = np.zeros((10, 10), bool)
    boolean[:5] = True
    floats = np.full((10, 10, 3), 0.5, np.float32)
    out = side_by_side([boolean, floats], gap=0)
    assert (out[:5, :10] == 255).all() and (out[5:, :10] == 0).all()
    assert (out[:, 10:] == 128).all()


def test_side_by_side_labels_add_a_band_with_text() -> None:
    imgs = [np.full((50, 60, 3), 200, np.uint8), np.full((50, 60, 3), 90, np.uint8)]
    plain = side_by_side(imgs)
    labelled = side_by_side(imgs, ["composite", "a label far too long for its little panel"])
    assert labelled.shape[1] == plain.shape[1]
    assert labelled.shape[0] > plain.shape[0] + 8
    band = labelled[8 + 50 :, :]
    assert (band < 100).any(), "label text should be drawn in dark ink"
    # The long label is truncated: nothing spills into the gaps between/around panels.
    assert (band[:, :8] == 255).all()
    assert (band[:, 68:76] == 255).all()
    assert (band[:, -8:] == 255).all()


def test_side_by_side_dark_background_gets_light_text() -> None:
    out = side_by_side([_img(30, 60, 0)], ["result"], background=(0, 0, 0))
    assert (out[8 + 30 :] > 200).any()


def test_side_by_side_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        side_by_side([])
    with pytest.raises(ValueError):
        side_by_side([_img(10, 10, 0)], ["a", "b"])
    with pytest.raises(ValueError):
        side_by_side([np.zeros((10, 10, 2), np.uint8)])


def test_contact_sheet_grid_shape_and_cells() -> None:
    rows = [
        [_img(32, 48, 0), np.zeros((16, 16), np.uint8), _img(32, 32, 1)],
        [_img(64, 64, 2), _img(32, 16, 3), _img(32, 64, 4)],
    ]
    out = contact_sheet(rows, cell_height=32)
    gap = 6
    # Columns are as wide as their widest scaled image: 48, 32 (16x16 -> 32x32), 64.
    assert out.shape == (gap + 2 * (32 + gap), gap + 48 + 32 + 64 + 3 * gap, 3)
    assert np.array_equal(out[gap : gap + 32, gap : gap + 48], rows[0][0])
    # A narrower cell is centred in its column: 32-wide image in the 64-wide column 3.
    x3 = gap + 48 + gap + 32 + gap
    assert np.array_equal(out[gap : gap + 32, x3 + 16 : x3 + 48], rows[0][2])


def test_contact_sheet_labels() -> None:
    rows = [[_img(40, 40, 0), _img(40, 40, 1)], [_img(40, 40, 2), _img(40, 40, 3)]]
    plain = contact_sheet(rows, cell_height=40)
    labelled = contact_sheet(
        rows,
        column_labels=["composite", "harmonized"],
        row_labels=["seed 0", "an extremely long row label that must be truncated somewhere"],
        cell_height=40,
        max_row_label_width=120,
    )
    assert labelled.shape[0] > plain.shape[0]
    assert plain.shape[1] < labelled.shape[1] <= plain.shape[1] + 120 + 8
    # Text is drawn in the label areas.
    assert (labelled[:20] < 100).any()
    assert (labelled[:, :40] < 100).any()


def test_contact_sheet_ragged_rows_and_errors() -> None:
    out = contact_sheet([[_img(20, 20, 0)], [_img(20, 20, 1), _img(20, 40, 2)]], cell_height=20)
    assert out.shape == (6 + 2 * 26, 6 + 20 + 40 + 2 * 6, 3)
    with pytest.raises(ValueError):
        contact_sheet([])
    with pytest.raises(ValueError):
        contact_sheet([[_img(10, 10, 0)]], row_labels=["a", "b"])
