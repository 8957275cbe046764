"""16-bit colour images (issue 12 item 4): read at full depth, written back at full depth.

The 16-bit files here are made with pypng and tifffile, the libraries dkt reads them with;
Pillow, which keeps only the high byte of a 16-bit colour sample, is the independent check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import png
import pytest
import tifffile
from PIL import Image

from dkt.imaging.imageio import read_image, write_image


def save_png16(path: Path, image: np.ndarray, **options: object) -> Path:
    """A 16-bit RGB (H, W, 3), RGBA (H, W, 4) or grey + alpha (H, W, 2) PNG, by pypng."""
    height, width, channels = image.shape
    writer = png.Writer(width, height, greyscale=channels <= 2, alpha=channels in (2, 4),
                        bitdepth=16, **options)  # fmt: skip
    with open(path, "wb") as fh:
        writer.write(fh, image.reshape(height, width * channels))
    return path


def wide_image(height: int = 7, width: int = 9, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Random 16-bit samples: every low byte matters, so an 8-bit read cannot pass."""
    return np.random.default_rng(seed).integers(0, 65536, (height, width, channels), np.uint16)


def high_bytes(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


@pytest.mark.parametrize("interlace", [False, True])
def test_a_16_bit_colour_png_keeps_all_its_bits(tmp_path: Path, interlace: bool) -> None:
    image = wide_image()
    path = save_png16(tmp_path / "wide.png", image, interlace=interlace)
    read = read_image(path, keep_depth=True)
    assert read.dtype == np.uint16 and np.array_equal(read, image)
    assert np.array_equal(read >> 8, high_bytes(path))
    assert np.array_equal(read_image(path), high_bytes(path))  # without keep_depth: 8 bits


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"compression": "zlib"},
        {"compression": "zlib", "predictor": True},
        {"compression": "lzma"},
        {"planarconfig": "separate"},
        {"tile": (16, 16), "compression": "zlib"},
    ],
    ids=["none", "deflate", "deflate-predictor", "lzma", "planar", "tiled"],
)
def test_a_16_bit_colour_tiff_keeps_all_its_bits(tmp_path: Path, options: dict) -> None:
    image = wide_image(20, 18)
    path = tmp_path / "wide.tif"
    data = np.moveaxis(image, 2, 0) if options.get("planarconfig") == "separate" else image
    tifffile.imwrite(path, data, photometric="rgb", **options)
    read = read_image(path, keep_depth=True)
    assert read.dtype == np.uint16 and np.array_equal(read, image)
    assert np.array_equal(read_image(path), high_bytes(path))


def test_rgba16_is_composited_over_white_at_16_bits(tmp_path: Path) -> None:
    image = wide_image(channels=4)
    image[0, 0, 3], image[0, 1, 3] = 0, 65535
    for path in (save_png16(tmp_path / "a.png", image), tmp_path / "a.tif"):
        if path.suffix == ".tif":
            tifffile.imwrite(path, image, photometric="rgb", extrasamples=["unassalpha"])
        read = read_image(path, keep_depth=True)
        assert read.shape == (7, 9, 3) and read.dtype == np.uint16
        assert (read[0, 0] == 65535).all()
        assert np.array_equal(read[0, 1], image[0, 1, :3])


def test_grey_with_alpha_and_a_transparent_colour_are_read_at_16_bits(tmp_path: Path) -> None:
    grey = wide_image(channels=2)
    grey[0, 0, 1], grey[0, 1, 1] = 0, 65535
    read = read_image(save_png16(tmp_path / "la.png", grey), keep_depth=True)
    assert read.dtype == np.uint16 and (read[0, 0] == 65535).all()
    assert np.array_equal(read[0, 1], np.repeat(grey[0, 1, 0], 3))

    image = wide_image()
    key = tuple(int(v) for v in image[2, 3])
    path = save_png16(tmp_path / "trns.png", image, transparent=key)
    read = read_image(path, keep_depth=True)
    assert (read[2, 3] == 65535).all()  # the tRNS colour is transparent: white
    keyed = (image == np.asarray(key, np.uint16)).all(axis=2)
    assert np.array_equal(read[~keyed], image[~keyed])


