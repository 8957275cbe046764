"""What a result keeps of its composite besides the pixels: colour profile, DPI and EXIF.

A painting's embedded ICC profile says what its numbers mean: a wide-gamut file written back
without it shows in a colour-managed viewer as different colours, so the "byte-identical"
background no longer looks like the painting. Its DPI decides its printed size, its EXIF
says who made it and when. :class:`ImageMeta` holds the three as read from the composite's
header, made fit for a result: the pixels were turned upright when read, so the EXIF
orientation is reset to 1 and a rotated file's horizontal and vertical DPI swap places.

Writers ask here what a format can hold (:func:`pillow_options`, :func:`png_chunks`,
:func:`tiff_ascii_tags`): PNG and JPEG take all three, WebP the profile and EXIF, BMP the
DPI only (Pillow writes no BMP profile). TIFF takes the profile, the DPI and the EXIF's main
tags, not its sub-IFDs (exposure, date taken, GPS): libtiff, which compresses it, cannot
write those; a 16-bit TIFF (tifffile) keeps the main tags that are text. Nothing here ever
fails an image: metadata that cannot be read or written is left out, the pixels matter.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass

import png
from PIL import Image

__all__ = ["ImageMeta", "meta_from_image", "pillow_options", "png_chunks", "tiff_ascii_tags"]

_ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_PIXEL_X, _PIXEL_Y = 0xA002, 0xA003
_SUB_IFDS = frozenset({_EXIF_IFD, 0x8825, 0xA005})  # EXIF, GPS, interoperability
#: Orientations whose turn swaps width and height (and so the horizontal and vertical DPI).
_TRANSPOSING = frozenset({5, 6, 7, 8})
#: TIFF tags that describe a file's pixel layout, not the picture: a TIFF's own tags come back
#: as its EXIF, and written into a result they would describe the wrong strips. Resolution
#: travels as ``dpi``, the profile as ``icc_profile``, XMP (which may hold an orientation of
#: its own) is not carried.
_LAYOUT_TAGS = frozenset({
    254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 282, 283,
    284, 292, 293, 296, 317, 320, 322, 323, 324, 325, 330, 338, 339, 340, 341, 347,
    *range(512, 522), 529, 530, 531, 532, 700, 34675,
})  # fmt: skip
#: JPEG keeps EXIF in one APP1 marker: Pillow refuses more (a PNG's EXIF may be larger).
_JPEG_EXIF_LIMIT = 65533
#: The PNG chunks :func:`png_chunks` passes on (everything Pillow writes for the metadata).
_PNG_META_CHUNKS = frozenset({b"iCCP", b"pHYs", b"eXIf"})


@dataclass(frozen=True)
class ImageMeta:
    """A composite's colour profile (RGB only), DPI (x, y) and EXIF, as a result carries them.

    ``exif`` is Pillow's EXIF bytes (``Exif\\0\\0`` + TIFF structure), orientation 1.
    """

    icc_profile: bytes | None = None
    dpi: tuple[float, float] | None = None
    exif: bytes | None = None

    @property
    def empty(self) -> bool:
        return self.icc_profile is None and self.dpi is None and self.exif is None


def meta_from_image(img: Image.Image) -> ImageMeta:
    """The metadata of ``img`` (opened by Pillow; only what its header holds is read).

    A PNG whose EXIF comes after its pixels keeps none: reading it would decode the image.
    """
    orientation = _orientation(img)
    return ImageMeta(_rgb_profile(img), _dpi(img, orientation), _exif(img, orientation))


def _orientation(img: Image.Image) -> int:
    with contextlib.suppress(Exception):
        raw = img.info.get("exif")
        if isinstance(raw, bytes) and raw:
            exif = Image.Exif()
            exif.load(raw)
        elif img.format == "TIFF":
            exif = img.getexif()
        else:
            return 1
        return int(exif.get(_ORIENTATION, 1))
    return 1


def _rgb_profile(img: Image.Image) -> bytes | None:
    """The ICC profile, when it describes RGB: a CMYK or grey image's profile would
    misdescribe the RGB pixels dkt writes."""
    profile = img.info.get("icc_profile")
    if isinstance(profile, bytes) and len(profile) >= 20 and profile[16:20] == b"RGB ":
        return profile
    return None


def _dpi(img: Image.Image, orientation: int) -> tuple[float, float] | None:
    with contextlib.suppress(Exception):
        x, y = (float(v) for v in img.info["dpi"])
        if all(math.isfinite(v) and v > 0 for v in (x, y)):
            return (y, x) if orientation in _TRANSPOSING else (x, y)
    return None


def _exif(img: Image.Image, orientation: int) -> bytes | None:
    """The EXIF as a result holds it: no file layout tags, orientation 1, the upright size."""
    with contextlib.suppress(Exception):
        raw = img.info.get("exif")
        if not (isinstance(raw, bytes) and raw):
            if img.format != "TIFF":  # a PNG's late eXIf: Pillow would decode the pixels
                return None
            raw = img.getexif().tobytes()  # a TIFF's own tags, its EXIF sub-IFD included
        exif = Image.Exif()
        exif.load(raw)
        for tag in _LAYOUT_TAGS & set(exif):
            del exif[tag]
        if _ORIENTATION in exif:
            exif[_ORIENTATION] = 1
        _upright_size(exif, img.size, orientation)
        if not len(exif):
            return None
        return exif.tobytes()
    return None


def _upright_size(exif: Image.Exif, size: tuple[int, int], orientation: int) -> None:
    """The EXIF pixel dimensions of the upright picture (a rotated file stated the raw ones)."""
    if _EXIF_IFD not in exif:
        return
    ifd = exif.get_ifd(_EXIF_IFD)
    width, height = size[::-1] if orientation in _TRANSPOSING else size
    if _PIXEL_X in ifd:
        ifd[_PIXEL_X] = width
    if _PIXEL_Y in ifd:
        ifd[_PIXEL_Y] = height


def pillow_options(meta: ImageMeta | None, fmt: str) -> dict[str, object]:
    """``Image.save`` options that write ``meta`` into format ``fmt`` (a Pillow name)."""
    if meta is None:
        return {}
    options: dict[str, object] = {}
    if meta.icc_profile is not None and fmt in ("PNG", "JPEG", "TIFF", "WEBP"):
        options["icc_profile"] = meta.icc_profile
    if meta.dpi is not None and fmt in ("PNG", "JPEG", "TIFF", "BMP"):
        options["dpi"] = _dpi_for(meta.dpi, fmt)
    fits = meta.exif is not None and (fmt != "JPEG" or len(meta.exif) <= _JPEG_EXIF_LIMIT)
    if fits and fmt in ("PNG", "JPEG", "WEBP"):
        options["exif"] = meta.exif
    if meta.exif is not None and fmt == "TIFF":
        options["exif"] = _main_ifd(meta.exif).tobytes()
    return options


def _main_ifd(exif_bytes: bytes) -> Image.Exif:
    """The EXIF's main tags without its sub-IFDs (the EXIF, GPS and interoperability ones):
    in a TIFF they are IFDs of the file, which libtiff's writer cannot add."""
    exif = Image.Exif()
    exif.load(exif_bytes)
    for tag in _SUB_IFDS & set(exif):
        del exif[tag]
    return exif


