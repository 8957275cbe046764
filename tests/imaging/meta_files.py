"""Images with the metadata a painting may carry: a wide-gamut ICC profile, DPI and EXIF.

No profile file ships with the system, so :func:`wide_gamut_profile` builds a real one (a
Display P3 matrix/TRC profile, ICC v2, that LittleCMS accepts); the EXIF has a rotation,
a maker and a date in its EXIF sub-IFD, so a result can be checked for all three.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

ORIENTATION = 0x0112
EXIF_IFD = 0x8769
DATE_TAKEN = 0x9003
MAKE = 0x010F


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + b"\0" * 4 + _s15(x) + _s15(y) + _s15(z)


def _desc(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return (b"desc" + b"\0" * 4 + struct.pack(">I", len(ascii_)) + ascii_
            + b"\0" * 8 + b"\0" * 3 + b"\0" * 67)  # fmt: skip


def wide_gamut_profile() -> bytes:
    """A Display P3 RGB profile (D50-adapted primaries, gamma 2.2 curves)."""
    gamma = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(2.2 * 256)) + b"\0\0"
    tags = [
        (b"desc", _desc("dkt test Display P3")),
        (b"wtpt", _xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _xyz(0.5151, 0.2412, -0.0011)),
        (b"gXYZ", _xyz(0.2920, 0.6922, 0.0419)),
        (b"bXYZ", _xyz(0.1571, 0.0666, 0.7841)),
        (b"rTRC", gamma),
        (b"gTRC", gamma),
        (b"bTRC", gamma),
        (b"cprt", b"text" + b"\0" * 4 + b"public domain\0\0\0\0"),
    ]
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table, data = struct.pack(">I", len(tags)), b""
    for signature, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = 128 + table_size + len(data)
    header = (struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ "
              + struct.pack(">6H", 2024, 1, 1, 0, 0, 0) + b"acspAPPL" + b"\0" * 24
              + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"\0" * 48)  # fmt: skip
    assert len(header) == 128
    return header + table + data


def exif_bytes(orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[MAKE] = "dkt test camera"
    exif.get_ifd(EXIF_IFD)[DATE_TAKEN] = "2024:05:06 07:08:09"
    return exif.tobytes()


def save_with_meta(path: Path, pixels: np.ndarray, *, dpi=(300, 150), orientation=6) -> Path:
    """``pixels`` stored so that they read back as themselves: turned by the inverse of
    ``orientation``, with the profile, DPI (stated for the stored pixels) and EXIF."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = Image.fromarray(pixels)
    inverse = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270, 3: Image.ROTATE_180}
    if orientation in inverse:
        stored = stored.transpose(inverse[orientation])
    options: dict[str, object] = {"icc_profile": wide_gamut_profile(),
                                  "exif": exif_bytes(orientation)}  # fmt: skip
    if path.suffix.lower() != ".webp":
        options["dpi"] = dpi
    if path.suffix.lower() in (".jpg", ".jpeg"):
        options.update(quality=100, subsampling=0)
    if path.suffix.lower() == ".webp":
        options["lossless"] = True
    stored.save(path, **options)
    return path


def metadata_of(source: Path | bytes) -> tuple[bytes | None, tuple | None, Image.Exif]:
    """(icc_profile, dpi, EXIF) of an image file or encoded image, as a viewer reads them."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
        return img.info.get("icc_profile"), img.info.get("dpi"), img.getexif()
