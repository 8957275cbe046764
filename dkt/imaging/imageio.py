"""Reading images and masks from disk robustly, and writing results atomically.

Everything the model sees goes through here, so this is where a bad input file has to
turn into one readable line (``ImageInputError``) instead of a traceback or, worse, a
silently wrong tensor: Pillow will happily hand back grey pixels for a truncated JPEG,
clip 16-bit data to white, ignore a phone's "rotate 90" tag or decode a 40 000 x 40 000
"image" of a few kilobytes until the machine runs out of memory. Every reader therefore
decodes fully, applies the EXIF orientation, guards against decompression bombs and
maps every pixel mode to one well-defined array layout.
"""

from __future__ import annotations

import contextlib
import io
import stat
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, TiffImagePlugin, UnidentifiedImageError, features

from dkt.atomic import atomic_path
from dkt.errors import ImageInputError, ImageTooLargeError, MaskSizeError
from dkt.imaging.masks import integer_weights, mask_error
from dkt.imaging.metadata import ImageMeta, meta_from_image, pillow_options
from dkt.imaging.wide_io import (
    orient,
    read_wide_rgb,
    unreadable_tiff,
    write_png16,
    write_tiff16,
)
from dkt.limits import DEFAULT_MAX_PIXELS

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "LOSSY_SUFFIXES",
    "MaskSizeError",
    "check_header",
    "encode_image",
    "exif_orientation",
    "header_size",
    "is_lossy",
    "orientation_note",
    "output_format",
    "read_alpha_composite",
    "read_alpha_composite_bytes",
    "read_image",
    "read_image_bytes",
    "read_mask",
    "read_mask_bytes",
    "read_metadata",
    "read_metadata_bytes",
    "verify_image",
    "write_image",
]


_SAVE_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}

#: zlib level for PNG output. Painted and photographic pixels are noise to zlib: level 1
#: writes a 1024x768 result about 3x faster than Pillow's default 6 (0.13 s against 0.36 s
#: here, which made encoding the slowest stage of a folder run) for files at most a few per
#: cent larger, and sometimes smaller. The pixels are the same: PNG is lossless either way.
PNG_COMPRESS_LEVEL = 1

#: Suffixes (lower case) that folder runs pick up and that ``write_image`` can produce.
IMAGE_SUFFIXES: frozenset[str] = frozenset(_SAVE_FORMATS)

# Pillow decodes EPS by running Ghostscript on the file: never do that to user input.
_UNSAFE_FORMATS = frozenset({"EPS"})

