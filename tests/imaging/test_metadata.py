"""A result carries its composite's colour profile, DPI and EXIF (issue 26 item 4).

Each composite is stored turned (EXIF orientation 6) with DPI 300 x 150 for its stored
pixels, so a result must say orientation 1 and 150 x 300: its pixels are upright.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dkt.imaging.imageio import (
    encode_image,
    read_image,
    read_metadata,
    read_metadata_bytes,
    write_image,
)
from dkt.imaging.metadata import ImageMeta
from tests.imaging.meta_files import (
    DATE_TAKEN,
    EXIF_IFD,
    MAKE,
    ORIENTATION,
    metadata_of,
    save_with_meta,
    wide_gamut_profile,
)

UPRIGHT_DPI = (150.0, 300.0)  # the stored 300 x 150, turned with the pixels
SOURCES = [".png", ".jpg", ".tif", ".webp"]
#: What each output format holds: profile, DPI, EXIF main tags, EXIF sub-IFD (date taken).
HOLDS = {
    ".png": (True, True, True, True),
    ".jpg": (True, True, True, True),
    ".webp": (True, False, True, True),
    ".tif": (True, True, True, False),
    ".bmp": (False, True, False, False),
}


def pixels(height: int = 12, width: int = 16) -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (height, width, 3), np.uint8)


def check_kept(written: Path | bytes, holds: tuple[bool, bool, bool, bool], dpi=UPRIGHT_DPI):
    icc_kept, dpi_kept, exif_kept, sub_ifd_kept = holds
    icc, got_dpi, exif = metadata_of(written)
    assert (icc == wide_gamut_profile()) is icc_kept
    if dpi_kept:
        assert got_dpi == pytest.approx(dpi, rel=1e-3)  # PNG and BMP store dots a metre
    if exif_kept:
        assert exif[ORIENTATION] == 1  # the pixels are upright: a viewer must not turn them
        assert exif[MAKE] == "dkt test camera"
    if sub_ifd_kept:
        assert exif.get_ifd(EXIF_IFD)[DATE_TAKEN] == "2024:05:06 07:08:09"


@pytest.mark.parametrize("out", sorted(HOLDS))
@pytest.mark.parametrize("source", SOURCES)
def test_every_output_format_keeps_what_it_can_hold(source: str, out: str, tmp_path: Path) -> None:
    composite = save_with_meta(tmp_path / f"c{source}", pixels())
    image = read_image(composite)
    expected_dpi = UPRIGHT_DPI if source != ".webp" else None  # WebP stores no DPI
    holds = HOLDS[out] if expected_dpi else (*HOLDS[out][:1], False, *HOLDS[out][2:])
    write_image(tmp_path / f"r{out}", image, meta=read_metadata(composite))
    check_kept(tmp_path / f"r{out}", holds, expected_dpi)


@pytest.mark.parametrize("out", [".png", ".tif"])
def test_a_16_bit_result_keeps_them_and_its_16_bits(out: str, tmp_path: Path) -> None:
    composite = save_with_meta(tmp_path / "c.png", pixels())
    wide = read_image(composite).astype(np.uint16) * 257 + 3
    write_image(tmp_path / f"r{out}", wide, meta=read_metadata(composite))
    # tifffile writes the EXIF's text tags, not its orientation (a TIFF without one is upright)
    icc, dpi, exif = metadata_of(tmp_path / f"r{out}")
    assert icc == wide_gamut_profile()
    assert dpi == pytest.approx(UPRIGHT_DPI, rel=1e-3)
    assert exif[MAKE] == "dkt test camera"
    assert exif.get(ORIENTATION, 1) == 1
    assert np.array_equal(read_image(tmp_path / f"r{out}", keep_depth=True), wide)


def test_the_server_encoding_keeps_them_too(tmp_path: Path) -> None:
    composite = save_with_meta(tmp_path / "c.jpg", pixels())
    meta = read_metadata_bytes(composite.read_bytes())
    assert meta == read_metadata(composite)
    for fmt, out in (("PNG", ".png"), ("JPEG", ".jpg"), ("WEBP", ".webp")):
        check_kept(encode_image(read_image(composite), fmt, meta=meta), HOLDS[out])


def test_a_cmyk_profile_is_not_given_to_rgb_pixels(tmp_path: Path) -> None:
    """dkt writes RGB: a CMYK composite's profile would say its numbers are ink."""
    cmyk_profile = bytearray(wide_gamut_profile())
    cmyk_profile[16:20] = b"CMYK"
    path = tmp_path / "c.jpg"
    Image.new("CMYK", (8, 6), (10, 20, 30, 0)).save(path, icc_profile=bytes(cmyk_profile))
    write_image(tmp_path / "r.png", read_image(path), meta=read_metadata(path))
    assert metadata_of(tmp_path / "r.png")[0] is None


def test_an_exif_too_long_for_jpeg_is_left_out_not_fatal(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[MAKE] = "x" * 70_000  # fine in a PNG, over JPEG's one 64 KB marker
    path = tmp_path / "c.png"
    Image.fromarray(pixels()).save(path, exif=exif.tobytes())
    write_image(tmp_path / "r.jpg", read_image(path), meta=read_metadata(path))
    assert metadata_of(tmp_path / "r.jpg")[2].get(MAKE) is None
    write_image(tmp_path / "r.png", read_image(path), meta=read_metadata(path))
    assert metadata_of(tmp_path / "r.png")[2][MAKE] == "x" * 70_000


def test_an_unreadable_file_has_no_metadata_and_no_error(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("not a picture")
    assert read_metadata(tmp_path / "notes.png") == ImageMeta()
    assert read_metadata(tmp_path / "missing.png").empty
    assert read_metadata_bytes(b"junk").empty
