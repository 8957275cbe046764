"""Carrying a harmonization made at working resolution back to the full-resolution image.

The network sees a downsampled composite; the user wants their 4000x3000 scan back at
4000x3000, with the object's full-resolution detail. Two ways are offered, both applied
in horizontal strips so that memory stays a few times the size of the uint8 image, never
a dozen full-resolution float maps:

``residual``
    Upsample the low-resolution *change* (output minus input) bilinearly and add it to the
    full-resolution composite. Simple, and exact for a constant shift, but the change is a
    smooth low-resolution field: full-resolution detail passes through with gain 1 while the
    model re-coloured or re-contrasted everything it could see, so fine strokes keep the
    photo's contrast and colours and edges get a soft halo.

``guided`` (default)
    A local affine colour model, in the spirit of the fast guided filter (He and Sun, 2015):
    at working resolution, fit for every pixel a 3x3 colour matrix and an offset that map
    the low-resolution composite to the low-resolution output over a small window (ridge
    regression towards the identity, weighted by the covering mask so the painting around
    the object does not dilute the fit), average the coefficients over the window, upsample
    them bilinearly and apply them to the full-resolution composite. Full-resolution detail
    is then re-coloured the way its neighbourhood was. What the affine model cannot explain
    at working resolution (strokes the network painted) is kept, upsampled, as with
    ``residual``; at a working size equal to the input size the result is the network's
    output exactly.

The regulariser pulls the matrix towards the identity, not towards zero as in the textbook
guided filter: where the low-resolution composite is flat (detail too fine to be seen at
working size) the fit is underdetermined, and the identity passes that detail through
unchanged instead of erasing it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dkt.limits import UPSAMPLERS

#: Window radius (working-resolution pixels) of the local colour fit: 7x7 windows hold 49
#: samples for 12 unknowns, small enough to follow the object's colour regions.
GUIDED_RADIUS = 3
#: Ridge weight per unit of colour variance: a window whose colours vary by less than about
#: 3/255 (std) keeps close to the identity rather than fitting noise.
GUIDED_EPS = 1e-4

#: Full-resolution pixels processed per strip: the dozen float maps of a strip then take
#: about 12 MB, whatever the image size, at no measurable cost in speed.
STRIP_PIXELS = 1 << 18


@dataclass(frozen=True)
class Box:
    """A rectangle of rows ``y0:y1`` and columns ``x0:x1``."""

    y0: int
    y1: int
    x0: int
    x1: int


@dataclass(frozen=True)
class LowResTransform:
    """A per-pixel colour transform at working resolution, applied at full resolution.

    ``out_j = sum_i matrix[i, j] * in_i + offset_j`` at every pixel, with the coefficient
    maps upsampled bilinearly to full size. ``matrix`` is ``(3, 3, h, w)`` or ``None`` for
    the identity (the residual method); ``offset`` is ``(3, h, w)``; all float32. They cover
    only the part of the working-resolution grid (of shape ``low_shape``) that starts at
    ``origin``: the object's surroundings, since nothing else is ever transformed.
    """

    matrix: np.ndarray | None
    offset: np.ndarray
    low_shape: tuple[int, int]
    origin: tuple[int, int] = (0, 0)

    def apply(self, pixels: np.ndarray, box: Box, full_shape: tuple[int, int]) -> np.ndarray:
        """Transform the full-resolution ``pixels`` (3, n, m) float32 lying at ``box``."""
        offset = self._upsample(self.offset, box, full_shape)
        if self.matrix is None:
            return pixels + offset
        h, w = self.matrix.shape[-2:]
        matrix = self._upsample(self.matrix.reshape(9, h, w), box, full_shape)
        matrix = matrix.reshape(3, 3, *pixels.shape[1:])
        out = offset
        for i in range(3):
            out += matrix[i] * pixels[i]
        return out

    def _upsample(self, low: np.ndarray, box: Box, full_shape: tuple[int, int]) -> np.ndarray:
        """``box`` of the bilinear upsampling of ``low`` (C, h, w) to ``full_shape``."""
        r0, r1, fy = source_index(full_shape[0], self.low_shape[0], box.y0, box.y1)
        c0, c1, fx = source_index(full_shape[1], self.low_shape[1], box.x0, box.x1)
        oy, ox = self.origin
        r0, r1, c0, c1 = r0 - oy, r1 - oy, c0 - ox, c1 - ox
        rows = low[:, r0] * (1.0 - fy)[:, None] + low[:, r1] * fy[:, None]  # (C, n, w)
        out = rows[..., c0]
        out *= 1.0 - fx
        out += rows[..., c1] * fx
        return out


def fit_transform(
    method: str,
    low_in: np.ndarray,
    low_out: np.ndarray,
    weight: np.ndarray,
    full_shape: tuple[int, int],
    box: Box,
) -> LowResTransform:
    """The ``method`` transform from the working-resolution input and output (3, h, w).

    Only the working-resolution pixels that full-resolution ``box`` (the object's bounds)
    reads are fitted, plus the margin the guided windows need to give exactly what a fit
    over the whole image would: an object covering a fifth of the frame costs a fifth.
    """
    low_shape = (low_in.shape[1], low_in.shape[2])
    margin = 2 * GUIDED_RADIUS if method == "guided" else 0
    rows = source_index(full_shape[0], low_shape[0], box.y0, box.y1)
    cols = source_index(full_shape[1], low_shape[1], box.x0, box.x1)
    ly0, ly1 = max(0, int(rows[0][0]) - margin), min(low_shape[0], int(rows[1][-1]) + 1 + margin)
    lx0, lx1 = max(0, int(cols[0][0]) - margin), min(low_shape[1], int(cols[1][-1]) + 1 + margin)
    crop = (slice(None), slice(ly0, ly1), slice(lx0, lx1))
    if method == "guided":
        matrix, offset = guided_coefficients(low_in[crop], low_out[crop], weight[crop[1:]])
    elif method == "residual":
        matrix, offset = None, (low_out[crop] - low_in[crop]).astype(np.float32)
    else:
        raise ValueError(f"unknown upsampling method {method!r} (use {', '.join(UPSAMPLERS)})")
    return LowResTransform(matrix, offset, low_shape, (ly0, lx0))


def guided_coefficients(
    low_in: np.ndarray,
    low_out: np.ndarray,
    weight: np.ndarray,
    *,
    radius: int = GUIDED_RADIUS,
    eps: float = GUIDED_EPS,
) -> tuple[np.ndarray, np.ndarray]:
    """Local affine colour maps ``low_in -> low_out`` (both (3,h,w)) fitted where ``weight`` > 0.

    Returns ``matrix`` (3,3,h,w) and ``offset`` (3,h,w), float32. ``weight`` ((h,w), the
    covering mask) restricts each window's fit to the object; a window holding no object
    pixel gets the identity, which is harmless since those pixels are painting and the
    final blend keeps the painting anyway.

    Every window sum of a stage is taken in one box filter over a stack of maps, and the
    3x3 algebra runs on whole (h, w) planes: this runs on a writer thread beside the model
    in a folder run, where a few dozen small numpy calls per map cost as much as the maths.
    """
    guide = low_in.astype(np.float32)
    target = low_out.astype(np.float32)
    w = weight.astype(np.float32)[None]
    h, wd = guide.shape[-2:]
    wg = w * guide
    sums = _box(
        np.concatenate(
            [
                w,
                wg,
                w * target,
                (wg[:, None] * guide[None]).reshape(9, h, wd),
                (wg[:, None] * target[None]).reshape(9, h, wd),
            ]
        ),
        radius,
    )
    valid = sums[0] > 1e-6
    means = sums[1:] / np.where(valid, sums[0], 1.0)
    mean_in, mean_out = means[0:3], means[3:6]
    identity = np.eye(3)[..., None, None]
    ridge = eps * identity
    cov_in = means[6:15].reshape(3, 3, h, wd) - mean_in[:, None] * mean_in[None] + ridge
    cov_in_out = means[15:24].reshape(3, 3, h, wd) - mean_in[:, None] * mean_out[None] + ridge
    # (cov + eps I) A = cov_io + eps I: ridge regression of the matrix towards the identity,
    # solved in float64 (the ridge is), where near-grey windows make the 3x3s ill-conditioned.
    matrix = (_inverse3(cov_in)[:, :, None] * cov_in_out[None]).sum(axis=1)  # [i, j]
    matrix = np.where(valid, matrix, identity)

    # Average every window's matrix over the windows covering a pixel (as the guided
    # filter does), counting only windows that saw the object, so the identity of the far
    # painting does not bleed into the object's border.
    v = valid.astype(np.float32)[None]
    smooth = _box(np.concatenate([v, v * matrix.reshape(9, h, wd).astype(np.float32)]), radius)
    has = smooth[0] > 1e-6
    smooth_m = smooth[1:].reshape(3, 3, h, wd) / np.where(has, smooth[0], 1.0)
    smooth_m = np.where(has, smooth_m, identity)

    # The offset is whatever the smoothed matrix leaves unexplained: the window-mean offset
    # plus what no colour model explains (painted texture), so at scale 1 the transform
    # reproduces the network's output exactly.
    offset = target - (smooth_m * guide[:, None]).sum(axis=0)
    return smooth_m.astype(np.float32), offset.astype(np.float32)


def _inverse3(a: np.ndarray) -> np.ndarray:
    """Inverses of symmetric positive-definite 3x3 matrices stored as planes (3, 3, h, w).

    The adjugate, written out: several times faster than a batched LU solve for 3x3 blocks;
    the ridge keeps every determinant well away from zero.
    """
    a00, a01, a02 = a[0, 0], a[0, 1], a[0, 2]
    a11, a12, a22 = a[1, 1], a[1, 2], a[2, 2]
    c00 = a11 * a22 - a12 * a12
    c01 = a02 * a12 - a01 * a22
    c02 = a01 * a12 - a02 * a11
    c11 = a00 * a22 - a02 * a02
    c12 = a01 * a02 - a00 * a12
    c22 = a00 * a11 - a01 * a01
    det = a00 * c00 + a01 * c01 + a02 * c02
    adj = np.stack([c00, c01, c02, c01, c11, c12, c02, c12, c22]).reshape(3, 3, *det.shape)
    return adj / det


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    """Sums of each map of ``x`` (c, h, w) over the (2r+1)^2 window around each pixel.

    Windows are clipped at the edges. Each sum adds its 2r+1 neighbours directly, one axis
    at a time, rather than differencing running sums: no error builds up across the image,
    so float32 is exact enough for the variances of 8-bit colours, at half the memory
    traffic of float64.
    """
    return _window_sums(_window_sums(x, radius, axis=1), radius, axis=2)


def _window_sums(x: np.ndarray, radius: int, *, axis: int) -> np.ndarray:
    """Sums over ``[i - radius, i + radius]`` along ``axis``; zeros beyond the edges."""
    length = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    pad[axis] = (radius, radius)
    padded = np.pad(x, pad)

    def shifted(shift: int) -> np.ndarray:
        index = [slice(None)] * x.ndim
        index[axis] = slice(shift, shift + length)
        return padded[tuple(index)]

    out = shifted(0).copy()
    for shift in range(1, 2 * radius + 1):
        out += shifted(shift)
    return out


def source_index(
    out_size: int, in_size: int, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbour indices and weights of bilinear upsampling (``align_corners=False``).

    For output pixels ``start:stop``; the convention of ``torch.nn.functional.interpolate``
    and Pillow: pixel centres are aligned, so a full-resolution pixel blends the two nearest
    working-resolution centres.
    """
    dst = np.arange(start, stop, dtype=np.float64)
    src = np.maximum((dst + 0.5) * (in_size / out_size) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    frac = (src - i0).astype(np.float32)
    return i0, i1, frac


def bounds(mask: np.ndarray) -> Box | None:
    """The smallest box holding every non-zero pixel of ``mask`` (H, W); ``None`` if none."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return Box(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)


def strips(box: Box) -> list[Box]:
    """``box`` cut into row strips of about :data:`STRIP_PIXELS` pixels each."""
    step = max(1, STRIP_PIXELS // max(1, box.x1 - box.x0))
    return [Box(y, min(box.y1, y + step), box.x0, box.x1) for y in range(box.y0, box.y1, step)]