def test_what_is_not_read_at_16_bits_is_read_as_pillow_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = wide_image(channels=4)
    premultiplied = tmp_path / "premultiplied.tif"
    tifffile.imwrite(premultiplied, image, photometric="rgb", extrasamples=["assocalpha"])
    read = read_image(premultiplied, keep_depth=True)
    assert read.dtype == np.uint8 and np.array_equal(read, read_image(premultiplied))

    # A compression tifffile cannot undo without imagecodecs (LZW, JPEG, ...) raises this:
    path = tmp_path / "wide.tif"
    tifffile.imwrite(path, image[:, :, :3], photometric="rgb", compression="zlib")

    def needs_imagecodecs(*args: object, **kwargs: object) -> None:
        raise ValueError("<COMPRESSION.LZW: 5> requires the 'imagecodecs' package")

    monkeypatch.setattr(tifffile.TiffPage, "asarray", needs_imagecodecs)
    read = read_image(path, keep_depth=True)
    assert read.dtype == np.uint8 and np.array_equal(read, high_bytes(path))


@pytest.mark.parametrize("suffix", [".png", ".tif", ".bmp", ".jpg"])
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L"])
def test_8_bit_inputs_are_unchanged_by_keep_depth(tmp_path: Path, mode: str, suffix: str) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (6, 8, 3), np.uint8)
    img = Image.fromarray(pixels).convert(mode)
    if suffix in (".bmp", ".jpg") and mode in ("RGBA", "P"):
        img = img.convert("RGB")
    img.save(tmp_path / f"in{suffix}")
    read = read_image(tmp_path / f"in{suffix}", keep_depth=True)
    assert read.dtype == np.uint8 and np.array_equal(read, read_image(tmp_path / f"in{suffix}"))


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_colour_output_round_trips_exactly(tmp_path: Path, suffix: str) -> None:
    image = wide_image(33, 20)
    path = tmp_path / f"out{suffix}"
    write_image(path, image)
    if suffix == ".png":  # other programs read all 16 bits too
        _, _, rows, info = png.Reader(filename=str(path)).read()
        assert info["bitdepth"] == 16
        assert np.array_equal(np.vstack(list(rows)).reshape(33, 20, 3), image)
    else:
        assert np.array_equal(tifffile.imread(path), image)
    assert high_bytes(path).shape == (33, 20, 3)  # Pillow opens it (at 8 bits)
    assert np.array_equal(high_bytes(path), (image >> 8).astype(np.uint8))
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


def _png_with_orientation(path: Path, image: np.ndarray, orientation: int) -> None:
    """A 16-bit PNG with an eXIf chunk, added with pypng's chunk reader and writer."""
    save_png16(path, image)
    exif = Image.Exif()
    exif[0x0112] = orientation
    chunks = list(png.Reader(filename=str(path)).chunks())
    chunks.insert(1, (b"eXIf", exif.tobytes()[len(b"Exif\0\0") :]))
    with open(path, "wb") as fh:
        png.write_chunks(fh, chunks)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_turns_16_bit_pixels_as_pillow_turns_8_bit_ones(
    tmp_path: Path, orientation: int, suffix: str
) -> None:
    image = wide_image(4, 6)
    path = tmp_path / f"o{suffix}"
    if suffix == ".png":
        _png_with_orientation(path, image, orientation)
    else:
        tifffile.imwrite(path, image, photometric="rgb", extratags=[(274, "H", 1, orientation)])
    upright = read_image(path, keep_depth=True)  # turned by dkt, from the raw 16-bit samples
    assert upright.dtype == np.uint16
    assert np.array_equal(upright >> 8, read_image(path))  # turned by Pillow, at 8 bits
    assert upright.shape[:2] == ((6, 4) if orientation >= 5 else (4, 6))
