"""Every kind of hostile or odd input to ``dkt harmonize`` in one place (issue 12).

One case per kind. Each says what a user gets: the exit code, the one line that names the
file and what is wrong (or, for inputs that should simply work, the right result), and that
no partial or wrong output is left behind. All images are small and made here; the model is
the suite's tiny one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dkt.imaging.imageio import read_image, write_image
from dkt.inference.pairing import OUTPUT_MARKER
from dkt_cli.app import app
from tests.conftest import synthetic_pair

pytestmark = pytest.mark.usefixtures("one_thread")

runner = CliRunner()


@dataclass
class Setup:
    """What a case made: the files to pass, the option list, where the output would go."""

    composite: Path
    mask: Path
    out: Path
    extra: tuple[object, ...] = ()
    composite_pixels: np.ndarray | None = None
    mask_pixels: np.ndarray | None = None


def _pair(tmp: Path, height: int = 64, width: int = 80) -> Setup:
    composite, mask = synthetic_pair(height, width)
    setup = Setup(tmp / "c.png", tmp / "m.png", tmp / "out" / "r.png")
    write_image(setup.composite, composite)
    write_image(setup.mask, mask)
    setup.composite_pixels, setup.mask_pixels = composite, mask
    return setup


# --------------------------------------------------------------------------- the kinds


def not_an_image(tmp: Path) -> Setup:
    s = _pair(tmp)
    s.composite.write_text("holiday notes, not a picture\n")
    return s


def empty_file(tmp: Path) -> Setup:
    s = _pair(tmp)
    s.composite.write_bytes(b"")
    return s


def truncated(tmp: Path) -> Setup:
    s = _pair(tmp)
    data = s.composite.read_bytes()
    s.composite.write_bytes(data[: len(data) // 2])
    return s


def folder_as_composite(tmp: Path) -> Setup:
    s = _pair(tmp)
    s.composite.unlink()
    s.composite.mkdir()
    return s


def missing_composite(tmp: Path) -> Setup:
    s = _pair(tmp)
    s.composite.unlink()
    return s


def mask_of_another_size(tmp: Path) -> Setup:
    s = _pair(tmp)
    write_image(s.mask, np.full((32, 40), 255, np.uint8))
    return s


def mask_of_the_unrotated_photo(tmp: Path) -> Setup:
    s = _pair(tmp)
    exif = Image.Exif()
    exif[0x0112] = 8
    Image.fromarray(s.composite_pixels).save(s.composite, exif=exif)  # read as 80x64
    return s


def empty_mask(tmp: Path) -> Setup:
    s = _pair(tmp)
    write_image(s.mask, np.zeros((64, 80), np.uint8))
    return s


def full_mask(tmp: Path) -> Setup:
    s = _pair(tmp)
    write_image(s.mask, np.full((64, 80), 255, np.uint8))
    return s


def over_max_pixels(tmp: Path) -> Setup:
    s = _pair(tmp)
    s.extra = ("--max-pixels", 1000)
    return s


def unsupported_output_suffix(tmp: Path) -> Setup:
    s = _pair(tmp)
    s.out = tmp / "out" / "r.txt"
    return s


def output_is_the_composite(tmp: Path) -> Setup:
    s = _pair(tmp)
    s.out = s.composite
    return s


def output_already_there(tmp: Path) -> Setup:
    s = _pair(tmp)
    write_image(s.out, np.zeros((4, 4, 3), np.uint8))
    return s


def size_far_above_the_image(tmp: Path) -> Setup:
    s = _pair(tmp)
    s.extra = ("--size", 100_000)
    return s


def label_mask(tmp: Path) -> Setup:
    s = _pair(tmp)
    write_image(s.mask, (s.mask_pixels > 0).astype(np.uint8))
    return s


def thin_strip(tmp: Path) -> Setup:
    s = _pair(tmp, 5000, 20)
    return s


def tiny_image(tmp: Path) -> Setup:
    s = _pair(tmp, 5, 7)
    mask = np.zeros((5, 7), np.uint8)
    mask[1:4, 2:5] = 255
    write_image(s.mask, mask)
    s.mask_pixels = mask
    return s


def undecodable_existing_output(tmp: Path) -> Setup:
    s = _pair(tmp)
    s.out.parent.mkdir(parents=True)
    s.out.write_bytes(b"\x89PNG\r\n\x1a\n")  # a header, then nothing
    s.extra = ("--skip-existing",)
    return s


@dataclass(frozen=True)
class Case:
    make: Callable[[Path], Setup]
    code: int
    says: str  # what the one line about the input must say ("" for a clean success)
    culprit: str = "composite"  # the file the line starts with: composite, mask, out, error


FAILS = 1
USAGE = 2
WORKS = 0

CASES = [
    Case(not_an_image, FAILS, "not an image file"),
    Case(empty_file, FAILS, "not an image file (the file is empty)"),
    Case(truncated, FAILS, "truncated or corrupt image"),
    Case(folder_as_composite, FAILS, "is a folder, not an image file"),
    Case(missing_composite, FAILS, "no such file"),
    Case(mask_of_another_size, FAILS, "mask is 40x32 but the composite is 80x64", "mask"),
    Case(mask_of_the_unrotated_photo, FAILS, "EXIF orientation 8", "mask"),
    Case(empty_mask, FAILS, "mask is empty", "mask"),
    Case(full_mask, FAILS, "covers the whole image"),
    Case(over_max_pixels, FAILS, "over the limit of 1000"),
    Case(unsupported_output_suffix, USAGE, "unsupported output format '.txt'", "error"),
    Case(output_is_the_composite, USAGE, "is the composite itself", "error"),
    Case(output_already_there, FAILS, "output exists", "out"),
    Case(size_far_above_the_image, WORKS, ""),
    Case(label_mask, WORKS, ""),
    Case(thin_strip, WORKS, ""),
    Case(tiny_image, WORKS, ""),
    Case(undecodable_existing_output, WORKS, "existing output does not decode", "note"),
]


def _temporaries(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.name.startswith(".") and p.name != OUTPUT_MARKER]


@pytest.mark.parametrize("case", CASES, ids=[c.make.__name__ for c in CASES])
def test_hostile_input(case: Case, tmp_path: Path, tiny_model: Path) -> None:
    setup = case.make(tmp_path)
    before = setup.out.read_bytes() if setup.out.is_file() else None
    args = ["harmonize", setup.composite, "--mask", setup.mask, "-o", setup.out,
            "--model", tiny_model, "--device", "cpu", *setup.extra]  # fmt: skip
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == case.code, result.output
    assert "Traceback" not in result.output

    if case.says:
        lines = [line for line in result.stderr.splitlines() if case.says in line]
        assert len(lines) == 1, result.stderr
        start = {
            "composite": f"{setup.composite}: ",
            "mask": f"{setup.mask}: ",
            "out": f"{setup.out}: ",
            "error": "error: ",
            "note": f"note: {setup.out}: ",
        }[case.culprit]
        assert lines[0].startswith(start), lines[0]

    assert _temporaries(setup.out.parent) == []  # never a partial file
    if case.code == WORKS:
        result_pixels = read_image(setup.out)
        composite, mask = setup.composite_pixels, setup.mask_pixels
        assert result_pixels.shape == composite.shape
        assert np.array_equal(result_pixels[mask == 0], composite[mask == 0])
        change = np.abs(result_pixels.astype(np.int16) - composite.astype(np.int16))
        assert change[mask > 0].mean() > 2.0  # really harmonized, not a 1/255 blend
    elif before is not None:
        assert setup.out.read_bytes() == before  # an existing output is left alone
    elif setup.out != setup.composite:
        assert not setup.out.exists()
