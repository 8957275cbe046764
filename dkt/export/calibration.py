"""Calibration composites for an int8 export, brought to what the network sees.

Each ``<key>_comp.*`` / ``<key>_mask.*`` pair of a folder is scaled to the working size the
way :class:`dkt.inference.harmonizer.Harmonizer` scales it (long side, aspect kept, never
upsampled), shrunk further only where the export's shapes are smaller, then padded to the one
shape the calibrator takes (:func:`dkt.export.quantize.calibration_shape`): activation
ranges measured at another scale would not be the ones inference meets.
"""

from __future__ import annotations

from pathlib import Path

from backends.shapes import ShapeProfile
from dkt.errors import BackendError
from dkt.export.parity import folder_images
from dkt.export.quantize import (
    MAX_CALIBRATION_IMAGES,
    Sample,
    calibration_shape,
    pad_sample,
)
from dkt.inference.harmonizer import downsample_image, downsample_mask, working_shape


def calibration_samples(folder: Path, working_size: int, profile: ShapeProfile) -> list[Sample]:
    """Up to :data:`MAX_CALIBRATION_IMAGES` pairs from ``folder``, as an int8 export of
    ``profile`` is calibrated on them."""
    box = calibration_shape(profile, working_size)[1:]
    if not folder.is_dir():
        raise BackendError(f"{folder}: not a folder (--calibration takes a folder of composites)")
    pairs = folder_images(folder, limit=MAX_CALIBRATION_IMAGES)
    if not pairs:
        raise BackendError(f"{folder}: no <key>_comp.* / <key>_mask.* pairs to calibrate on")
    samples = []
    for _, composite, mask in pairs:
        height, width = mask.shape
        shape = _fit(working_shape(height, width, working_size), box)
        samples.append(
            pad_sample(downsample_image(composite, shape), downsample_mask(mask, shape), box)
        )
    return samples


def _fit(shape: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """``shape`` scaled down (aspect kept) until it fits in ``box``; unchanged if it does."""
    scale = min(box[0] / shape[0], box[1] / shape[1], 1.0)
    h, w = (max(1, min(limit, round(side * scale))) for side, limit in zip(shape, box, strict=True))
    return h, w
