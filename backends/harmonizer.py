"""From images to images through any backend.

The network runs at a working resolution (long side ``size``). The result comes back at the
input's full resolution by upsampling the low-resolution *change* (output minus input) and
adding it to the full-resolution composite, so the object keeps its full-resolution detail.
Finally every pixel where the mask is 0 is copied byte for byte from the input: the painting
is never altered, whatever the backend's arithmetic.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from backends.base import Backend
from dktnet.errors import DktError

MIN_SIDE = 8


class EmptyBackgroundError(DktError):
    """The mask covers everything: there is no painting to take the style from."""


def working_shape(height: int, width: int, size: int | None) -> tuple[int, int]:
    """(h, w) with the long side scaled to ``size``, aspect kept; ``None`` or 0: unchanged."""
    if not size:
        return height, width
    scale = size / max(height, width)
    return max(MIN_SIDE, round(height * scale)), max(MIN_SIDE, round(width * scale))


def covering_mask(mask: np.ndarray) -> np.ndarray:
    """Binarise and dilate a downsampled (1,H,W) mask by one pixel.

    A downsampled mask is fractional along the object's border, which would apply only part
    of the model's change there and leave a fringe of the original colours once the change
    is upsampled. The covering mask makes the change whole up to just past the border; the
    full-resolution mask then decides the final blend.
    """
    hard = torch.from_numpy((mask > 0).astype(np.float32))[None]
    return F.max_pool2d(hard, kernel_size=3, stride=1, padding=1)[0].numpy()


def resize(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear, antialiased resize of a (C,H,W) float32 array."""
    if array.shape[-2:] == shape:
        return array
    t = torch.from_numpy(np.ascontiguousarray(array))[None]
    out = F.interpolate(t, size=shape, mode="bilinear", align_corners=False, antialias=True)
    return out[0].numpy()


class Harmonizer:
    """Harmonize full-size uint8 images with a backend at a working resolution."""

    def __init__(self, backend: Backend, size: int | None = None) -> None:
        self.backend = backend
        self.size = size if size is not None else backend.working_size

    def harmonize(self, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``composite`` uint8 (H,W,3), ``mask`` float32 (H,W) in [0,1] -> uint8 (H,W,3)."""
        if not mask.any():
            return composite.copy()
        if mask.min() >= 1.0:
            raise EmptyBackgroundError("the mask covers the whole image: no painting to match")
        height, width = mask.shape
        comp = composite.transpose(2, 0, 1).astype(np.float32) / 255.0
        m = mask[None].astype(np.float32)
        shape = working_shape(height, width, self.size)
        if shape == (height, width):
            result = self.backend.run(comp[None], m[None])[0]
        else:
            comp_low = resize(comp, shape)
            mask_low = covering_mask(resize(m, shape))
            change = self.backend.run(comp_low[None], mask_low[None])[0] - comp_low
            result = np.clip(comp + resize(change, (height, width)), 0.0, 1.0)
            result = comp * (1.0 - m) + result * m
        out = np.clip(np.rint(result * 255.0), 0, 255).astype(np.uint8).transpose(1, 2, 0)
        return np.where(mask[..., None] > 0, out, composite)
