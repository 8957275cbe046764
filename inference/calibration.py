"""Calibration composites for an int8 export, brought to what the network sees.

Each ``<key>_comp.*`` / ``<key>_mask.*`` pair of a folder is scaled to the working size the
way :class:`dkt.inference.harmonizer.Harmonizer` scales it (long side, aspect kept, never
upsampled), then padded to one square shape (:func:`dkt.backends.quantize_onnx.square_sample`):
activation ranges measured at another scale would not be the ones inference meets.
"""

from __future__ import annotations

from pathlib import Path

from dkt.backends.base import BackendError
from dkt.backends.quantize_onnx import MAX_CALIBRATION_IMAGES, Sample, square_sample
from dkt.inference.harmonizer import downsample_image, downsample_mask, working_shape
from dkt.inference.parity import folder_images


def calibration_samples(folder: Path, working_size: int) -> list[Sample]:
    """Up to :data:`MAX_CALIBRATION_IMAGES` pairs from ``folder`` at ``working_size``."""
    if not folder.is_dir():
        raise BackendError(f"{folder}: not a folder (--calibration takes a folder of composites)")
    pairs = folder_images(folder, limit=MAX_CALIBRATION_IMAGES)
    if not pairs:
        raise BackendError(f"{folder}: no <key>_comp.* / <key>_mask.* pairs to calibrate on")
    samples = []
    for _, composite, mask in pairs:
        shape = working_shape(*mask.shape, working_size)
        samples.append(
            square_sample(
                downsample_image(composite, shape), downsample_mask(mask, shape), working_size
            )
        )
    return samples
