"""The painting behind an object's soft edge, so the edge does not keep the photo's colour.

An edge pixel of a pasted object (0 < mask < 1) holds both pictures: an editor pastes with
the mask as alpha, so it is ``m * photo + (1 - m) * painting``. Blending the result back as
``m * result + (1 - m) * composite`` therefore put ``(1 - m) * m`` of the photo's own colour
on every edge pixel: the demo's red vase kept a thin reddish rim at its mouth, a dark bowl a
blue-black fringe. Here the painting behind an edge pixel is estimated from the pure
painting (mask 0) around it, and the blend takes that instead of the composite.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

from dkt.inference.full_resolution import Box

#: How far (px) to look for pure painting around an edge pixel: an editor's anti-aliased
#: edge is 1-2 px wide. Deeper into a wide feather the composite is kept, as before.
RADIUS = 3


def painting_behind(composite: np.ndarray, mask: np.ndarray, box: Box, scale: float) -> np.ndarray:
    """``(3, h, w)`` float values in [0, 1] for ``box`` of ``composite`` (H, W, 3).

    Edge pixels (0 < mask < 1) with pure painting within :data:`RADIUS` get the mean of
    that painting; every other pixel keeps its own value.
    """
    height, width = mask.shape
    y0, y1 = max(0, box.y0 - RADIUS), min(height, box.y1 + RADIUS)
    x0, x1 = max(0, box.x0 - RADIUS), min(width, box.x1 + RADIUS)
    inner = (slice(box.y0 - y0, box.y1 - y0), slice(box.x0 - x0, box.x1 - x0))
    pixels = composite[y0:y1, x0:x1].transpose(2, 0, 1).astype(np.float32) / scale
    own = pixels[:, inner[0], inner[1]]
    near = mask[y0:y1, x0:x1]
    edge = (near > 0) & (near < 1)
    if not edge[inner].any():
        return own
    painting = (near == 0).astype(np.float32)
    size = 2 * RADIUS + 1
    weight = uniform_filter(painting, size, mode="constant")[inner]
    found = edge[inner] & (weight > 0)
    behind = own.copy()
    for channel in range(3):
        total = uniform_filter(pixels[channel] * painting, size, mode="constant")[inner]
        behind[channel][found] = total[found] / weight[found]
    return behind
