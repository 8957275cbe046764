"""16-bit colour images (issue 12 item 4): read at full depth, written back at full depth.

The PNGs here are made by a reference encoder in this file, one filter type per file, and
Pillow's own decoder (which keeps the high byte of each sample) checks the un-filtering.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dktnet.imageio import read_image, write_image


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def reference_png16(image: np.ndarray, filters: list[int]) -> bytes:
    """A 16-bit RGB(A) PNG with row ``y`` filtered by ``filters[y % len(filters)]``."""
    height, width, channels = image.shape
    bpp = 2 * channels
    raw = image.astype(">u2").view(np.uint8).reshape(height, width * bpp).astype(int)
    out = bytearray()
    for y in range(height):
        kind = filters[y % len(filters)]
        out.append(kind)
        for i in range(width * bpp):
            a = raw[y, i - bpp] if i >= bpp else 0
            b = raw[y - 1, i] if y else 0
            c = raw[y - 1, i - bpp] if y and i >= bpp else 0
            pred = [0, a, b, (a + b) // 2, _paeth(a, b, c)][kind]
            out.append((raw[y, i] - pred) % 256)

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        return struct.pack(">I", len(body)) + kind + body + crc

    colour = 2 if channels == 3 else 6
    header = struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0)
    body = zlib.compress(bytes(out))
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def wide_image(height: int = 7, width: int = 9, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 65536, (height, width, channels), np.uint16)


@pytest.mark.parametrize("filters", [[0], [1], [2], [3], [4], [0, 1, 2, 3, 4]])
def test_every_png_filter_is_undone(tmp_path: Path, filters: list[int]) -> None:
    image = wide_image()
    path = tmp_path / "wide.png"
    path.write_bytes(reference_png16(image, filters))
    read = read_image(path, keep_depth=True)
    assert read.dtype == np.uint16
    assert np.array_equal(read, image)
    assert np.array_equal(read >> 8, np.asarray(Image.open(path)))  # Pillow's high bytes
    assert read_image(path).dtype == np.uint8  # without keep_depth: 8 bits, as before


def test_rgba16_is_composited_over_white_at_16_bits(tmp_path: Path) -> None:
    image = wide_image(channels=4)
    image[0, 0, 3], image[0, 1, 3] = 0, 65535
    path = tmp_path / "alpha.png"
    path.write_bytes(reference_png16(image, [4]))
    read = read_image(path, keep_depth=True)
    assert read.shape == (7, 9, 3) and read.dtype == np.uint16
    assert (read[0, 0] == 65535).all()
    assert np.array_equal(read[0, 1], image[0, 1, :3])


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_colour_round_trips_exactly(tmp_path: Path, suffix: str) -> None:
    image = wide_image(33, 20)
    path = tmp_path / f"out{suffix}"
    write_image(path, image)
    with Image.open(path) as img:  # a valid file other readers open (Pillow: 8 bits)
        assert img.size == (20, 33)
        assert np.array_equal(np.asarray(img), (image >> 8).astype(np.uint8))
    assert np.array_equal(read_image(path, keep_depth=True), image)


def test_16_bit_grey_is_kept(tmp_path: Path) -> None:
    grey = np.random.default_rng(3).integers(0, 65536, (6, 5), np.uint16)
    path = tmp_path / "grey.png"
    Image.fromarray(grey).save(path)
    read = read_image(path, keep_depth=True)
    assert read.dtype == np.uint16 and np.array_equal(read, np.repeat(grey[..., None], 3, 2))


def test_uint16_to_an_8_bit_format_is_rounded(tmp_path: Path) -> None:
    image = wide_image()
    write_image(tmp_path / "out.bmp", image)
    expected = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    assert np.array_equal(read_image(tmp_path / "out.bmp"), expected)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_turns_16_bit_pixels_as_pillow_turns_8_bit_ones(
    tmp_path: Path, orientation: int
) -> None:
    from dktnet.imageio import _orient

    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(image).save(tmp_path / "o.png", exif=exif)
    upright = read_image(tmp_path / "o.png")
    assert np.array_equal(_orient(image, orientation), upright)
