"""Tests for dkt.imaging.imageio: every image is tiny and made on the fly under tmp_path."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, JpegImagePlugin

from dkt.errors import ImageInputError
from dkt.imaging import imageio
from dkt.imaging.imageio import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    read_image,
    read_mask,
    write_image,
)

# ---------------------------------------------------------------------------- helpers


def _save(img: Image.Image, path: Path, **options: object) -> Path:
    img.save(path, **options)
    return path


def _wide(mode: str, values: list[int]) -> Image.Image:
    """A 1-row 16-bit grey image in the given byte order."""
    dtype = ">u2" if mode == "I;16B" else "<u2"
    return Image.frombytes(mode, (len(values), 1), np.array(values, dtype).tobytes())


def _stored(path: Path) -> tuple[str, dict[str, object]]:
    """The mode and info Pillow sees in a saved file (so tests know what they exercise)."""
    with Image.open(path) as img:
        return img.mode, dict(img.info)


def _rgb_row(*pixels: tuple[int, int, int]) -> Image.Image:
    return Image.fromarray(np.array([pixels], dtype=np.uint8))


def _random_rgb(h: int = 8, w: int = 12) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _jpeg_bytes(h: int = 64, w: int = 64) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_random_rgb(h, w)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _reason(excinfo: pytest.ExceptionInfo[ImageInputError]) -> str:
    return excinfo.value.reason


# ------------------------------------------------------------------------ constants


def test_suffixes_and_default_limit() -> None:
    assert {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"} == IMAGE_SUFFIXES
    assert DEFAULT_MAX_PIXELS == 178_956_970


# ------------------------------------------------------------------------ bad input


def test_truncated_jpeg_is_an_error_not_grey_pixels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _jpeg_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    # The cut is in the scan data: Pillow told to tolerate it "succeeds" with grey pixels.
    with monkeypatch.context() as patch, Image.open(path) as img:
        patch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
        img.load()
        assert img.size == (64, 64)

    with pytest.raises(ImageInputError) as excinfo:
        read_image(path)
    assert _reason(excinfo).startswith("truncated or corrupt image (")
    assert str(excinfo.value).startswith(f"{path}: ")
    assert "\n" not in str(excinfo.value)


def test_jpeg_cut_inside_its_header(tmp_path: Path) -> None:
    path = tmp_path / "cut.jpg"
    path.write_bytes(_jpeg_bytes()[:200])
    with pytest.raises(ImageInputError, match="truncated or corrupt image"):
        read_image(path)


def test_truncated_png_is_an_error(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(_random_rgb(32, 32)).save(buf, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageInputError, match="truncated or corrupt image"):
        read_image(path)


def test_truncation_detected_even_if_someone_enabled_load_truncated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _jpeg_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ImageInputError, match="truncated or corrupt image"):
        read_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # their setting is restored


def test_load_truncated_images_is_off_by_default() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(
    "content",
    [b"hello, this is a text file\n", bytes(range(256)) * 4],
    ids=["text", "garbage"],
)
def test_non_image_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageInputError) as excinfo:
        read_image(path)
    assert _reason(excinfo).startswith("not an image file")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageInputError, match="not an image file"):
        read_mask(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.png"
    with pytest.raises(ImageInputError) as excinfo:
        read_image(path)
    assert str(excinfo.value) == f"{path}: no such file"
    with pytest.raises(ImageInputError, match="no such file"):
        read_mask(str(path))


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "looks_like.png"
    folder.mkdir()
    with pytest.raises(ImageInputError, match="is a folder, not an image file"):
        read_image(folder)


def test_unsafe_format_is_not_decoded(tmp_path: Path) -> None:
    # Pillow would hand an EPS file to Ghostscript; we refuse to identify it at all.
    path = tmp_path / "x.png"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
    with pytest.raises(ImageInputError, match="not an image file"):
        read_image(path)


# -------------------------------------------------------------------- bomb guard


def test_bomb_guard_checks_header_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _save(Image.new("RGB", (20, 10)), tmp_path / "big.png")

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    limit_before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageInputError) as excinfo:
        read_image(path, max_pixels=100)
    assert _reason(excinfo) == (
        "image is 20x10 = 200 pixels, over the limit of 100 (decompression-bomb guard)"
    )
    with pytest.raises(ImageInputError, match="decompression-bomb guard"):
        read_mask(path, max_pixels=199)
    assert limit_before == Image.MAX_IMAGE_PIXELS


def _png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size but holds (almost) no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_bomb_guard_default_limit_on_crafted_header(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_claiming(20_000, 20_000))
    with pytest.raises(ImageInputError) as excinfo:
        read_image(path)
    assert _reason(excinfo) == (
        "image is 20000x20000 = 400000000 pixels, over the limit of 178956970 "
        "(decompression-bomb guard)"
    )


def test_bomb_guard_at_exact_limit_passes(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (20, 10)), tmp_path / "ok.png")
    assert read_image(path, max_pixels=200).shape == (10, 20, 3)


def test_pillow_guard_cannot_crash_and_is_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _save(Image.new("RGB", (20, 20)), tmp_path / "img.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # someone set a tiny global
    assert read_image(path, max_pixels=None).shape == (20, 20, 3)
    assert read_image(path).shape == (20, 20, 3)
    with pytest.raises(ImageInputError, match="over the limit of 50"):
        read_image(path, max_pixels=50)
    assert Image.MAX_IMAGE_PIXELS == 10


def test_pillow_bomb_error_while_decoding_becomes_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _save(Image.new("RGB", (4, 4)), tmp_path / "img.png")

    def tile_bomb(self: ImageFile.ImageFile) -> None:
        raise Image.DecompressionBombError("Image size (1 pixels) exceeds limit")

    monkeypatch.setattr(ImageFile.ImageFile, "load", tile_bomb)
    with pytest.raises(ImageInputError, match="decompression-bomb guard"):
        read_image(path)


@pytest.mark.parametrize("bad", [0, -1, True])
def test_max_pixels_must_be_positive(tmp_path: Path, bad: int) -> None:
    path = _save(Image.new("RGB", (2, 2)), tmp_path / "img.png")
    with pytest.raises(ValueError, match="max_pixels"):
        read_image(path, max_pixels=bad)


# ------------------------------------------------------------------ EXIF rotation


def _landscape_red_left_blue_right() -> Image.Image:
    pixels = np.zeros((8, 16, 3), dtype=np.uint8)
    pixels[:, :8] = (255, 0, 0)
    pixels[:, 8:] = (0, 0, 255)
    return Image.fromarray(pixels)


def test_exif_orientation_applied_to_images(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    path = _save(_landscape_red_left_blue_right(), tmp_path / "phone.jpg", exif=exif, quality=95)

    rgb = read_image(path)

    assert rgb.shape == (16, 8, 3)  # H and W swapped
    top, bottom = rgb[:8].reshape(-1, 3).mean(0), rgb[8:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 50  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 50


def test_exif_orientation_applied_to_masks(tmp_path: Path) -> None:
    pixels = np.zeros((2, 4), dtype=np.uint8)
    pixels[:, :2] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(Image.fromarray(pixels), tmp_path / "mask.png", exif=exif)

    mask = read_mask(path, expected_hw=(4, 2))

    np.testing.assert_array_equal(mask, [[1, 1], [1, 1], [0, 0], [0, 0]])


def test_corrupt_exif_is_ignored(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (4, 2), "red"), tmp_path / "x.png", exif=b"Exif\x00\x00junk")
    assert read_image(path).shape == (2, 4, 3)


# --------------------------------------------------------------- image modes


def _check_rgb(path: Path, expected: list[list[int]], atol: int = 0) -> None:
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert rgb.flags.writeable and rgb.flags.c_contiguous
    np.testing.assert_allclose(rgb[0].astype(int), expected, atol=atol)


def test_mode_rgb(tmp_path: Path) -> None:
    path = _save(_rgb_row((1, 2, 3), (250, 128, 0)), tmp_path / "rgb.png")
    _check_rgb(path, [[1, 2, 3], [250, 128, 0]])


def test_mode_l_is_replicated_grey(tmp_path: Path) -> None:
    grey = Image.fromarray(np.array([[0, 128, 255]], dtype=np.uint8))
    assert grey.mode == "L"
    path = _save(grey, tmp_path / "l.png")
    _check_rgb(path, [[0, 0, 0], [128, 128, 128], [255, 255, 255]])


def test_mode_1_is_black_and_white(tmp_path: Path) -> None:
    bits = Image.new("1", (2, 1))
    bits.putpixel((1, 0), 1)
    path = _save(bits, tmp_path / "bits.png")
    assert _stored(path)[0] == "1"
    _check_rgb(path, [[0, 0, 0], [255, 255, 255]])


def _palette_image(transparency: int | None = None) -> Image.Image:
    img = Image.new("P", (3, 1))
    img.putpalette([255, 0, 0, 0, 0, 255, 128, 128, 128])
    img.putdata([0, 1, 2])
    if transparency is not None:
        img.info["transparency"] = transparency
    return img


def test_mode_p(tmp_path: Path) -> None:
    path = _save(_palette_image(), tmp_path / "p.png")
    assert _stored(path)[0] == "P"
    _check_rgb(path, [[255, 0, 0], [0, 0, 255], [128, 128, 128]])


def test_mode_p_with_transparency_goes_on_white(tmp_path: Path) -> None:
    path = _save(_palette_image(), tmp_path / "pt.png", transparency=0)
    assert "transparency" in _stored(path)[1]
    _check_rgb(path, [[255, 255, 255], [0, 0, 255], [128, 128, 128]])


def test_mode_rgba_composited_over_white(tmp_path: Path) -> None:
    rgba = np.array([[[255, 0, 0, 255], [255, 0, 0, 0], [0, 0, 0, 128]]], dtype=np.uint8)
    path = _save(Image.fromarray(rgba), tmp_path / "rgba.png")
    _check_rgb(path, [[255, 0, 0], [255, 255, 255], [127, 127, 127]])


def test_mode_la_composited_over_white(tmp_path: Path) -> None:
    la = Image.fromarray(np.array([[[100, 255], [0, 0]]], dtype=np.uint8), "LA")
    path = _save(la, tmp_path / "la.png")
    assert _stored(path)[0] == "LA"
    _check_rgb(path, [[100, 100, 100], [255, 255, 255]])


@pytest.mark.parametrize("suffix", [".tif", ".jpg"])
def test_mode_cmyk(tmp_path: Path, suffix: str) -> None:
    cmyk = Image.frombytes("CMYK", (3, 1), bytes([0, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 0]))
    path = _save(cmyk, tmp_path / f"cmyk{suffix}", **({"quality": 100} if suffix == ".jpg" else {}))
    assert _stored(path)[0] == "CMYK"
    _check_rgb(path, [[255, 255, 255], [0, 0, 0], [0, 255, 255]], atol=3)


@pytest.mark.parametrize(("mode", "suffix"), [("I;16", ".png"), ("I;16B", ".tif")])
def test_mode_16_bit_grey_is_scaled_not_clipped(tmp_path: Path, mode: str, suffix: str) -> None:
    path = _save(_wide(mode, [0, 257, 32768, 65535]), tmp_path / f"wide{suffix}")
    assert _stored(path)[0] == mode
    _check_rgb(path, [[v] * 3 for v in (0, 1, 128, 255)])


def test_mode_i_32_bit(tmp_path: Path) -> None:
    values = np.array([[-5, 0, 32768, 65535, 70000]], dtype=np.int32)
    path = _save(Image.fromarray(values), tmp_path / "i.tif")
    assert _stored(path)[0] == "I"
    _check_rgb(path, [[v] * 3 for v in (0, 0, 128, 255, 255)])


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0.0, 0.25, 1.0], [0, 64, 255]), ([0.0, 100.0, 255.0], [0, 100, 255])],
    ids=["unit-range", "byte-range"],
)
def test_mode_f_float(tmp_path: Path, values: list[float], expected: list[int]) -> None:
    path = _save(Image.fromarray(np.array([values], dtype=np.float32)), tmp_path / "f.tif")
    assert _stored(path)[0] == "F"
    _check_rgb(path, [[v] * 3 for v in expected])


@pytest.mark.parametrize("mode", ["YCbCr", "LAB"])
def test_mode_colour_spaces_from_tiff(tmp_path: Path, mode: str) -> None:
    source = _rgb_row((255, 0, 0), (0, 0, 255), (128, 128, 128))
    path = _save(source.convert(mode), tmp_path / f"{mode}.tif")
    assert _stored(path)[0] == mode
    _check_rgb(path, [[255, 0, 0], [0, 0, 255], [128, 128, 128]], atol=25)


def test_mode_hsv(tmp_path: Path) -> None:
    # No file format stores HSV, so go through the converter directly.
    hsv = _rgb_row((255, 0, 0), (0, 0, 255)).convert("HSV")
    rgb = imageio._to_rgb(hsv, tmp_path / "x")
    np.testing.assert_array_equal(rgb[0], [[255, 0, 0], [0, 0, 255]])


def test_unsupported_mode_names_it(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError, match="unsupported image mode 'La'"):
        imageio._to_rgb(Image.new("La", (2, 2)), tmp_path / "x.png")
    with pytest.raises(ImageInputError, match="unsupported mask mode 'La'"):
        imageio._to_mask(Image.new("La", (2, 2)), tmp_path / "x.png")


def test_webp_and_bmp_inputs(tmp_path: Path) -> None:
    pixels = _random_rgb()
    bmp = _save(Image.fromarray(pixels), tmp_path / "x.bmp")
    np.testing.assert_array_equal(read_image(bmp), pixels)
    webp = _save(Image.fromarray(pixels), tmp_path / "x.webp", lossless=True)
    np.testing.assert_array_equal(read_image(webp), pixels)


def test_content_not_suffix_decides_the_format(tmp_path: Path) -> None:
    pixels = _random_rgb()
    path = _save(Image.fromarray(pixels), tmp_path / "really_a_png.jpg", format="PNG")
    np.testing.assert_array_equal(read_image(path), pixels)


# ------------------------------------------------------------------------ masks


def _check_mask(path: Path, expected: list[float], **kwargs: object) -> None:
    mask = read_mask(path, **kwargs)
    assert mask.dtype == np.float32 and mask.ndim == 2
    assert mask.min() >= 0.0 and mask.max() <= 1.0
    np.testing.assert_allclose(mask[0], expected, atol=1e-6)


def test_mask_l_stays_soft(tmp_path: Path) -> None:
    path = _save(Image.fromarray(np.array([[0, 128, 255]], dtype=np.uint8)), tmp_path / "m.png")
    _check_mask(path, [0.0, 128 / 255, 1.0])
    assert abs(read_mask(path)[0, 1] - 0.502) < 1e-3


def test_mask_mode_1(tmp_path: Path) -> None:
    bits = Image.new("1", (2, 1))
    bits.putpixel((0, 0), 1)
    mask = read_mask(_save(bits, tmp_path / "m.png"))
    np.testing.assert_array_equal(mask, [[1.0, 0.0]])


@pytest.mark.parametrize(("mode", "suffix"), [("I;16", ".png"), ("I;16B", ".tif")])
def test_mask_16_bit(tmp_path: Path, mode: str, suffix: str) -> None:
    path = _save(_wide(mode, [0, 32768, 65535]), tmp_path / f"m{suffix}")
    _check_mask(path, [0.0, 32768 / 65535, 1.0])


def test_mask_float(tmp_path: Path) -> None:
    values = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    _check_mask(_save(Image.fromarray(values), tmp_path / "m.tif"), [0.0, 0.5, 1.0])


def test_mask_rgb_uses_luminance(tmp_path: Path) -> None:
    path = _save(_rgb_row((0, 0, 0), (128, 128, 128), (255, 255, 255)), tmp_path / "m.png")
    _check_mask(path, [0.0, 128 / 255, 1.0])


def test_mask_rgba_uses_alpha_when_it_varies(tmp_path: Path) -> None:
    rgba = np.array([[[0, 0, 0, 0], [0, 0, 0, 128], [0, 0, 0, 255]]], dtype=np.uint8)
    path = _save(Image.fromarray(rgba), tmp_path / "cutout.png")
    _check_mask(path, [0.0, 128 / 255, 1.0])


def test_mask_rgba_with_constant_alpha_uses_luminance(tmp_path: Path) -> None:
    rgba = np.array([[[0, 0, 0, 255], [128, 128, 128, 255], [255, 255, 255, 255]]], np.uint8)
    path = _save(Image.fromarray(rgba), tmp_path / "opaque.png")
    _check_mask(path, [0.0, 128 / 255, 1.0])


def test_mask_la_uses_alpha_when_it_varies(tmp_path: Path) -> None:
    la = Image.fromarray(np.array([[[255, 0], [255, 255]]], dtype=np.uint8), "LA")
    _check_mask(_save(la, tmp_path / "m.png"), [0.0, 1.0])


def test_mask_palette_goes_through_grey(tmp_path: Path) -> None:
    img = Image.new("P", (3, 1))
    img.putpalette([0, 0, 0, 128, 128, 128, 255, 255, 255])
    img.putdata([0, 1, 2])
    _check_mask(_save(img, tmp_path / "m.png"), [0.0, 128 / 255, 1.0])


def test_mask_size_mismatch_message(tmp_path: Path) -> None:
    path = _save(Image.new("L", (30, 20)), tmp_path / "m.png")
    with pytest.raises(ImageInputError) as excinfo:
        read_mask(path, expected_hw=(20, 40))
    assert str(excinfo.value) == f"{path}: mask is 30x20 but the composite is 40x20"
    assert read_mask(path, expected_hw=(20, 30)).shape == (20, 30)


# ---------------------------------------------------------------------- writing


def test_png_round_trip_is_bit_exact(tmp_path: Path) -> None:
    pixels = _random_rgb()
    path = tmp_path / "out.png"
    write_image(path, pixels)
    np.testing.assert_array_equal(read_image(path), pixels)


def test_grey_write_round_trip(tmp_path: Path) -> None:
    grey = _random_rgb()[:, :, 0]
    path = tmp_path / "grey.png"
    write_image(path, grey)
    assert _stored(path)[0] == "L"
    np.testing.assert_array_equal(read_mask(path), grey / np.float32(255))


@pytest.mark.parametrize(
    ("suffix", "pil_format"),
    [
        (".png", "PNG"),
        (".jpg", "JPEG"),
        (".jpeg", "JPEG"),
        (".JPG", "JPEG"),
        (".bmp", "BMP"),
        (".tif", "TIFF"),
        (".tiff", "TIFF"),
        (".webp", "WEBP"),
    ],
)
def test_suffix_decides_format(tmp_path: Path, suffix: str, pil_format: str) -> None:
    pixels = _random_rgb()
    path = tmp_path / f"out{suffix}"
    write_image(path, pixels)
    with Image.open(path) as img:
        assert img.format == pil_format
    if pil_format in ("PNG", "BMP", "TIFF"):
        np.testing.assert_array_equal(read_image(path), pixels)


def test_webp_quality_100_is_lossless(tmp_path: Path) -> None:
    pixels = _random_rgb()
    path = tmp_path / "out.webp"
    write_image(path, pixels, quality=100)
    np.testing.assert_array_equal(read_image(path), pixels)


def test_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "out.xyz"
    with pytest.raises(ImageInputError) as excinfo:
        write_image(path, _random_rgb())
    assert _reason(excinfo).startswith("unsupported output format '.xyz' (use one of ")
    assert ".png" in _reason(excinfo)
    assert not path.exists()
    with pytest.raises(ImageInputError, match="unsupported output format"):
        write_image(tmp_path / "no_suffix", _random_rgb())


def test_jpeg_uses_quality_and_full_chroma(tmp_path: Path) -> None:
    pixels = _random_rgb(32, 32)
    high, low = tmp_path / "high.jpg", tmp_path / "low.jpg"
    write_image(high, pixels, quality=95)
    write_image(low, pixels, quality=10)
    assert high.stat().st_size > low.stat().st_size
    with Image.open(high) as img:
        assert JpegImagePlugin.get_sampling(img) == 0  # 4:4:4


@pytest.mark.parametrize("dtype", [np.float32, np.int64, bool])  # uint16: tests/dktnet/test_wide_io
def test_write_rejects_non_uint8(tmp_path: Path, dtype: type) -> None:
    with pytest.raises(ValueError, match="uint8"):
        write_image(tmp_path / "out.png", np.zeros((4, 4, 3), dtype=dtype))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("shape", [(4, 4, 4), (4, 4, 1), (4,), (0, 4, 3)])
def test_write_rejects_bad_shapes(tmp_path: Path, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        write_image(tmp_path / "out.png", np.zeros(shape, dtype=np.uint8))


@pytest.mark.parametrize("quality", [0, 101])
def test_write_rejects_bad_quality(tmp_path: Path, quality: int) -> None:
    with pytest.raises(ValueError, match="quality"):
        write_image(tmp_path / "out.jpg", _random_rgb(), quality=quality)


def test_write_creates_parent_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "out.png"
    write_image(str(path), _random_rgb())
    assert path.is_file()


def test_write_accepts_non_contiguous_arrays(tmp_path: Path) -> None:
    pixels = _random_rgb(8, 24)[:, ::2]
    path = tmp_path / "strided.png"
    write_image(path, pixels)
    np.testing.assert_array_equal(read_image(path), pixels)


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    write_image(path, _random_rgb())
    write_image(path, _random_rgb()[::-1])  # overwrite too
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.png"
    old = _random_rgb()
    write_image(path, old)
    old_bytes = path.read_bytes()

    def crash_midway(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        Path(fp).write_bytes(b"\x89PNG\r\n\x1a\n partial")  # type: ignore[arg-type]
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        write_image(path, np.zeros_like(old))

    assert path.read_bytes() == old_bytes
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


# ------------------------------------------------------------------- alpha composites


def test_alpha_composite_keeps_the_colours_under_transparency(tmp_path: Path) -> None:
    """``--mask alpha``: the painting under alpha 0 must not be flattened onto white."""
    from dkt.imaging.imageio import read_alpha_composite

    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[2:4, 2:5, 3] = 255
    rgba[1, 1, 3] = 51
    Image.fromarray(rgba, "RGBA").save(tmp_path / "c.png")
    rgb, alpha = read_alpha_composite(tmp_path / "c.png")
    assert rgb.dtype == np.uint8 and (rgb == (10, 20, 30)).all()
    assert alpha.dtype == np.float32 and alpha.sum() == pytest.approx(6 + 0.2)


@pytest.mark.parametrize(
    ("mode", "alpha", "message"),
    [("RGB", None, "has no alpha channel"), ("RGBA", 255, "fully opaque"),
     ("RGBA", 0, "fully transparent")],
)  # fmt: skip
def test_alpha_composite_without_a_usable_alpha_is_named(
    tmp_path: Path, mode: str, alpha: int | None, message: str
) -> None:
    from dkt.imaging.imageio import read_alpha_composite

    pixels = np.full((4, 4, 3 if alpha is None else 4), 90, np.uint8)
    if alpha is not None:
        pixels[..., 3] = alpha
    Image.fromarray(pixels, mode).save(tmp_path / "c.png")
    with pytest.raises(ImageInputError, match=rf"c\.png: .*{message}"):
        read_alpha_composite(tmp_path / "c.png")


# ------------------------------------------------ issue 26: integer masks, frames, TIFFs


def _tiff(path: Path, values: np.ndarray, **options: object) -> Path:
    import tifffile

    tifffile.imwrite(path, values, **options)
    return path


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint16, np.uint32])
def test_integer_mask_file_of_0_and_255_is_8_bit(tmp_path: Path, dtype: type) -> None:
    """A 0/255 mask stored as 16/32-bit integers was divided by 65535: the object stayed."""
    path = _tiff(tmp_path / "m.tif", np.array([[0, 128, 255]], dtype))
    _check_mask(path, [0.0, 128 / 255, 1.0])
    mask = imageio.read_mask_bytes(path.read_bytes(), "mask")
    np.testing.assert_allclose(mask[0], [0.0, 128 / 255, 1.0], atol=1e-6)


def test_sixteen_bit_png_mask_of_0_and_255_is_8_bit(tmp_path: Path) -> None:
    path = _save(Image.fromarray(np.array([[0, 255]], np.uint16)), tmp_path / "m.png")
    assert _stored(path)[0].startswith("I")
    _check_mask(path, [0.0, 1.0])


@pytest.mark.parametrize(
    ("values", "message"),
    [([0, 70000], "mask values run up to 70000"), ([0, 1000], "mask values run up to 1000"),
     ([-1, 255], "mask has negative values (down to -1)")],
)  # fmt: skip
def test_integer_mask_outside_the_rule_is_refused(
    tmp_path: Path, values: list[int], message: str
) -> None:
    path = _tiff(tmp_path / "m.tif", np.array([values], np.int32))
    with pytest.raises(ImageInputError) as info:
        read_mask(path)
    assert str(info.value).startswith(f"{path}: {message}: an integer mask holds 0/1 labels")


def test_in_memory_pil_mask_follows_the_same_rule() -> None:
    from dkt.errors import InputError

    mask = imageio.image_to_mask(Image.fromarray(np.array([[0, 255]], np.int32)))
    np.testing.assert_array_equal(mask, [[0.0, 1.0]])
    with pytest.raises(InputError, match=r"^mask values run up to 300"):
        imageio.image_to_mask(Image.fromarray(np.array([[0, 300]], np.int32)))


def _frames(count: int) -> list[Image.Image]:
    return [Image.new("RGB", (10, 8), (40 * i, 90, 200 - 40 * i)) for i in range(count)]


@pytest.mark.parametrize(
    ("name", "says"),
    [("a.gif", "an animated GIF of 3 frames"), ("a.png", "an animated PNG of 3 frames"),
     ("a.webp", "an animated WebP of 3 frames"), ("a.tif", "a multi-page TIFF of 3 frames")],
)  # fmt: skip
def test_several_frames_are_refused_not_cut_to_the_first(
    tmp_path: Path, name: str, says: str
) -> None:
    first, *rest = _frames(3)
    path = _save(first, tmp_path / name, save_all=True, append_images=rest)
    expected = f"{path}: {says}: dkt reads one still picture"
    for read in (read_image, read_mask, imageio.read_alpha_composite):
        with pytest.raises(ImageInputError) as info:
            read(path)
        assert str(info.value).startswith(expected), read
    with pytest.raises(ImageInputError, match=f"^upload: {says}"):
        imageio.read_image_bytes(path.read_bytes(), "upload")


def test_frames_that_belong_to_one_picture_are_read(tmp_path: Path) -> None:
    """A TIFF's reduced-resolution preview page and a phone's MPO second image are not
    pictures of their own: the file is read, as before."""
    import tifffile

    pixels = _random_rgb()
    with tifffile.TiffWriter(tmp_path / "preview.tif") as tif:
        tif.write(pixels, photometric="rgb")
        tif.write(pixels[::2, ::2], photometric="rgb", subfiletype=1)
    assert np.array_equal(read_image(tmp_path / "preview.tif"), pixels)
    first, second = _frames(2)
    path = _save(first, tmp_path / "phone.mpo", save_all=True, append_images=[second])
    with Image.open(path) as img:
        assert (img.format, img.n_frames) == ("MPO", 2)
    assert read_image(path).shape == (8, 10, 3)


@pytest.mark.parametrize(
    ("values", "says"),
    [(np.zeros((4, 5, 3), np.float32), "a TIFF of 32-bit floating-point samples, 3 a pixel"),
     (np.zeros((4, 5), np.int64), "a TIFF of 64-bit signed integer samples, 1 a pixel")],
)  # fmt: skip
def test_tiff_samples_pillow_cannot_hold_are_named(
    tmp_path: Path, values: np.ndarray, says: str
) -> None:
    """They were "not an image file", which sent users looking for a broken file."""
    options = {"photometric": "rgb"} if values.ndim == 3 else {}
    path = _tiff(tmp_path / "x.tif", values, **options)
    expected = f"{path}: {says}, which dkt cannot read (save it with 8- or 16-bit integers)"
    for read in (read_image, read_mask):
        with pytest.raises(ImageInputError) as info:
            read(path)
        assert str(info.value) == expected
    with pytest.raises(ImageInputError, match=f"^upload: {says}"):
        imageio.read_image_bytes(path.read_bytes(), "upload")
