"""The harmonizer's options, checked in one place for the command line, the API and the server.

A working size of -1 or 7, a ``batch`` of 0 or an unknown upsampler used to get through
(the size turned into an 8-pixel network run) or to fail deep inside with a ``ValueError``
about another option. Every entry point calls these before any work, so the same mistake
gives the same one line, an :class:`~dkt.errors.OptionError`, wherever it was made.
"""

from __future__ import annotations

import numbers

from dkt.errors import OptionError
from dkt.limits import MIN_WORKING_SIDE, UPSAMPLERS

__all__ = ["check_batch", "check_size", "check_upsample", "check_workers"]


def check_size(size: object) -> int | None:
    """The working size (long side): ``None`` (the model's), 0 (the image's own) or at least
    :data:`~dkt.limits.MIN_WORKING_SIDE`, the smallest side a working shape has."""
    if size is None:
        return None
    number = _whole(size)
    if number is None or not (number == 0 or number >= MIN_WORKING_SIDE):
        raise OptionError(
            f"size must be 0 (the image's own) or at least {MIN_WORKING_SIDE}, got {size!r}"
        )
    return number


def check_upsample(upsample: object) -> str:
    """How the result reaches full resolution: one of :data:`UPSAMPLERS`."""
    if not isinstance(upsample, str) or upsample not in UPSAMPLERS:
        raise OptionError(f"upsample must be {' or '.join(UPSAMPLERS)}, got {upsample!r}")
    return upsample


def check_workers(workers: object) -> int:
    """Reader and writer threads: 0 (one image at a time, no pipeline) or more."""
    number = _whole(workers)
    if number is None or number < 0:
        raise OptionError(f"workers must be 0 (no pipeline) or more, got {workers!r}")
    return number


def check_batch(batch: object) -> int | None:
    """Images a model run takes: ``None`` (the device's default) or at least 1."""
    if batch is None:
        return None
    number = _whole(batch)
    if number is None or number < 1:
        raise OptionError(f"batch must be at least 1, got {batch!r}")
    return number


def _whole(value: object) -> int | None:
    """``value`` as an int when it is a whole number (numpy's included, bool not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    return int(value)