_WIDE_GREY_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
_WIDE_16_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa"})
# Single-channel integer modes, read by the integer mask rule (dkt.imaging.masks).
_INTEGER_MASK_MODES = frozenset({"L", "I", "I;16", "I;16B", "I;16L", "I;16N"})
# Modes Pillow itself converts to RGB correctly (palette lookup, colour-space maths).
_CONVERTIBLE_MODES = frozenset({"P", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"})
# A tRNS chunk / GIF transparency index turns these into images with an alpha channel.
_TRANSPARENCY_MODES = frozenset({"P", "L", "RGB"})

# Pillow's guards are module globals; we change them only while we open and decode,
# under this lock, so two readers in different threads cannot restore each other's
# values and leave the process with a guard switched off for good.
_PILLOW_GLOBALS_LOCK = threading.Lock()


#: EXIF orientation tag values and how a viewer (and :func:`read_image`) turns the pixels.
_ORIENTATIONS: dict[int, str] = {
    2: "mirrored left-right",
    3: "rotated 180 degrees",
    4: "mirrored top-bottom",
    5: "mirrored and rotated 90 degrees",
    6: "rotated 90 degrees clockwise",
    7: "mirrored and rotated 270 degrees",
    8: "rotated 90 degrees counter-clockwise",
}
_ORIENTATION_TAG = 0x0112


# --------------------------------------------------------------------------- reading


def read_image(
    path: str | Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS, keep_depth: bool = False
) -> np.ndarray:
    """Load a picture as the model expects it: upright, 8-bit RGB, transparency on white.

    Returns a fresh, writable ``uint8`` array of shape ``(H, W, 3)``. Any problem with the
    file (missing, not an image, truncated, too large, exotic mode) raises
    ``ImageInputError`` so a batch run can report it and go on with the next file.
    ``max_pixels=None`` switches the decompression-bomb guard off.

    ``keep_depth=True``: a 16-bit image (grey, a colour PNG, or a colour TIFF whose
    compression tifffile reads, see :mod:`dkt.imaging.wide_io`) comes back as ``uint16``
    (H, W, 3) with all its bits, so that a result can keep its background exactly;
    everything else is ``uint8`` as above.
    """
    path = Path(path)
    with _open_decoded(path, max_pixels, upright=not keep_depth) as img:
        if not keep_depth:
            return _to_rgb(img, path)
        orientation = _orientation_tag(img)
        wide = _to_wide_rgb(img, path)
        if wide is not None:
            return np.ascontiguousarray(orient(wide, orientation))
        _apply_exif_orientation(img)
        return _to_rgb(img, path)


def read_mask(
    path: str | Path,
    *,
    expected_hw: tuple[int, int] | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Load a mask as blending weights, keeping soft (anti-aliased) edges soft.

    Returns ``float32`` ``(H, W)`` in ``[0, 1]``. Masks come from many tools, so a grey
    PNG, a black-and-white bitmap, an RGB export and a cut-out saved as transparency all
    work. Integer grey masks (8, 16 or 32 bits) follow :mod:`dkt.imaging.masks`: largest
    value 1 is a 0/1 label mask, 0..255 is 8-bit whatever the sample size, 0..65535 is
    16-bit in a 16-bit file, and anything else is refused naming the file; a palette mask
    whose largest index is 1 is a label mask too. ``expected_hw`` (the composite's height
    and width) turns the otherwise cryptic broadcasting failure later on into a message
    naming both sizes.
    """
    path = Path(path)
    with _open_decoded(path, max_pixels) as img:
        mask = _to_mask(img, path)
    _check_mask_size(mask, path, expected_hw)
    return mask


def _check_mask_size(mask: np.ndarray, path: Path, expected_hw: tuple[int, int] | None) -> None:
    if expected_hw is not None and mask.shape != tuple(expected_hw):
        (h, w), (eh, ew) = mask.shape, expected_hw
        raise MaskSizeError(path, f"mask is {w}x{h} but the composite is {ew}x{eh}")


def read_alpha_composite(
    path: str | Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, np.ndarray]:
    """An RGBA composite whose alpha marks the object: ``(uint8 (H,W,3), float32 (H,W))``.

    Its colours are taken as stored, not flattened onto white as :func:`read_image` does:
    under the transparent pixels lies the painting, which must come back untouched. A file
    without an alpha channel, or one whose alpha is the same everywhere (so it marks no
    object), is refused naming the file.
    """
    path = Path(path)
    with _open_decoded(path, max_pixels) as img:
        return _split_alpha(img, path, "; pass --mask FILE")


def _split_alpha(img: Image.Image, path: Path, hint: str) -> tuple[np.ndarray, np.ndarray]:
    if not _has_alpha(img):
        raise ImageInputError(
            path, f"has no alpha channel ({img.mode}) to take the mask from{hint}"
        )
    rgba = np.asarray(img.convert("RGBA"))
    alpha = rgba[:, :, 3]
    if alpha.min() == alpha.max():
        state = "fully transparent" if alpha.max() == 0 else "fully opaque"
        raise ImageInputError(path, f"alpha is {state}: it marks no object to harmonize")
    rgb = np.ascontiguousarray(rgba[:, :, :3])
    return rgb, alpha.astype(np.float32) / 255.0


# A server decodes uploads from memory: a request must never make it write, or read back, a
# file. These are the readers above for bytes, under the same guards and the same rules
# (header checked before decoding, EXIF orientation, label and alpha masks); ``name`` stands
# where a path would in the errors, so a reply can name the form field at fault.


def read_image_bytes(
    data: bytes, name: str = "<image>", *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """:func:`read_image` (8-bit) for an encoded image held in memory."""
    with _open_decoded(Path(name), max_pixels, data=data) as img:
        return _to_rgb(img, Path(name))


def read_mask_bytes(
    data: bytes,
    name: str = "<mask>",
    *,
    expected_hw: tuple[int, int] | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """:func:`read_mask` for an encoded mask held in memory."""
    path = Path(name)
    with _open_decoded(path, max_pixels, data=data) as img:
        mask = _to_mask(img, path)
    _check_mask_size(mask, path, expected_hw)
    return mask


def read_alpha_composite_bytes(
    data: bytes,
    name: str = "<image>",
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    hint: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`read_alpha_composite` for bytes; ``hint`` ends the no-alpha error (the
    command line's ``--mask`` advice means nothing to a web client)."""
    path = Path(name)
    with _open_decoded(path, max_pixels, data=data) as img:
        return _split_alpha(img, path, hint)


def encode_image(
    image: np.ndarray,
    fmt: str,
    *,
    quality: int = 95,
    lossless: bool = True,
    meta: ImageMeta | None = None,
) -> bytes:
    """:func:`write_image`'s encoding into memory; ``fmt`` is a Pillow format name (PNG, ...).

    The same options as for files (lossless WebP, full-chroma JPEG, fast PNG, the
    composite's ``meta``), so a result fetched over HTTP has the bytes a file written by
    ``dkt harmonize`` would. 8-bit only.
    """
    pixels = _checked_pixels(image)
    if pixels.dtype != np.uint8:
        pixels = _wide_to_uint8(pixels, "I;16")
    buffer = io.BytesIO()
    options = {**_save_options(fmt, quality, lossless), **pillow_options(meta, fmt)}
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def image_to_rgb(img: Image.Image) -> np.ndarray:
    """An in-memory Pillow image as :func:`read_image` returns a file: uint8 (H, W, 3).

    The same rules as for files (transparency on white, grey and palette to RGB), so the
    Python API and the command line see the same pixels.
    """
    return _to_rgb(img, Path("<image>"))


def image_to_mask(img: Image.Image) -> np.ndarray:
    """An in-memory Pillow mask as :func:`read_mask` reads a file (the same integer rule)."""
    return _to_mask(img, None)


def header_size(path: str | Path) -> tuple[int, int] | None:
    """(height, width) as the file's header states it, decoding nothing; ``None`` if unreadable.

    What a pipeline needs to budget an image's memory before decoding it. Unreadable files
    are left for :func:`read_image` to report; the orientation is not applied (it changes
    the shape, not the pixel count).
    """
    try:
        img = _open_header(Path(path))
    except ImageInputError:
        return None
    with img:
        width, height = img.size
    return height, width


def check_header(path: str | Path) -> None:
    """Open ``path`` as an image, header only; ``ImageInputError`` if that fails.

    Milliseconds a file, so a training run can check every file before its first step
    instead of finding a corrupt one when it is drawn, hours in. A file whose header is
    fine but whose pixels are cut short still only fails when decoded.
    """
    path = Path(path)
    with _open_header(path) as img:
        width, height = img.size
    if width < 1 or height < 1:
        raise ImageInputError(path, f"image is {width}x{height}: no pixels")


def verify_image(path: str | Path) -> None:
    """Decode ``path`` fully and drop the pixels; ``ImageInputError`` if it does not decode.

    For telling a finished output from one cut short (0 bytes, a truncated write by another
    tool, a full disk): the header alone says nothing about the missing rows.
    """
    with _open_decoded(Path(path), None):
        pass


def exif_orientation(path: str | Path) -> int:
    """The EXIF orientation tag of an image file (1, upright, when absent or unreadable).

    Header only. Lets a size mismatch between a phone photo and its mask say *why*: the
    photo is stored sideways and read upright, while the mask was drawn on the raw pixels.
    """
    try:
        img = _open_header(Path(path))
    except ImageInputError:
        return 1
    with img, contextlib.suppress(Exception):
        value = int(img.getexif().get(_ORIENTATION_TAG, 1))
        return value if value in _ORIENTATIONS else 1
    return 1


def orientation_note(orientation: int) -> str:
    """Why an upright composite and a mask drawn on its raw pixels differ ('' when upright)."""
    if orientation not in _ORIENTATIONS:
        return ""
    return (
        f"the composite has EXIF orientation {orientation} ({_ORIENTATIONS[orientation]} "
        "when read, as viewers show it): the mask must match the rotated image"
    )


@contextlib.contextmanager
def _open_decoded(
    path: Path, max_pixels: int | None, *, upright: bool = True, data: bytes | None = None
) -> Iterator[Image.Image]:
    """Yield the fully decoded image, upright unless ``upright=False``; the file is closed
    afterwards. ``data``: decode these bytes instead, ``path`` only names them in errors."""
    _check_max_pixels(max_pixels)
    if data is None:
        _check_regular_file(path)
    elif not data:
        raise ImageInputError(path, "not an image file (the file is empty)")
    with _pillow_guards(bomb_limit=None):  # our own check below gives the better message
        img = _open(path, data)
    try:
        _check_pixel_count(path, img, max_pixels)
        with _pillow_guards(bomb_limit=max_pixels):  # plugins re-check frames and tiles
            _check_one_frame(path, img)
            _decode(path, img)
        if upright:
            _apply_exif_orientation(img)
        yield img
    finally:
        img.close()


def _open_header(path: Path) -> Image.Image:
    """``path`` opened with only its header read (no pixel decoded), or ``ImageInputError``."""
    _check_regular_file(path)
    with _pillow_guards(bomb_limit=None):
        return _open(path)


def _check_max_pixels(max_pixels: int | None) -> None:
    if max_pixels is not None and (isinstance(max_pixels, bool) or max_pixels < 1):
        raise ValueError(f"max_pixels must be a positive int or None, got {max_pixels!r}")


def _check_regular_file(path: Path) -> None:
    """Fail early, with a plain reason, on things Pillow reports confusingly or hangs on.

    A named pipe or device would block ``open`` forever, and a folder gives an
    ``IsADirectoryError`` on Linux but a ``PermissionError`` on Windows.
    """
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise ImageInputError(path, "no such file") from None
    except PermissionError:
        raise ImageInputError(path, "permission denied") from None
    except OSError as err:
        raise ImageInputError(path, f"cannot read the file ({_describe(err)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageInputError(path, "is a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageInputError(path, "is not a regular file (a pipe or a device?)")
    if st.st_size == 0:
        raise ImageInputError(path, "not an image file (the file is empty)")


@contextlib.contextmanager
def _pillow_guards(*, bomb_limit: int | None) -> Iterator[None]:
    """Run Pillow with the safety settings we rely on, whatever other code set globally.

    ``LOAD_TRUNCATED_IMAGES`` is forced off (on, Pillow pads a cut-off file with grey),
    Pillow's bomb *error* is moved to ``bomb_limit`` (``None``: off) and its bomb
    *warning* is silenced: the warning threshold is half the error one, so it would
    fire on legitimate images we have already decided to accept.
    """
    with _PILLOW_GLOBALS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved_truncated = ImageFile.LOAD_TRUNCATED_IMAGES
        saved_limit = Image.MAX_IMAGE_PIXELS
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        # Pillow raises above 2 * MAX_IMAGE_PIXELS; round up so it never fires below ours.
        Image.MAX_IMAGE_PIXELS = None if bomb_limit is None else (bomb_limit + 1) // 2
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = saved_truncated
            Image.MAX_IMAGE_PIXELS = saved_limit


def _readable_formats() -> tuple[str, ...]:
    """Every registered format but the unsafe ones; not cached, so that plugins
    registered later (pillow-heif for iPhone HEIC, say) are picked up."""
    Image.init()
    return tuple(fmt for fmt in Image.ID if fmt not in _UNSAFE_FORMATS)


def _open(path: Path, data: bytes | None = None) -> Image.Image:
    """``Image.open`` (lazy: header only) of ``path``, or of ``data`` in memory, with every
    failure mapped to a user message."""
    source = path if data is None else io.BytesIO(data)
    try:
        return Image.open(source, formats=_readable_formats())
    except (FileNotFoundError, NotADirectoryError):
        raise ImageInputError(path, "no such file") from None
    except IsADirectoryError:
        raise ImageInputError(path, "is a folder, not an image file") from None
    except PermissionError:
        raise ImageInputError(path, "permission denied") from None
    except UnidentifiedImageError:
        raise ImageInputError(path, _unidentified_reason(path, data)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageTooLargeError(path, f"decompression-bomb guard: {_describe(err)}") from None
    except OSError as err:
        if err.errno is not None:  # a real I/O failure, not a damaged file
            raise ImageInputError(path, f"cannot read the file ({_describe(err)})") from None
        raise ImageInputError(path, f"truncated or corrupt image ({_describe(err)})") from None
    except Exception as err:  # a plugin choking on a malformed header
        raise ImageInputError(path, f"not an image file ({_describe(err)})") from None


def _unidentified_reason(path: Path, data: bytes | None) -> str:
    """Why Pillow opened nothing: a TIFF whose samples it cannot hold (float colour, 64-bit
    integers) is an image file, and saying so tells the user what to change."""
    held = unreadable_tiff(path if data is None else data)
    if held is not None:
        return f"a TIFF of {held}, which dkt cannot read (save it with 8- or 16-bit integers)"
    return "not an image file (its contents match no supported image format)"


# Formats whose further frames belong to the one picture: an MPO's are a phone photo's
# depth map or preview, a PSD's the layers under its flattened image, an ICO's or ICNS's the
# same icon at other sizes. Anywhere else a second frame is another picture.
_ONE_PICTURE_FORMATS = frozenset({"MPO", "PSD", "ICO", "ICNS", "CUR"})
_SEQUENCE_KINDS = {"GIF": "an animated GIF", "PNG": "an animated PNG",
                   "WEBP": "an animated WebP", "TIFF": "a multi-page TIFF"}  # fmt: skip
_NEW_SUBFILE_TYPE = 254  # TIFF tag; bit 0: a reduced-resolution copy, bit 2: a transparency mask


def _check_one_frame(path: Path, img: Image.Image) -> None:
    """Refuse an animation or a multi-page file: reading its first frame alone harmonized
    part of what was given without a word (and paired frame 1 of a mask with it)."""
    if img.format in _ONE_PICTURE_FORMATS:
        return
    try:
        frames = _picture_frames(img)
    except Exception as err:  # a frame header past the first is damaged
        raise ImageInputError(path, f"truncated or corrupt image ({_describe(err)})") from None
    if frames > 1:
        kind = _SEQUENCE_KINDS.get(img.format or "", f"a {img.format} file")
        raise ImageInputError(
            path,
            f"{kind} of {frames} frames: dkt reads one still picture "
            "(save the frame to use as a file of its own)",
        )


def _picture_frames(img: Image.Image) -> int:
    """Frames that are pictures of their own; a TIFF's previews and masks are not."""
    count = int(getattr(img, "n_frames", 1))
    # a "TIFF" is always Pillow's TiffImageFile; the isinstance check tells the type checker
    if count <= 1 or img.format != "TIFF" or not isinstance(img, TiffImagePlugin.TiffImageFile):
        return count
    pictures = 0
    try:
        for index in range(count):
            img.seek(index)
            pictures += not int(img.tag_v2.get(_NEW_SUBFILE_TYPE, 0)) & 0b101
    finally:
        img.seek(0)
    return pictures


def _check_pixel_count(path: Path, img: Image.Image, max_pixels: int | None) -> None:
    """Refuse oversized images from the header alone, before a byte is decompressed."""
    w, h = img.size
    if max_pixels is not None and w * h > max_pixels:
        raise ImageTooLargeError(
            path,
            f"image is {w}x{h} = {w * h} pixels, over the limit of {max_pixels} "
            "(decompression-bomb guard)",
        )


def _decode(path: Path, img: Image.Image) -> None:
    """Decode every pixel now, so a damaged file fails here and not as grey output."""
    try:
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageTooLargeError(path, f"decompression-bomb guard: {_describe(err)}") from None
    except MemoryError:
        w, h = img.size
        raise ImageInputError(path, f"not enough memory to decode a {w}x{h} image") from None
    except Exception as err:
        # Decoders signal damage with OSError, SyntaxError, ValueError, EOFError,
        # struct.error, zlib.error, ... depending on the format: all mean the same here.
        raise ImageInputError(path, f"truncated or corrupt image ({_describe(err)})") from None


def _apply_exif_orientation(img: Image.Image) -> None:
    """Turn phone photos upright, as every image viewer shows them.

    Unreadable EXIF is ignored rather than fatal: the pixels are fine, and refusing a
    photo over broken metadata helps nobody.
    """
    with contextlib.suppress(Exception):
        ImageOps.exif_transpose(img, in_place=True)


def _orientation_tag(img: Image.Image) -> int:
    with contextlib.suppress(Exception):
        value = int(img.getexif().get(_ORIENTATION_TAG, 1))
        return value if value in _ORIENTATIONS else 1
    return 1


def _describe(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


# ------------------------------------------------------------------ mode conversion


def _to_rgb(img: Image.Image, path: Path) -> np.ndarray:
    mode = img.mode
    if _has_alpha(img):
        rgb = _composite_over_white(np.asarray(img.convert("RGBA")))
    elif mode == "RGB":
        rgb = np.array(img, dtype=np.uint8)
    elif mode in ("L", "1"):
        rgb = _grey_to_rgb(np.asarray(img.convert("L"), dtype=np.uint8))
    elif mode in _WIDE_GREY_MODES:
        rgb = _grey_to_rgb(_wide_to_uint8(np.asarray(img), mode))
    elif mode in _CONVERTIBLE_MODES:
        rgb = np.array(img.convert("RGB"), dtype=np.uint8)
    else:
        raise ImageInputError(path, f"unsupported image mode '{mode}'")
    return np.ascontiguousarray(rgb)


def _to_wide_rgb(img: Image.Image, path: Path) -> np.ndarray | None:
    """uint16 (H, W, 3) of a 16-bit image, raw orientation; ``None`` for 8-bit ones."""
    if img.mode in _WIDE_16_MODES:
        return _grey_to_rgb(np.asarray(img).astype(np.uint16))
    if img.mode not in ("RGB", "RGBA"):
        return None
    wide = read_wide_rgb(path, img)
    if wide is None:
        return None
    if wide.shape[2] == 4:
        return _composite_over_white_16(wide)
    return wide


def _composite_over_white_16(rgba: np.ndarray) -> np.ndarray:
    """:func:`_composite_over_white` at 16 bits."""
    colour = rgba[:, :, :3].astype(np.uint64)
    alpha = rgba[:, :, 3:].astype(np.uint64)
    out = (colour * alpha + 65535 * (65535 - alpha) + 32767) // 65535
    return out.astype(np.uint16)


def _to_mask(img: Image.Image, path: Path | None) -> np.ndarray:
    """float32 (H, W) weights; integer modes by :mod:`dkt.imaging.masks`' rule. ``path``:
    the file, for errors (``None``: an in-memory image)."""
    mode = img.mode
    if _has_alpha(img):
        grey = _alpha_or_luminance(img.convert("RGBA"))
    elif mode in _INTEGER_MASK_MODES:
        grey = integer_weights(np.asarray(img), sixteen_bit=_sixteen_bit(img), source=path)
    elif mode == "1":
        grey = np.asarray(img, dtype=np.float32)  # bool -> exactly 0.0 / 1.0
    elif mode == "F":
        grey = _float_to_unit(np.asarray(img))
    elif mode == "P" and _palette_labels(img):
        grey = np.asarray(img) > 0
    elif mode == "RGB" or mode in _CONVERTIBLE_MODES:
        # Via RGB: Pillow has no direct LAB -> L conversion.
        grey = np.asarray(img.convert("RGB").convert("L"), dtype=np.float32) / 255.0
    else:
        raise mask_error(path, f"unsupported mask mode '{mode}'")
    return np.ascontiguousarray(grey, dtype=np.float32)


def _sixteen_bit(img: Image.Image) -> bool:
    """Whether an integer mask's range is 0..65535: a 16-bit mode, or a PNG in mode I (an
    older Pillow's 16-bit grey PNG; PNG has no 32-bit samples)."""
    return img.mode in _WIDE_16_MODES or (img.mode == "I" and img.format == "PNG")


def _palette_labels(img: Image.Image) -> bool:
    """A palette image whose largest index is 1 is a 0/1 label image, as segmentation
    tools write them (index 1 the object), whatever colours its palette gives them."""
    values = np.asarray(img)
    return values.size > 0 and int(values.max()) == 1


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in _ALPHA_MODES or (
        img.mode in _TRANSPARENCY_MODES and "transparency" in img.info
    )


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, None], 3, axis=2)


def _composite_over_white(rgba: np.ndarray) -> np.ndarray:
    """Flatten transparency the way a viewer on a white page shows it (exact, rounded)."""
    colour = rgba[:, :, :3].astype(np.uint32)
    alpha = rgba[:, :, 3:].astype(np.uint32)
    out = (colour * alpha + 255 * (255 - alpha) + 127) // 255
    return out.astype(np.uint8)


def _alpha_or_luminance(rgba_img: Image.Image) -> np.ndarray:
    """A mask saved as a cut-out lives in alpha; an opaque one lives in the colours."""
    alpha = np.asarray(rgba_img.getchannel("A"))
    if alpha.size and alpha.min() != alpha.max():
        return alpha.astype(np.float32) / 255.0
    return np.asarray(rgba_img.convert("L"), dtype=np.float32) / 255.0


def _wide_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """16-bit / 32-bit / float grey to 8 bit by scaling, not clipping.

    Pillow's own ``convert("L")`` clips, so a 16-bit scan comes out almost all white.
    """
    if mode == "F":
        return np.rint(_float_to_unit(values) * 255.0).astype(np.uint8)
    wide = np.clip(values, 0, 65535).astype(np.uint32)
    return ((wide + 128) // 257).astype(np.uint8)  # round(v * 255 / 65535), exactly


def _float_to_unit(values: np.ndarray) -> np.ndarray:
    """Float images carry no declared range: guess 0..1, else 0..255, else 0..65535."""
    data = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(data.max()) if data.size else 0.0
    scale = 1.0 if peak <= 1.0 else 255.0 if peak <= 255.0 else 65535.0
    return np.clip(data / scale, 0.0, 1.0)


# --------------------------------------------------------------------------- writing


#: Output formats that cannot store pixels exactly: a result written in one of them no longer
#: has the painting's background byte for byte.
LOSSY_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg"})


def is_lossy(path: str | Path) -> bool:
    """Whether writing ``path`` re-encodes the pixels lossily (JPEG)."""
    return Path(path).suffix.lower() in LOSSY_SUFFIXES


def write_image(
    path: str | Path,
    image: np.ndarray,
    *,
    quality: int = 95,
    lossless: bool = True,
    meta: ImageMeta | None = None,
) -> None:
    """Save a result so that the final name only ever holds a complete file.

    The format follows the suffix (one of ``IMAGE_SUFFIXES``), missing folders are
    created, and the data goes through a temporary file that is renamed into place, so
    a crash or Ctrl-C mid-write leaves any earlier file untouched. Every format that can
    store pixels exactly does: PNG, TIFF, BMP, and WebP unless ``lossless=False`` (then
    lossy at ``quality``). The promise is a background byte-identical to the input, and
    Pillow's lossy WebP default broke it without a word. JPEG cannot be lossless: it uses
    ``quality`` with full-resolution chroma (no 4:2:0 smearing of thin painted strokes).

    A ``uint16`` image (a 16-bit input's result) keeps its 16 bits in PNG and TIFF and is
    rounded to 8 bits for the other formats.

    ``meta`` (the composite's, from :func:`read_metadata`) is written as far as the format
    holds it (:mod:`dkt.imaging.metadata`), so the result shows in the composite's colours.

    Raises ``ValueError`` for arrays that are not ``uint8`` or ``uint16`` ``(H, W)`` /
    ``(H, W, 3)``: that is a bug in the caller, not a problem with the user's input.
    """
    path = Path(path)
    fmt = output_format(path)
    pixels = _checked_pixels(image)
    if pixels.dtype == np.uint16 and fmt not in _WIDE_WRITERS:
        pixels = _wide_to_uint8(pixels, "I;16")  # this format holds 8 bits a sample
    if pixels.dtype == np.uint16 and pixels.ndim == 3:
        with atomic_path(path) as tmp:
            _WIDE_WRITERS[fmt](tmp, pixels, PNG_COMPRESS_LEVEL, meta)
        return
    pil_image = Image.fromarray(pixels)
    options = {**_save_options(fmt, quality, lossless), **pillow_options(meta, fmt)}
    with atomic_path(path) as tmp:
        pil_image.save(tmp, format=fmt, **options)


def output_format(path: str | Path) -> str:
    """Pillow's format name for an output path's suffix, or ``ImageInputError`` naming it.

    Public so a command can check every output path before it does any work, instead of
    failing on the first write after the model has run.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _SAVE_FORMATS:
        choices = ", ".join(sorted(_SAVE_FORMATS))
        shown = suffix or "(no suffix)"
        raise ImageInputError(path, f"unsupported output format '{shown}' (use one of {choices})")
    return _SAVE_FORMATS[suffix]


#: Formats that store 16-bit colour, and how (Pillow cannot): see :mod:`dkt.imaging.wide_io`.
_WIDE_WRITERS = {"PNG": write_png16, "TIFF": write_tiff16}


def read_metadata(path: str | Path) -> ImageMeta:
    """The colour profile, DPI and EXIF a result of the image at ``path`` should carry.

    Header only, and never an error: an unreadable file has none (reading its pixels
    reports what is wrong with it).
    """
    try:
        img = _open_header(Path(path))
    except ImageInputError:
        return ImageMeta()
    with img:
        return meta_from_image(img)


def read_metadata_bytes(data: bytes | bytearray) -> ImageMeta:
    """:func:`read_metadata` of an encoded image held in memory (an upload)."""
    if not data:
        return ImageMeta()
    try:
        with _pillow_guards(bomb_limit=None):
            img = _open(Path("<image>"), bytes(data))
    except ImageInputError:
        return ImageMeta()
    with img:
        return meta_from_image(img)


def _checked_pixels(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a numpy array, got {type(image).__name__}")
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected a uint8 or uint16 image, got dtype {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"expected an (H, W) or (H, W, 3) image, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"cannot write an empty image of shape {image.shape}")
    return np.ascontiguousarray(image)


def _save_options(fmt: str, quality: int, lossless: bool = True) -> dict[str, object]:
    if isinstance(quality, bool) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100, got {quality!r}")
    if fmt == "JPEG":
        return {"quality": quality, "subsampling": 0}
    if fmt == "WEBP":
        # Lossless WebP reads ``quality`` as compression effort; ``exact`` keeps the
        # colour of any fully transparent pixel (there are none in RGB, but be explicit).
        return (
            {"lossless": True, "quality": 100, "exact": True} if lossless else {"quality": quality}
        )
    if fmt == "TIFF" and features.check("libtiff"):
        return {"compression": "tiff_lzw"}
    if fmt == "PNG":
        return {"compress_level": PNG_COMPRESS_LEVEL}
    return {}