def tiff_ascii_tags(meta: ImageMeta | None) -> list[tuple[int, str]]:
    """The EXIF's main text tags (maker, model, artist, copyright, dates, description) for
    a TIFF writer that takes tags one by one (tifffile, for 16-bit results)."""
    if meta is None or meta.exif is None:
        return []
    with contextlib.suppress(Exception):
        exif = _main_ifd(meta.exif)
        return [(tag, value) for tag, value in sorted(exif.items()) if isinstance(value, str)]
    return []


def _dpi_for(dpi: tuple[float, float], fmt: str) -> tuple[float, float]:
    """JPEG's JFIF header holds whole numbers only (Pillow would refuse a float)."""
    if fmt == "JPEG":
        return (max(1, min(65535, round(dpi[0]))), max(1, min(65535, round(dpi[1]))))
    return dpi


def png_chunks(meta: ImageMeta | None) -> list[tuple[bytes, bytes]]:
    """The PNG chunks (type, data) that hold ``meta``, as Pillow writes them into an 8-bit
    PNG: for the 16-bit writer, which Pillow cannot serve, so both carry the same chunks."""
    options = pillow_options(meta, "PNG")
    if not options:
        return []
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG", **options)
    reader = png.Reader(bytes=buffer.getvalue())
    return [(kind, data) for kind, data in reader.chunks() if kind in _PNG_META_CHUNKS]
