"""Side-by-side and contact-sheet figures, so results can be judged at a glance.

Harmonization is judged by eye: a user wants the composite, the mask and the result next
to each other at the same scale, or a grid of several inputs by several models. These
helpers take the arrays the tool already has (uint8 RGB images and uint8 grey masks of any
size), scale them to a common height keeping their aspect, and label them with Pillow's
built-in font, so no font files or plotting library are needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["contact_sheet", "side_by_side"]

_FONT_SIZE = 14
_LABEL_PAD = 4  # pixels above and below a label's text
_ELLIPSIS = "..."

_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _font(size: int = _FONT_SIZE) -> _Font:
    """Pillow's default font at ``size``; the small bitmap font where sizing is missing.

    ``load_default(size=...)`` needs Pillow >= 10.1 with FreeType; older or FreeType-less
    builds still get a legible (if small) label rather than an error.
    """
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError, AttributeError):
        return ImageFont.load_default()


def _as_rgb(image: np.ndarray, index: int) -> np.ndarray:
    """Return ``image`` as uint8 HxWx3 so grey masks and colour images can sit together.

    Accepts HxW / HxWx1 grey (shown as grey RGB), HxWx3 RGB and HxWx4 RGBA (alpha dropped),
    as uint8, bool (False/True -> 0/255) or float in [0, 1].
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise ValueError(
            f"image {index}: expected HxW grey or HxWx3 RGB, got shape {tuple(a.shape)}"
        )
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"image {index}: empty image of shape {tuple(a.shape)}")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        a = np.clip(np.nan_to_num(a) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise ValueError(f"image {index}: expected uint8, bool or float in [0, 1], got {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return np.ascontiguousarray(a)


def _resize(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize to exactly ``height`` x ``width`` (a no-op when the size already matches)."""
    if rgb.shape[:2] == (height, width):
        return rgb
    img = Image.fromarray(rgb).resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(img)


def _scaled_width(shape: tuple[int, ...], height: int) -> int:
    """Width that keeps the aspect of an image of ``shape`` scaled to ``height``."""
    return max(1, round(shape[1] * height / shape[0]))


def _text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black text on light backgrounds, white on dark ones, so labels stay legible."""
    r, g, b = background
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b >= 128 else (255, 255, 255)


def _text_height(font: _Font) -> int:
    """Pixel height of one line of text (ascenders and descenders included)."""
    box = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), "Hgjy|", font=font)
    return int(box[3])


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font: _Font, max_width: int) -> str:
    """``text`` shortened with an ellipsis until it fits ``max_width`` pixels."""
    text = " ".join(str(text).split())  # one line: newlines/tabs would break the layout
    if draw.textlength(text, font=font) <= max_width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if draw.textlength(text[:mid].rstrip() + _ELLIPSIS, font=font) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + _ELLIPSIS if lo > 0 else ""


def _draw_centred(
    draw: ImageDraw.ImageDraw,
    text: str,
    font: _Font,
    box: tuple[int, int, int, int],
    fill: tuple[int, int, int],
    *,
    align: str = "centre",
) -> None:
    """Draw one line of ``text`` in ``box`` (x0, y0, x1, y1), truncated to its width."""
    x0, y0, x1, y1 = box
    text = _fit_text(draw, text, font, max(0, x1 - x0))
    if not text:
        return
    tw = draw.textlength(text, font=font)
    th = _text_height(font)
    x = x0 if align == "left" else x0 + (x1 - x0 - tw) / 2
    y = y0 + (y1 - y0 - th) / 2
    draw.text((x, y), text, font=font, fill=fill)


