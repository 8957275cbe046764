"""16-bit colour images, which Pillow cannot hold: reading them at full depth, writing them back.

Pillow has no 16-bit RGB mode: it opens a 48-bit PNG or TIFF as 8-bit RGB (keeping the high
byte of every sample) and cannot save one at all. A 16-bit scan then came back from
``dkt harmonize`` as 8 bits, and its background was no longer the input's. This module reads
the samples themselves for the two layouts that cover nearly every such file, using only
numpy and zlib, and writes 16-bit results:

* PNG, colour type 2 (RGB) or 6 (RGBA), bit depth 16, not interlaced: the zlib stream is
  inflated and un-filtered here. Rows filtered with None, Sub or Up are undone a row at a
  time; Average and Paeth depend on the pixel to the left as well as the row above, so
  those images are undone along anti-diagonals, whose pixels depend only on the previous
  two diagonals (``height + width`` numpy steps, not one per pixel).
* TIFF whose pixel data Pillow describes as uncompressed ``raw`` strips of ``RGB;16L`` or
  ``RGB;16B``: the samples are read at the offsets Pillow found.

Anything else (interlaced or transparent-keyed PNGs, compressed TIFFs) returns ``None`` and
is read by Pillow at 8 bits, as before. Every file reaching here has already been opened and
fully decoded by Pillow (:mod:`dktnet.imageio`), so it is known to be whole.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["read_wide_rgb", "write_png16", "write_tiff16"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {2: 3, 6: 4}  # colour type -> samples per pixel
_TIFF_RAWMODES = {"RGB;16L": "<u2", "RGB;16B": ">u2"}


def read_wide_rgb(path: Path, img: Image.Image, tiles: list) -> np.ndarray | None:
    """The 16-bit samples of ``img`` (opened from ``path``) as uint16 (H, W, 3 or 4), raw
    orientation; ``None`` when the file is not one of the 16-bit layouts read here.

    ``tiles``: ``img.tile`` as it was before decoding (Pillow empties it once loaded).
    """
    if img.format == "PNG":
        return _read_png16(path)
    if img.format == "TIFF":
        return _read_tiff16(path, img.size, tiles)
    return None


# --------------------------------------------------------------------------- PNG


def _png_chunks(data: bytes) -> dict[bytes, list[bytes]]:
    chunks: dict[bytes, list[bytes]] = {}
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunks.setdefault(kind, []).append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
        if kind == b"IEND":
            break
    return chunks


def _read_png16(path: Path) -> np.ndarray | None:
    data = path.read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        return None
    chunks = _png_chunks(data)
    if b"IHDR" not in chunks or b"tRNS" in chunks:
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"][0])
    if depth != 16 or colour not in _PNG_CHANNELS or interlace:
        return None
    channels = _PNG_CHANNELS[colour]
    bpp = 2 * channels
    raw = np.frombuffer(zlib.decompress(b"".join(chunks.get(b"IDAT", []))), np.uint8)
    rows = raw[: height * (width * bpp + 1)].reshape(height, width * bpp + 1)
    filters = rows[:, 0]
    lines = rows[:, 1:].reshape(height, width, bpp)
    samples = _unfilter(filters, lines)
    wide = samples.reshape(height, width * bpp).view(">u2").reshape(height, width, channels)
    return wide.astype(np.uint16)


def _unfilter(filters: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Undo PNG filtering of ``lines`` (H, W, bytes per pixel) with per-row ``filters``."""
    if filters.size and int(filters.max()) <= 2:
        return _unfilter_rows(filters, lines)
    return _unfilter_diagonals(filters, lines)


