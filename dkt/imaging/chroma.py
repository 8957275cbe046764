"""Chroma speckle: fine-grained colour (a/b) detail of the object against the painting's.

A decoder that re-synthesises an object from deep features can scatter colour noise over
it, green and pink specks on a white cup or a greenish mottle on a face, that no painting
stroke explains: the colour metric (a distribution distance) barely sees it and the texture
metric (on luma) not at all. This measures it directly: the high-pass of the CIELAB a and b
channels (each pixel minus its 5x5 box mean), as an RMS over the object's inner pixels,
divided by the same RMS over the painting. About 1 means the object's colour detail is as
fine as the painting's; above 1, the object carries colour speckle the painting does not.
The same function is the training term that keeps the speckle out
(:func:`training.losses.chroma_noise_loss`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dkt.imaging.colour import srgb_to_lab_tensor

__all__ = ["BOX", "chroma_detail", "chroma_rms", "chroma_speckle", "inner"]

#: The box whose mean is taken away: detail finer than 5 px is what reads as speckle.
BOX = 5
_EPS = 1e-6


def chroma_detail(image: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) sRGB in [0,1] -> (B,2,H,W): a and b minus their local 5x5 mean."""
    ab = srgb_to_lab_tensor(image)[:, 1:]
    r = BOX // 2
    blurred = F.avg_pool2d(F.pad(ab, (r, r, r, r), mode="replicate"), BOX, stride=1)
    return ab - blurred


def inner(region: torch.Tensor) -> torch.Tensor:
    """The (B,1,H,W) region's pixels whose whole 5x5 box lies inside it (soft: its minimum).

    The box mean at the object's outline mixes object and painting, so the outline itself
    is a colour edge of neither; both sides are measured away from it.
    """
    r = BOX // 2
    return -F.max_pool2d(-F.pad(region, (r, r, r, r), value=0.0), BOX, stride=1)


def chroma_rms(detail: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per image: the RMS of ``detail`` (B,2,H,W) under ``weight`` (B,1,H,W), shape (B,)."""
    sq = (detail**2).sum(dim=1, keepdim=True) * weight
    return (sq.sum(dim=(1, 2, 3)) / (2 * weight.sum(dim=(1, 2, 3)).clamp_min(_EPS))).sqrt()


@torch.inference_mode()
def chroma_speckle(result: np.ndarray, composite: np.ndarray, mask: np.ndarray) -> float | None:
    """The object's chroma detail RMS in ``result`` over the painting's in ``composite``.

    uint8 (H,W,3) images, ``mask`` float (H,W). None where either region has no inner pixel.
    """

    def tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255

    m = torch.from_numpy(np.asarray(mask, dtype=np.float32))[None, None]
    fg, bg = inner((m >= 0.99).float()), inner((m <= 0.01).float())
    if fg.sum() < 1 or bg.sum() < 1:
        return None
    obj = chroma_rms(chroma_detail(tensor(result)), fg)
    painting = chroma_rms(chroma_detail(tensor(composite)), bg)
    return float(obj / painting.clamp_min(_EPS))
