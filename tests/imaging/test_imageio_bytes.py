"""The in-memory readers (uploads to a server) follow the file readers' rules exactly."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dkt.errors import ImageInputError, ImageTooLargeError, MaskSizeError
from dkt.imaging import imageio
from dkt.imaging.imageio import (
    encode_image,
    read_alpha_composite,
    read_alpha_composite_bytes,
    read_image,
    read_image_bytes,
    read_mask,
    read_mask_bytes,
)


def _saved(img: Image.Image, path: Path, **options: object) -> tuple[Path, bytes]:
    img.save(path, **options)
    return path, path.read_bytes()


def _landscape() -> Image.Image:
    pixels = np.zeros((4, 6, 3), np.uint8)
    pixels[:, :3] = (250, 0, 0)
    pixels[:, 3:] = (0, 0, 250)
    return Image.fromarray(pixels)


def test_an_exif_rotated_photo_comes_upright_as_from_a_file(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    path, data = _saved(_landscape(), tmp_path / "phone.jpg", exif=exif, quality=95)
    from_bytes = read_image_bytes(data, "painting")
    assert from_bytes.shape == (6, 4, 3)
    np.testing.assert_array_equal(from_bytes, read_image(path))


@pytest.mark.parametrize("kind", ["label", "grey", "alpha"])
def test_masks_read_as_from_a_file(tmp_path: Path, kind: str) -> None:
    values = np.zeros((5, 7), np.uint8)
    values[1:4, 2:6] = 1 if kind == "label" else 200
    if kind == "alpha":
        rgba = np.zeros((5, 7, 4), np.uint8)
        rgba[..., 3] = values
        img = Image.fromarray(rgba, "RGBA")
    else:
        img = Image.fromarray(values, "L")
    path, data = _saved(img, tmp_path / "mask.png")
    mask = read_mask_bytes(data, "mask", expected_hw=(5, 7))
    np.testing.assert_array_equal(mask, read_mask(path))
    assert mask.max() == (1.0 if kind == "label" else 200 / 255)


def test_an_rgba_composite_splits_as_from_a_file(tmp_path: Path) -> None:
    rgba = np.random.default_rng(0).integers(0, 256, (6, 8, 4), dtype=np.uint8)
    path, data = _saved(Image.fromarray(rgba, "RGBA"), tmp_path / "c.png")
    for got, want in zip(read_alpha_composite_bytes(data), read_alpha_composite(path), strict=True):
        np.testing.assert_array_equal(got, want)
    flat = io.BytesIO()
    Image.fromarray(rgba[..., :3]).save(flat, "PNG")
    with pytest.raises(ImageInputError, match=r"^composite: has no alpha.*; send a mask$"):
        read_alpha_composite_bytes(flat.getvalue(), "composite", hint="; send a mask")


def test_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError, match=r"^cutout: not an image file"):
        read_image_bytes(b"GIF? no", "cutout")
    with pytest.raises(ImageInputError, match=r"^painting: not an image file \(the file is empty"):
        read_image_bytes(b"", "painting")
    _, data = _saved(Image.new("L", (3, 2)), tmp_path / "m.png")
    with pytest.raises(MaskSizeError, match=r"^mask: mask is 3x2 but the composite is 4x4"):
        read_mask_bytes(data, "mask", expected_hw=(4, 4))


def test_the_pixel_limit_is_checked_from_the_header_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, data = _saved(Image.new("RGB", (40, 30)), tmp_path / "p.png")

    def no_decoding(path, img):
        raise AssertionError("decoded an image over the pixel limit")

    monkeypatch.setattr(imageio, "_decode", no_decoding)
    with pytest.raises(ImageTooLargeError, match="40x30 = 1200 pixels, over the limit of 1000"):
        read_image_bytes(data, "painting", max_pixels=1000)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_encode_image_is_lossless_where_the_format_can_be(fmt: str) -> None:
    image = np.random.default_rng(1).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    data = encode_image(image, fmt)
    assert Image.open(io.BytesIO(data)).format == fmt
    np.testing.assert_array_equal(read_image_bytes(data), image)