def _unfilter_rows(filters: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """None, Sub and Up only: each row from the row above, a whole row per step."""
    out = np.empty_like(lines)
    previous = np.zeros_like(lines[0])
    for y, kind in enumerate(filters):
        if kind == 1:  # Sub: a running sum along the row, per byte position, mod 256
            out[y] = np.cumsum(lines[y], axis=0, dtype=np.uint8)
        elif kind == 2:  # Up
            out[y] = lines[y] + previous
        else:
            out[y] = lines[y]
        previous = out[y]
    return out


def _unfilter_diagonals(filters: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Any filter: pixel (y, x) needs (y, x-1), (y-1, x) and (y-1, x-1), all on earlier
    anti-diagonals, so each diagonal is one vectorised step."""
    height, width, bpp = lines.shape
    done = np.zeros((height + 1, width + 1, bpp), np.int16)  # a zero row and column first
    kinds = filters.astype(np.int16)
    for d in range(height + width - 1):
        ys = np.arange(max(0, d - width + 1), min(height - 1, d) + 1)
        xs = d - ys
        a = done[ys + 1, xs]  # left
        b = done[ys, xs + 1]  # up
        c = done[ys, xs]  # up-left
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        kind = kinds[ys][:, None]
        predicted = np.select(
            [kind == 1, kind == 2, kind == 3, kind == 4], [a, b, (a + b) // 2, paeth], 0
        )
        done[ys + 1, xs + 1] = (lines[ys, xs].astype(np.int16) + predicted) & 0xFF
    return done[1:, 1:].astype(np.uint8)


def write_png16(path: Path, image: np.ndarray, compress_level: int) -> None:
    """Write uint16 (H, W, 3) as a 48-bit PNG to ``path`` (already a temporary file).

    Rows are Up-filtered (the difference to the row above), which zlib compresses far
    better than raw samples and which :func:`_unfilter_rows` undoes in one step a row.
    """
    height, width, _ = image.shape
    samples = np.ascontiguousarray(image, dtype=">u2").view(np.uint8).reshape(height, -1)
    filtered = samples.copy()
    filtered[1:] -= samples[:-1]  # uint8 arithmetic wraps: the Up filter, mod 256
    kinds = np.full((height, 1), 2, np.uint8)
    kinds[0] = 0
    body = zlib.compress(np.hstack([kinds, filtered]).tobytes(), compress_level)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    with open(path, "wb") as fh:
        fh.write(_PNG_SIGNATURE)
        for kind, chunk in ((b"IHDR", header), (b"IDAT", body), (b"IEND", b"")):
            fh.write(struct.pack(">I", len(chunk)) + kind + chunk)
            fh.write(struct.pack(">I", zlib.crc32(kind + chunk) & 0xFFFFFFFF))


# --------------------------------------------------------------------------- TIFF


def _read_tiff16(path: Path, size: tuple[int, int], tiles: list) -> np.ndarray | None:
    """Uncompressed 48-bit RGB strips, at the offsets Pillow's TIFF reader found."""
    if not tiles:
        return None
    width, height = size
    out = np.empty((height, width, 3), np.uint16)
    covered = 0
    with open(path, "rb") as fh:
        for tile in tiles:
            codec, extents, offset, args = tile[0], tile[1], tile[2], tile[3]
            rawmode = args[0] if isinstance(args, tuple) else args
            if codec != "raw" or rawmode not in _TIFF_RAWMODES:
                return None
            x0, y0, x1, y1 = extents
            count = (x1 - x0) * (y1 - y0) * 3
            fh.seek(offset)
            data = np.frombuffer(fh.read(2 * count), _TIFF_RAWMODES[rawmode])
            if data.size != count:
                return None
            out[y0:y1, x0:x1] = data.reshape(y1 - y0, x1 - x0, 3)
            covered += (x1 - x0) * (y1 - y0)
    return out if covered == width * height else None


def write_tiff16(path: Path, image: np.ndarray) -> None:
    """Write uint16 (H, W, 3) as an uncompressed little-endian 48-bit baseline TIFF."""
    height, width, _ = image.shape
    pixels = np.ascontiguousarray(image, dtype="<u2").tobytes()
    count = 12
    ifd = 8
    extra = ifd + 2 + count * 12 + 4  # BitsPerSample, then the two resolutions, then pixels
    bits, xres, yres, start = extra, extra + 6, extra + 14, extra + 22
    short, long_, rational = 3, 4, 5
    entries = [
        (256, long_, 1, width),  # ImageWidth
        (257, long_, 1, height),  # ImageLength
        (258, short, 3, bits),  # BitsPerSample 16, 16, 16
        (259, short, 1, 1),  # Compression: none
        (262, short, 1, 2),  # PhotometricInterpretation: RGB
        (273, long_, 1, start),  # StripOffsets
        (277, short, 1, 3),  # SamplesPerPixel
        (278, long_, 1, height),  # RowsPerStrip: one strip
        (279, long_, 1, len(pixels)),  # StripByteCounts
        (282, rational, 1, xres),  # XResolution 72/1
        (283, rational, 1, yres),  # YResolution 72/1
        (284, short, 1, 1),  # PlanarConfiguration: chunky
    ]
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd) + struct.pack("<H", count))
    for tag, kind, n, value in entries:
        if kind == short and n == 1:
            out += struct.pack("<HHIHH", tag, kind, n, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, n, value)
    out += struct.pack("<I", 0)  # no next IFD
    out += struct.pack("<HHH", 16, 16, 16) + struct.pack("<IIII", 72, 1, 72, 1)
    with open(path, "wb") as fh:
        fh.write(bytes(out) + pixels)
