"""What the numbers in a mask mean: one rule for every mask dkt reads, file or array.

A mask file or array of integers says nothing about its range: a ``uint16`` TIFF may hold 0
and 255, ``np.where(m > 0, 255, 0)`` returns ``int64``, a segmentation tool writes 0 and 1.
Dividing by the type's largest value turned all three into weights of 1/255 or less, which
changed nothing and was reported as a success. So integers are read by their values:

* largest value 1: a 0/1 label mask (1 is the object);
* values 0..255: 8-bit weights, whatever the integer type;
* values 0..65535 in a 16-bit image (``uint16``, a 16-bit PNG or TIFF): 16-bit weights;
* anything else (negative values, larger ones, a 32-bit mask past 255) is refused.

And a mask that selects nothing after the rule is an error wherever it came from, since
harmonizing it would give the composite back and call that a result.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dkt.errors import DktError, ImageInputError, InputError

__all__ = ["SELECT_FLOOR", "check_selects", "integer_weights", "mask_error"]

#: The smallest weight that changes an 8-bit pixel (half a step of 255): a mask with no
#: weight at or above it leaves every pixel as it was.
SELECT_FLOOR = 0.5 / 255

_HINT = "white, or 1 in a 0/1 label mask, marks the object"
_RULE = "an integer mask holds 0/1 labels, 0..255 (8-bit) or, in a 16-bit image, 0..65535"


def integer_weights(
    values: np.ndarray, *, sixteen_bit: bool, source: Path | None = None
) -> np.ndarray:
    """Integer mask values as float32 weights in [0, 1] by the module's rule.

    ``sixteen_bit``: the values come from a 16-bit image, so 0..65535 is their range.
    ``source`` names the file in the error (``None``: an in-memory mask).
    """
    if values.size == 0:
        return np.zeros(values.shape, np.float32)
    low, high = int(values.min()), int(values.max())
    if low < 0:
        raise mask_error(source, f"mask has negative values (down to {low}): {_RULE}")
    if high == 1:
        return np.ascontiguousarray(values > 0, dtype=np.float32)
    if high <= 255:
        return (values.astype(np.float32) / 255.0).astype(np.float32)
    if sixteen_bit and high <= 65535:
        return (values.astype(np.float32) / 65535.0).astype(np.float32)
    raise mask_error(source, f"mask values run up to {high}: {_RULE}")


def check_selects(mask: np.ndarray, source: Path | None = None) -> None:
    """Refuse a mask (float32 weights) that selects nothing: all 0, or all too faint to
    change a pixel. ``source`` names the file in the error (``None``: an in-memory mask)."""
    peak = float(mask.max()) if mask.size else 0.0
    if peak >= SELECT_FLOOR:
        return
    if peak == 0.0:
        reason = f"mask is empty (every pixel is 0: no object to harmonize; {_HINT})"
    else:
        reason = (
            f"mask selects nothing (its largest weight is {peak:.2g} of 1, too faint to "
            f"change a pixel; {_HINT})"
        )
    raise mask_error(source, reason)


def mask_error(source: Path | None, reason: str) -> DktError:
    """The error for a mask file (``ImageInputError`` naming it) or an in-memory mask."""
    return InputError(reason) if source is None else ImageInputError(source, reason)