def side_by_side(
    images: Sequence[np.ndarray],
    labels: Sequence[str] | None = None,
    *,
    gap: int = 8,
    background: tuple[int, int, int] = (255, 255, 255),
    height: int | None = None,
) -> np.ndarray:
    """Put images in one row at a common height, each optionally labelled underneath.

    Every image is scaled to ``height`` (default: the tallest image, so nothing loses
    detail) keeping its aspect; grey images such as masks are shown as grey RGB. Panels
    are separated and framed by ``gap`` pixels of ``background``, so the result is
    ``gap + height + gap`` tall (plus one label band when ``labels`` is given) and
    ``sum(panel widths) + gap * (len(images) + 1)`` wide. Labels longer than their panel
    are truncated with an ellipsis. Returns uint8 HxWx3.
    """
    if len(images) == 0:
        raise ValueError("side_by_side needs at least one image")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"got {len(labels)} labels for {len(images)} images")
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    rgbs = [_as_rgb(im, i) for i, im in enumerate(images)]
    target = int(height) if height is not None else max(im.shape[0] for im in rgbs)
    if target < 1:
        raise ValueError(f"height must be >= 1, got {target}")
    panels = [_resize(im, target, _scaled_width(im.shape, target)) for im in rgbs]

    font = _font()
    band = _text_height(font) + 2 * _LABEL_PAD if labels is not None else 0
    total_w = sum(p.shape[1] for p in panels) + gap * (len(panels) + 1)
    total_h = target + 2 * gap + band
    sheet = Image.new("RGB", (total_w, total_h), tuple(background))
    draw = ImageDraw.Draw(sheet)
    fill = _text_colour(background)
    x = gap
    for i, panel in enumerate(panels):
        pw = panel.shape[1]
        sheet.paste(Image.fromarray(panel), (x, gap))
        if labels is not None:
            top = gap + target
            _draw_centred(draw, labels[i], font, (x, top, x + pw, top + band), fill)
        x += pw + gap
    return np.asarray(sheet).copy()


def contact_sheet(
    rows: Sequence[Sequence[np.ndarray]],
    column_labels: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    *,
    cell_height: int = 256,
    gap: int = 6,
    background: tuple[int, int, int] = (255, 255, 255),
    max_row_label_width: int = 160,
) -> np.ndarray:
    """A labelled grid: one row per input (e.g. a composite), one column per view/model.

    Each image is scaled to ``cell_height`` keeping its aspect and centred in its cell; a
    column is as wide as its widest scaled image, so panels never overlap or distort.
    Rows may have different lengths (missing cells stay blank). Column labels go above the
    grid, row labels to its left, truncated with an ellipsis (row labels to at most
    ``max_row_label_width`` pixels). Returns uint8 HxWx3.
    """
    if len(rows) == 0 or all(len(r) == 0 for r in rows):
        raise ValueError("contact_sheet needs at least one image")
    if cell_height < 1:
        raise ValueError(f"cell_height must be >= 1, got {cell_height}")
    n_cols = max(len(r) for r in rows)
    if column_labels is not None and len(column_labels) > n_cols:
        raise ValueError(f"got {len(column_labels)} column labels for {n_cols} columns")
    if row_labels is not None and len(row_labels) != len(rows):
        raise ValueError(f"got {len(row_labels)} row labels for {len(rows)} rows")

    cells = [
        [_as_rgb(im, r * n_cols + c) for c, im in enumerate(row)] for r, row in enumerate(rows)
    ]
    scaled = [
        [_resize(im, cell_height, _scaled_width(im.shape, cell_height)) for im in row]
        for row in cells
    ]
    col_w = [
        max((row[c].shape[1] for row in scaled if c < len(row)), default=cell_height)
        for c in range(n_cols)
    ]

    font = _font()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    band = _text_height(font) + 2 * _LABEL_PAD if column_labels is not None else 0
    label_w = 0
    if row_labels is not None:
        widest = max((measure.textlength(str(t), font=font) for t in row_labels), default=0)
        label_w = int(min(widest, max_row_label_width)) + 2 * _LABEL_PAD

    total_w = gap + label_w + sum(col_w) + gap * n_cols
    total_h = gap + band + len(rows) * (cell_height + gap)
    sheet = Image.new("RGB", (total_w, total_h), tuple(background))
    draw = ImageDraw.Draw(sheet)
    fill = _text_colour(background)
    x_cols = []
    x = gap + label_w
    for w in col_w:
        x_cols.append(x)
        x += w + gap

    if column_labels is not None:
        for c, text in enumerate(column_labels):
            _draw_centred(
                draw, text, font, (x_cols[c], gap, x_cols[c] + col_w[c], gap + band), fill
            )
    for r, row in enumerate(scaled):
        y = gap + band + r * (cell_height + gap)
        if row_labels is not None:
            box = (gap + _LABEL_PAD, y, gap + label_w - _LABEL_PAD, y + cell_height)
            _draw_centred(draw, row_labels[r], font, box, fill, align="left")
        for c, im in enumerate(row):
            off = (col_w[c] - im.shape[1]) // 2
            sheet.paste(Image.fromarray(im), (x_cols[c] + off, y))
    return np.asarray(sheet).copy()
