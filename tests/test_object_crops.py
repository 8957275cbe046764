"""scripts/object_crops.py: every method's crop of the object, side by side, from saved results."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location(
        "object_crops", ROOT / "scripts" / "object_crops.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_box_holds_the_object_and_a_margin_of_painting_inside_the_image() -> None:
    mask = np.zeros((100, 200), np.uint8)
    mask[40:60, 150:190] = 255
    top, bottom, left, right = _script().object_box(mask, margin=0.25)
    assert (top, bottom, left, right) == (30, 70, 140, 200)  # grown by 10 px, cut at the edge
    with pytest.raises(ValueError, match="selects nothing"):
        _script().object_box(np.zeros((4, 4)))


def test_a_sheet_has_one_row_per_key_and_a_column_per_method(tmp_path: Path) -> None:
    comps, res_a, res_b = tmp_path / "c", tmp_path / "a", tmp_path / "b"
    for folder in (comps, res_a, res_b):
        folder.mkdir()
    rng = np.random.default_rng(0)
    for key in ("k1", "k2"):
        Image.fromarray(rng.integers(0, 256, (64, 96, 3), np.uint8)).save(comps / f"{key}_comp.png")
        mask = np.zeros((64, 96), np.uint8)
        mask[10:40, 20:50] = 255
        Image.fromarray(mask).save(comps / f"{key}_mask.png")
        for folder in (res_a, res_b):
            Image.fromarray(rng.integers(0, 256, (64, 96, 3), np.uint8)).save(folder / f"{key}.png")
    out = tmp_path / "crops.png"
    _script().main([
        "--composites", str(comps), "--masks", str(comps), "--composite-pattern", "{key}_comp",
        "--mask-pattern", "{key}_mask", "--results", str(res_a), str(res_b), "--keys", "k1,k2",
        "--cell-height", "50", "-o", str(out),
    ])  # fmt: skip
    sheet = np.asarray(Image.open(out))
    assert sheet.shape[0] > 2 * 50 and sheet.shape[1] > 3 * 50 * 0.5
    with pytest.raises(SystemExit, match="no file for k3"):
        _script().main([
            "--composites", str(comps), "--masks", str(comps), "--results", str(res_a),
            "--keys", "k3", "-o", str(out),
        ])  # fmt: skip
