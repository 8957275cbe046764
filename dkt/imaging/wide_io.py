"""16-bit colour images, which Pillow cannot hold: a thin adapter over pypng and tifffile.

Pillow has no 16-bit RGB mode: it opens a 48-bit PNG or TIFF as 8-bit RGB (keeping the high
byte of every sample) and cannot save one at all, so a 16-bit scan came back from
``dkt harmonize`` as 8 bits with a background that was no longer the input's. Rather than
decode PNG and TIFF by hand, the samples come from two well-kept libraries:

* `pypng <https://pypi.org/project/pypng/>`_ (pure Python) for PNG: every colour type,
  filter and interlacing, and raw samples (no ``sBIT`` rescaling). Being pure Python it is
  slow on big files: a Paeth-filtered 16-bit PNG reads at about 2 s a megapixel on a busy
  2-core machine (unfiltered ones, as written here, about ten times faster), and it writes
  unfiltered rows, so a 16-bit PNG output is some 30 % larger than a filtered one.
* `tifffile <https://pypi.org/project/tifffile/>`_ (numpy only) for TIFF: strips or
  tiles, chunky or planar. Without the optional ``imagecodecs`` package it decompresses
  only what Python's standard library can: none, Deflate/ZIP (with or without the
  horizontal predictor), PackBits and LZMA (and Zstd on Python 3.14+). LZW, JPEG, WebP and
  the rest need ``imagecodecs``; tifffile uses it by itself when it is installed.

Every file reaching here has already been opened and fully decoded by Pillow
(:mod:`dkt.imaging.imageio`), so it is known to be whole and within the pixel limit. The samples
come back in the layout of Pillow's decoded image (Pillow turns a TIFF by its Orientation
tag as it loads it; tifffile does not, so that turn is made here), and the caller then
applies the EXIF orientation that Pillow reads to both alike. Anything not read at 16 bits
here (another format, 8-bit samples, a compression that needs ``imagecodecs``, a
premultiplied-alpha TIFF) returns ``None`` and is read by Pillow at 8 bits, as before.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
import png
import tifffile
from PIL import Image, features

from dkt.imaging.metadata import ImageMeta, png_chunks, tiff_ascii_tags

_SOFTWARE = 305  # TIFF tag

__all__ = ["orient", "read_wide_rgb", "unreadable_tiff", "write_png16", "write_tiff16"]


def read_wide_rgb(path: Path, img: Image.Image) -> np.ndarray | None:
    """The 16-bit samples of ``img`` (opened and decoded by Pillow from ``path``) as uint16
    (H, W, 3), or (H, W, 4) with straight alpha, pixel for pixel as Pillow holds them;
    ``None`` when ``path`` is not a 16-bit colour image read here. Only the header is read
    from an 8-bit file."""
    try:
        if img.format == "PNG":
            wide = _read_png16(path)
        elif img.format == "TIFF":
            wide = _read_tiff16(path)
        else:
            return None
    except (png.Error, ValueError):  # tifffile's errors (and "needs imagecodecs") included
        return None
    if wide is None or wide.shape[1::-1] != img.size:  # a layout Pillow disagrees with
        return None
    return np.ascontiguousarray(wide, dtype=np.uint16)


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """What ``ImageOps.exif_transpose`` does, for arrays Pillow cannot hold (16-bit RGB)."""
    turns = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    return turns[orientation](pixels) if orientation in turns else pixels


def _read_png16(path: Path) -> np.ndarray | None:
    with open(path, "rb") as fh:
        reader = png.Reader(file=fh)
        reader.preamble()  # the chunks before the pixels: decides without decoding any
        if reader.bitdepth != 16:
            return None
        width, height, flat, info = reader.read_flat()  # raw samples: no sBIT rescaling
    samples = np.asarray(flat, dtype=np.uint16).reshape(height, width, info["planes"])
    if info["greyscale"]:  # grey is Pillow's (I;16) unless it has alpha
        samples = samples[:, :, [0, 0, 0, *range(1, samples.shape[2])]]
    transparent = info.get("transparent")
    if transparent is not None and not info["alpha"]:  # a tRNS colour: that colour is clear
        clear = (samples == np.asarray(transparent, np.uint16).reshape(-1)).all(axis=2)
        alpha = np.where(clear, 0, 65535).astype(np.uint16)
        samples = np.dstack([samples, alpha])
    return samples


def _read_tiff16(path: Path) -> np.ndarray | None:
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]  # the frame Pillow reads
        if page.dtype != np.uint16 or page.photometric != tifffile.PHOTOMETRIC.RGB:
            return None
        extra = tuple(page.extrasamples)
        if page.samplesperpixel == 3:
            keep = 3
        elif page.samplesperpixel == 4 and extra == (tifffile.EXTRASAMPLE.UNASSALPHA,):
            keep = 4
        elif page.samplesperpixel == 4 and extra == (tifffile.EXTRASAMPLE.UNSPECIFIED,):
            keep = 3  # RGBX: Pillow ignores the fourth sample too
        else:
            return None  # premultiplied alpha, several extra samples: Pillow's 8 bits
        samples = page.asarray()
        if page.planarconfig == tifffile.PLANARCONFIG.SEPARATE:
            samples = np.moveaxis(samples, 0, -1)
        tag = page.tags.get(274)  # Orientation: Pillow turns a TIFF's pixels by it on load
        orientation = int(tag.value) if tag is not None else 1
    return orient(samples[:, :, :keep], orientation) if samples.ndim == 3 else None


_SAMPLE_KINDS = {1: "unsigned integer", 2: "signed integer", 3: "floating-point",
                 5: "complex integer", 6: "complex floating-point"}  # fmt: skip


def unreadable_tiff(source: Path | bytes) -> str | None:
    """What a TIFF that Pillow cannot open holds ("32-bit floating-point samples, 3 a
    pixel"), so that the refusal says what is unsupported rather than "not an image file";
    ``None`` when ``source`` is not a TIFF (tifffile reads its header only)."""
    try:
        with tifffile.TiffFile(io.BytesIO(source) if isinstance(source, bytes) else source) as tif:
            page = tif.pages[0]
            bits, fmt, samples = page.bitspersample, int(page.sampleformat), page.samplesperpixel
    except Exception:  # not a TIFF, or one tifffile cannot parse either
        return None
    kind = _SAMPLE_KINDS.get(fmt, f"sample format {fmt}")
    return f"{bits}-bit {kind} samples, {samples} a pixel"


def write_png16(
    path: Path, image: np.ndarray, compress_level: int, meta: ImageMeta | None = None
) -> None:
    """Write uint16 (H, W, 3) as a 48-bit PNG to ``path`` (already a temporary file), with
    ``meta`` in the chunks Pillow gives an 8-bit PNG."""
    height, width, _ = image.shape
    writer = _MetaWriter(width, height, greyscale=False, bitdepth=16, compression=compress_level,
                         extra_chunks=png_chunks(meta))  # fmt: skip
    with open(path, "wb") as fh:
        writer.write(fh, image.reshape(height, width * 3))


class _MetaWriter(png.Writer):
    """pypng's writer, with chunks of our own after its header (pypng has no profile or
    EXIF option); they must come before the pixels, as readers stop looking there."""

    def __init__(self, *args: object, extra_chunks: list[tuple[bytes, bytes]], **kwargs: object):
        super().__init__(*args, **kwargs)
        self.extra_chunks = extra_chunks

    def write_preamble(self, outfile: BinaryIO) -> None:
        super().write_preamble(outfile)
        for kind, data in self.extra_chunks:
            png.write_chunk(outfile, kind, data)


def write_tiff16(
    path: Path, image: np.ndarray, compress_level: int, meta: ImageMeta | None = None
) -> None:
    """Write uint16 (H, W, 3) as a 48-bit RGB TIFF to ``path`` (already a temporary file).

    Deflate with the horizontal predictor, as Pillow's libtiff, every libtiff-based program
    and tifffile without ``imagecodecs`` all read it; uncompressed if this Pillow has no
    libtiff, so that :mod:`dkt.imaging.imageio` (which decodes with Pillow first) can read it.
    ``meta``'s profile and DPI are written, and of its EXIF the main text tags (tifffile
    writes no EXIF sub-IFD).
    """
    deflate = features.check("libtiff")
    icc_profile = meta.icc_profile if meta is not None else None
    dpi = meta.dpi if meta is not None else None
    extratags = [(tag, "s", 0, value, True) for tag, value in tiff_ascii_tags(meta)]
    ours_software = any(tag == _SOFTWARE for tag, *_ in extratags)
    # Every option's None is tifffile's own default, so an option we do not set is as if
    # left out. metadata=None: no tifffile JSON description, a plain baseline TIFF.
    tifffile.imwrite(
        path,
        image,
        photometric="rgb",
        metadata=None,
        compression="adobe_deflate" if deflate else None,
        compressionargs={"level": compress_level} if deflate else None,
        predictor=True if deflate else None,
        iccprofile=icc_profile,
        resolution=dpi,
        resolutionunit="INCH" if dpi is not None else None,
        extratags=extratags or None,
        software=False if ours_software else None,  # the composite's, not tifffile's own
    )
