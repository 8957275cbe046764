"""Style strength: how far harmonization moves the object, 0 (as pasted) to 1 (fully).

One number ``s`` in [0, 1] scales the three places where DKTNet changes the object, so that
every front end (the CLI, the Python API, the server, an exported graph) shares one meaning:

* the deep features: ``F_s = F_c + s * (F~_c - F_c)`` (AdaIN's content-style ``alpha``);
* the decoder's skips: ``skip + s * (masked_adain(skip) - skip)``;
* the image: ``composite + s * (decoded - composite)`` inside the mask, before the exact
  blend, so ``s = 0`` gives the composite back and the painting outside the mask is never
  touched at any strength.

How it is computed: ``a * (1 - s) + b * s``, not the formula as written. ``a + s * (b - a)``
at ``s = 1`` is ``b`` only up to rounding, and strength 1 must give the full harmonization
byte for byte; here a product with 1 or 0 is exact and adding a zero is too, so both ends are
exact. :func:`torch.lerp` is exact at both ends as well, but exports as both of its branches
and a ``Where`` (seven full-size operators, see :func:`dkt.dktnet.stats.masked_adain`);
this is three, and no ``Where``.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

from dkt.errors import StrengthError

if TYPE_CHECKING:  # the validation runs where torch is not loaded (``import dkt.api``)
    import torch

#: Full harmonization: what every front end does when no strength is given.
DEFAULT_STRENGTH = 1.0


def check_strength(value: object) -> float:
    """``value`` as a float in [0, 1], or :class:`StrengthError` saying what was given.

    Text is read as a number (the command line and a web form send text); a bool, NaN or
    infinity is refused: none of them says how strong the style should be.
    """
    number: object = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, numbers.Real):
        raise StrengthError(f"strength must be a number from 0 to 1, got {value!r}")
    number = float(number)
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise StrengthError(f"strength must be a number from 0 to 1, got {value!r}")
    return number


def toward(start: torch.Tensor, end: torch.Tensor, strength: torch.Tensor | None) -> torch.Tensor:
    """``start + strength * (end - start)``, exact at both ends; ``end`` when ``strength`` is None.

    ``strength`` is a tensor of shape [1] (broadcast over the maps), cast to ``start``'s
    dtype so a half-precision network interpolates in half.
    """
    if strength is None:
        return end
    s = strength.to(start.dtype)
    return start * (1.0 - s) + end * s
