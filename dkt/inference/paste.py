"""Pasting a cut-out onto a painting: the composite and mask the harmonizer needs.

Most users do not have a mask; they have an object cut out of a photo (a PNG with
transparency, as background-removal tools write) and a painting to put it on. The cut-out's
alpha is the mask, so the two never disagree and its soft, anti-aliased edge stays soft.
Where alpha is 0 the composite is the painting byte for byte, which the harmonizer's final
blend keeps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dkt.errors import ImageInputError, PasteError, ScaledTooLargeError
from dkt.imaging.imageio import (
    read_alpha_composite,
    read_alpha_composite_bytes,
    read_image,
)
from dkt.limits import DEFAULT_MAX_PIXELS

#: The longest side a scaled cut-out may have: Pillow's images count pixels in C ints.
MAX_SIDE = 2**31 - 1


@dataclass(frozen=True)
class Placement:
    """Where the scaled cut-out's top-left corner lands, and its scaled size, in pixels."""

    x: int
    y: int
    width: int
    height: int


def place(
    painting_hw: tuple[int, int],
    cutout_hw: tuple[int, int],
    at: tuple[int, int] | None = None,
    scale: float = 1.0,
) -> Placement:
    """The placement of a ``cutout_hw`` object scaled by ``scale`` at ``at`` (None: centred).

    Refuses, with the numbers, a scale that shrinks the object below one pixel and a
    position that puts it wholly outside the painting: both would "succeed" with an empty
    mask and a result identical to the painting. A scale that is not a finite number, or
    makes a side longer than an image can have, is refused too (it was an OverflowError).
    """
    if not (math.isfinite(scale) and scale > 0):
        raise PasteError(f"scale must be above 0 and finite, got {scale}")
    (ph, pw), (ch, cw) = painting_hw, cutout_hw
    if max(cw, ch) * scale > MAX_SIDE:
        raise ScaledTooLargeError(
            f"scale {scale:g} makes the {cw}x{ch} cut-out longer than an image can be "
            f"({MAX_SIDE} px a side)"
        )
    width, height = round(cw * scale), round(ch * scale)
    if width < 1 or height < 1:
        raise PasteError(
            f"scale {scale} makes the {cw}x{ch} cut-out {width}x{height} px: it vanishes"
        )
    x, y = ((pw - width) // 2, (ph - height) // 2) if at is None else at
    if x >= pw or y >= ph or x + width <= 0 or y + height <= 0:
        raise PasteError(
            f"position {x},{y} puts the {width}x{height} object wholly outside the "
            f"{pw}x{ph} painting"
        )
    return Placement(x, y, width, height)


def paste(
    painting: np.ndarray,
    cutout: np.ndarray,
    at: tuple[int, int] | None = None,
    scale: float = 1.0,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, np.ndarray]:
    """``painting`` uint8 (H,W,3) and ``cutout`` uint8 (h,w,4) -> composite uint8, mask float32.

    The cut-out is resized with premultiplied alpha (Pillow's Lanczos on RGBA), so no dark
    fringe appears at its edge; a part outside the painting is cropped. The composite is
    ``painting * (1 - alpha) + cutout * alpha``, rounded; the mask is alpha in [0, 1].

    >>> import numpy as np
    >>> painting = np.zeros((40, 60, 3), np.uint8)
    >>> cutout = np.full((10, 10, 4), 255, np.uint8)
    >>> composite, mask = paste(painting, cutout, at=(5, 5))
    >>> int(mask.sum()), composite[6, 6].tolist(), composite[0, 0].tolist()
    (100, [255, 255, 255], [0, 0, 0])
    """
    if painting.ndim != 3 or painting.shape[2] != 3 or painting.dtype != np.uint8:
        raise PasteError(f"painting must be uint8 (H, W, 3), got {painting.dtype} {painting.shape}")
    if cutout.ndim != 3 or cutout.shape[2] != 4 or cutout.dtype != np.uint8:
        raise PasteError(f"cut-out must be uint8 RGBA (h, w, 4), got {cutout.dtype} {cutout.shape}")
    spot = place(painting.shape[:2], cutout.shape[:2], at, scale)
    if max_pixels is not None and spot.width * spot.height > max_pixels:
        raise ScaledTooLargeError(
            f"scale {scale:g} makes the cut-out {spot.width}x{spot.height}, over the limit of "
            f"{max_pixels} pixels (too many pixels)"
        )
    layer = cutout
    if (spot.height, spot.width) != cutout.shape[:2]:
        resized = Image.fromarray(cutout, "RGBA").resize(
            (spot.width, spot.height), Image.Resampling.LANCZOS
        )
        layer = np.asarray(resized)
    ph, pw = painting.shape[:2]
    x0, y0 = max(spot.x, 0), max(spot.y, 0)
    x1, y1 = min(spot.x + spot.width, pw), min(spot.y + spot.height, ph)
    part = layer[y0 - spot.y : y1 - spot.y, x0 - spot.x : x1 - spot.x]
    mask = np.zeros((ph, pw), np.float32)
    mask[y0:y1, x0:x1] = part[:, :, 3] / np.float32(255.0)
    if not mask.any():
        raise PasteError(
            f"the object's visible part at {spot.x},{spot.y} (scale {scale}) is fully "
            "transparent: nothing to paste"
        )
    composite = painting.copy()
    alpha = part[:, :, 3:].astype(np.uint32)
    under = painting[y0:y1, x0:x1].astype(np.uint32)
    blended = (part[:, :, :3].astype(np.uint32) * alpha + under * (255 - alpha) + 127) // 255
    composite[y0:y1, x0:x1] = blended.astype(np.uint8)
    return composite, mask


def read_cutout(path: str | Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A cut-out file as uint8 RGBA; refused, naming the file, if it has no transparency."""
    return _as_cutout(lambda: read_alpha_composite(path, max_pixels=max_pixels))


def cutout_from_bytes(
    data: bytes, name: str = "cutout", *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """:func:`read_cutout` for an encoded image in memory (an upload); errors name ``name``."""
    return _as_cutout(lambda: read_alpha_composite_bytes(data, name, max_pixels=max_pixels))


def _as_cutout(read: Callable[[], tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """RGBA from ``read``'s colours and alpha, its no-alpha error said as a cut-out's."""
    try:
        rgb, alpha = read()
    except ImageInputError as exc:
        if "alpha" not in exc.reason:
            raise
        raise ImageInputError(
            exc.path,
            f"is not a cut-out: {exc.reason.replace('; pass --mask FILE', '')} "
            "(save the object with a transparent background, e.g. as PNG)",
        ) from None
    return np.dstack([rgb, np.round(alpha * 255).astype(np.uint8)])


def paste_files(
    painting: str | Path,
    cutout: str | Path,
    at: tuple[int, int] | None = None,
    scale: float = 1.0,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`paste` on two image files; errors name the file (or the placement) at fault."""
    background = read_image(painting, max_pixels=max_pixels)
    cut = read_cutout(cutout, max_pixels=max_pixels)
    return paste(background, cut, at, scale, max_pixels=max_pixels)
