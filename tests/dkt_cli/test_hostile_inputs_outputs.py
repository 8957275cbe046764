"""What ``dkt harmonize`` writes, and the outputs it must refuse (issue 26 items 4, 9, 11).

The sibling of ``test_hostile_inputs.py``, one case per kind: a painting's colour profile,
DPI and EXIF survive into the result; an output name up to the file system's limit works
and a longer one, or a path with a NUL, or a scale no image can have, is refused in one
short line before any work (the model named here does not exist: reaching it would say
so), leaving nothing behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dkt.imaging.imageio import read_image, write_image
from dkt.inference.pairing import OUTPUT_MARKER
from dkt_cli.app import app
from tests.conftest import synthetic_pair
from tests.imaging.meta_files import (
    DATE_TAKEN,
    EXIF_IFD,
    MAKE,
    ORIENTATION,
    metadata_of,
    save_with_meta,
    wide_gamut_profile,
)

pytestmark = pytest.mark.usefixtures("one_thread")

runner = CliRunner()

FAILS_TO_START = 2
WORKS = 0


@dataclass
class Setup:
    """The arguments after ``harmonize`` (the model options are added) and the outputs that
    must exist afterwards, or must not."""

    args: list[object]
    outputs: list[Path]
    composite: np.ndarray | None = None
    mask: np.ndarray | None = None
    extra_checks: list[Callable[[], None]] = field(default_factory=list)


def _inputs(tmp: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    composite, mask = synthetic_pair(64, 80)
    write_image(tmp / "c.png", composite)
    write_image(tmp / "m.png", mask)
    return tmp / "c.png", tmp / "m.png", composite, mask


def _one(tmp: Path, output: Path) -> Setup:
    comp, mask, composite, mask_pixels = _inputs(tmp)
    return Setup([comp, "--mask", mask, "-o", output], [output], composite, mask_pixels)


# --------------------------------------------------------------------------- the kinds


def output_name_of_250_bytes(tmp: Path) -> Setup:
    return _one(tmp, tmp / "out" / ("n" * 246 + ".png"))


def output_name_of_300_bytes(tmp: Path) -> Setup:
    return _one(tmp, tmp / "out" / ("n" * 296 + ".png"))


def out_pattern_making_names_too_long(tmp: Path) -> Setup:
    _inputs(tmp)
    (tmp / "comps").mkdir()
    (tmp / "c.png").rename(tmp / "comps" / "a.png")
    (tmp / "masks").mkdir()
    (tmp / "m.png").rename(tmp / "masks" / "a.png")
    args = ["--composites", tmp / "comps", "--masks", tmp / "masks", "--out", tmp / "out",
            "--out-pattern", "{key}" + "p" * 300]  # fmt: skip
    return Setup(args, [tmp / "out"])


def _manifest(tmp: Path, output: str) -> Setup:
    _inputs(tmp)
    row = {"composite": "c.png", "mask": "m.png", "output": output}
    (tmp / "jobs.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    return Setup(["--manifest", tmp / "jobs.jsonl"], [tmp / "out"])


def manifest_output_name_too_long(tmp: Path) -> Setup:
    return _manifest(tmp, "out/" + "q" * 300 + ".png")


def manifest_path_of_a_megabyte(tmp: Path) -> Setup:
    return _manifest(tmp, "out/" + "q" * 1_000_000 + ".png")


def manifest_path_with_a_nul(tmp: Path) -> Setup:
    return _manifest(tmp, "out/a\0b.png")


def _pasted(tmp: Path, scale: str) -> Setup:
    painting, _ = synthetic_pair(64, 80)
    cutout = np.full((10, 12, 4), 200, np.uint8)
    cutout[0, 0, 3] = 0
    write_image(tmp / "painting.png", painting)
    Image.fromarray(cutout).save(tmp / "cutout.png")
    output = tmp / "out" / "r.png"
    args = ["--painting", tmp / "painting.png", "--object", tmp / "cutout.png",
            "--scale", scale, "-o", output]  # fmt: skip
    return Setup(args, [output])


def scale_infinite(tmp: Path) -> Setup:
    return _pasted(tmp, "inf")


def scale_1e308(tmp: Path) -> Setup:
    return _pasted(tmp, "1e308")


@dataclass(frozen=True)
class Case:
    make: Callable[[Path], Setup]
    code: int
    says: str = ""  # what the one line must say ("" for a clean success)


CASES = [
    Case(output_name_of_250_bytes, WORKS),
    Case(output_name_of_300_bytes, FAILS_TO_START, "over the file system's limit of 255 bytes"),
    Case(out_pattern_making_names_too_long, FAILS_TO_START, "--out-pattern"),
    Case(manifest_output_name_too_long, FAILS_TO_START, "jobs.jsonl:1: 'output'"),
    Case(manifest_path_of_a_megabyte, FAILS_TO_START, "jobs.jsonl:1: 'output'"),
    Case(manifest_path_with_a_nul, FAILS_TO_START, "contains a NUL character"),
    Case(scale_infinite, FAILS_TO_START, "scale must be above 0 and finite, got inf"),
    Case(scale_1e308, FAILS_TO_START, "longer than an image can be"),
]


def _leftovers(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.rglob("*") if p.name != OUTPUT_MARKER]


@pytest.mark.parametrize("case", CASES, ids=[c.make.__name__ for c in CASES])
def test_hostile_output(case: Case, tmp_path: Path, tiny_model: Path) -> None:
    setup = case.make(tmp_path)
    model = tiny_model if case.code == WORKS else tmp_path / "no-such-model.safetensors"
    args = ["harmonize", *setup.args, "--model", model, "--device", "cpu"]
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == case.code, result.output
    assert "Traceback" not in result.output
    if case.code == WORKS:
        for output in setup.outputs:
            pixels = read_image(output)
            keep = setup.mask == 0
            assert np.array_equal(pixels[keep], setup.composite[keep])
        assert [p.name for p in _leftovers(setup.outputs[0].parent)] == [setup.outputs[0].name]
        return
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and case.says in lines[0], lines[0]
    assert len(lines[0]) < 400  # a name of a megabyte is shown shortened
    assert "no-such-model" not in result.output  # refused before the model was looked for
    assert _leftovers(tmp_path / "out") == []  # every case's outputs would go there


# --------------------------------------------------------------------------- metadata


@pytest.mark.parametrize(("source", "out"), [(".png", ".png"), (".jpg", ".jpg"),
                                             (".tif", ".tif"), (".jpg", ".webp")])  # fmt: skip
@pytest.mark.parametrize("workers", [0, 2])
def test_a_wide_gamut_paintings_profile_dpi_and_exif_reach_the_result(
    source: str, out: str, workers: int, tmp_path: Path, tiny_model: Path
) -> None:
    """Without its profile the "byte-identical" background of a wide-gamut painting shows
    in other colours; the EXIF says orientation 1, as the pixels are written upright."""
    composite, mask = synthetic_pair(64, 80)
    save_with_meta(tmp_path / f"c{source}", composite, dpi=(300, 150), orientation=6)
    write_image(tmp_path / "m.png", mask)
    output = tmp_path / f"r{out}"
    args = ["harmonize", tmp_path / f"c{source}", "--mask", tmp_path / "m.png", "-o", output,
            "--model", tiny_model, "--device", "cpu", "--workers", workers]  # fmt: skip
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    icc, dpi, exif = metadata_of(output)
    assert icc == wide_gamut_profile()
    if out != ".webp":  # WebP holds no DPI
        assert dpi == pytest.approx((150, 300), rel=1e-3)  # turned with the pixels
    assert exif[ORIENTATION] == 1
    assert exif[MAKE] == "dkt test camera"
    if out != ".tif":  # libtiff writes no EXIF sub-IFD
        assert exif.get_ifd(EXIF_IFD)[DATE_TAKEN] == "2024:05:06 07:08:09"


def test_a_pasted_cutouts_result_keeps_the_paintings_profile(tmp_path: Path, tiny_model: Path):
    painting, _ = synthetic_pair(64, 80)
    save_with_meta(tmp_path / "painting.jpg", painting, orientation=1)
    cutout = np.zeros((20, 24, 4), np.uint8)
    cutout[4:16, 4:20] = (230, 40, 40, 255)
    Image.fromarray(cutout).save(tmp_path / "cut.png")
    args = ["harmonize", "--painting", tmp_path / "painting.jpg", "--object", tmp_path / "cut.png",
            "-o", tmp_path / "r.png", "--model", tiny_model, "--device", "cpu"]  # fmt: skip
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    icc, dpi, exif = metadata_of(tmp_path / "r.png")
    assert icc == wide_gamut_profile()
    assert dpi == pytest.approx((300, 150), rel=1e-3)
    assert exif[MAKE] == "dkt test camera"
