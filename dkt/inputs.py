"""Images and masks as Python users hold them, to and from the arrays the harmonizer runs on.

A caller may pass a path, a Pillow image, a numpy array or a torch tensor, and gets the
result back in the kind it passed, so ``dkt`` fits into whatever code is already there.
Each converter returns the harmonizer's input together with a function that turns the
harmonizer's output back into the caller's kind; the painting outside the mask comes back
exactly as it was passed, whatever the kind (floats included).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dkt.errors import InputError
from dkt.imaging.imageio import (
    image_to_mask,
    image_to_rgb,
    read_alpha_composite,
    read_image,
    read_mask,
)
from dkt.imaging.masks import check_selects, integer_weights
from dkt.limits import DEFAULT_MAX_PIXELS

#: What ``dkt.Harmonizer`` accepts for an image or a mask.
ImageLike = str | os.PathLike | Image.Image | np.ndarray | Any  # Any: a torch.Tensor


@dataclass
class Converted:
    """The harmonizer's inputs for one image, and how to give its result back.

    ``image`` is uint8 or uint16 (H, W, 3); ``alpha`` the image's own alpha as a float32
    mask, when it has one; ``restore`` maps the harmonizer's output to the caller's kind.
    """

    image: np.ndarray
    alpha: np.ndarray | None
    restore: Callable[[np.ndarray, np.ndarray], Any]

    def wanted_alpha(self) -> np.ndarray:
        """``alpha``, of an image converted with ``want_alpha``."""
        # Every converter gives an alpha when it is wanted, or refuses the image.
        assert self.alpha is not None
        return self.alpha


def _is_tensor(value: object) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def convert_image(value: ImageLike, want_alpha: bool) -> Converted:
    """Dispatch on the kind of ``value``; ``want_alpha``: the mask is to come from its alpha."""
    if isinstance(value, (str, os.PathLike)):
        return _from_path(Path(value), want_alpha)
    if isinstance(value, Image.Image):
        return _from_pil(value, want_alpha)
    if isinstance(value, np.ndarray):
        return _from_array(value, want_alpha)
    if _is_tensor(value):
        return _from_tensor(value, want_alpha)
    raise InputError(
        f"image: expected a path, a PIL image, a numpy array or a torch tensor, "
        f"got {type(value).__name__}"
    )


def _keep(out: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return out


def _from_path(path: Path, want_alpha: bool) -> Converted:
    if want_alpha:
        rgb, alpha = read_alpha_composite(path)
        return Converted(rgb, alpha, _keep)
    return Converted(read_image(path, keep_depth=True), None, _keep)


def _from_pil(img: Image.Image, want_alpha: bool) -> Converted:
    def restore(out: np.ndarray, mask: np.ndarray) -> Image.Image:
        return Image.fromarray(out, "RGB")

    if want_alpha:
        if "A" not in img.getbands():
            raise InputError(f"image: a {img.mode} PIL image has no alpha to take the mask from")
        rgba = np.asarray(img.convert("RGBA"))
        return Converted(np.ascontiguousarray(rgba[:, :, :3]), _unit_alpha(rgba), restore)
    return Converted(image_to_rgb(img), None, restore)


def _unit_alpha(rgba: np.ndarray) -> np.ndarray:
    return rgba[:, :, 3].astype(np.float32) / 255.0


def _from_array(array: np.ndarray, want_alpha: bool) -> Converted:
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise InputError(f"image: expected an (H, W, 3) or (H, W, 4) array, got {array.shape}")
    if want_alpha and array.shape[2] != 4:
        raise InputError("image: no mask was given and an (H, W, 3) array has no alpha")
    colour, alpha_channel = array[:, :, :3], array[:, :, 3] if array.shape[2] == 4 else None
    if alpha_channel is not None and not want_alpha:
        colour = _over_white(colour, alpha_channel)
    # the mask to return: wanted, it is there, as want_alpha without 4 channels is refused above
    kept = alpha_channel if want_alpha else None
    if array.dtype in (np.uint8, np.uint16):
        scale = np.iinfo(array.dtype).max
        alpha = None if kept is None else kept.astype(np.float32) / scale
        return Converted(np.ascontiguousarray(colour), alpha, _keep)
    if np.issubdtype(array.dtype, np.floating):
        _check_unit_range(array, "image")
        wide = np.round(colour.astype(np.float64) * 65535).astype(np.uint16)

        def restore(out: np.ndarray, mask: np.ndarray) -> np.ndarray:
            result = (out / 65535.0).astype(array.dtype)
            return np.where(mask[..., None] > 0, result, colour)

        alpha = None if kept is None else kept.astype(np.float32)
        return Converted(wide, alpha, restore)
    raise InputError(f"image: unsupported array dtype {array.dtype} (use uint8, uint16 or float)")


def _over_white(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """An (H, W, 4) image given with a mask, flattened on white as the same pixels saved as
    an RGBA PNG are read (:func:`dkt.imaging.imageio.read_image`): its alpha is not dropped."""
    if np.issubdtype(colour.dtype, np.floating):  # its range is checked with the colours
        a = alpha[..., None]
        return (colour * a + (1 - a)).astype(colour.dtype)
    if colour.dtype not in (np.uint8, np.uint16):
        return colour  # an unsupported dtype, refused with the colours
    top = int(np.iinfo(colour.dtype).max)
    c, a = colour.astype(np.uint64), alpha[..., None].astype(np.uint64)
    return ((c * a + top * (top - a) + top // 2) // top).astype(colour.dtype)


def _check_unit_range(array: np.ndarray, what: str) -> None:
    if array.size and not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1):
        raise InputError(
            f"{what}: float values must lie in [0, 1] (found {array.min():g} to "
            f"{array.max():g}); pass uint8 for 0..255"
        )


def _from_tensor(tensor: Any, want_alpha: bool) -> Converted:
    """A (3|4, H, W) tensor, torch's layout; the result is a tensor on the same device."""
    if tensor.ndim != 3 or tensor.shape[0] not in (3, 4):
        raise InputError(
            f"image: expected a (3, H, W) or (4, H, W) tensor, got {tuple(tensor.shape)}"
        )
    inner = _from_array(tensor.detach().cpu().permute(1, 2, 0).numpy(), want_alpha)

    def restore(out: np.ndarray, mask: np.ndarray) -> Any:
        import torch

        result = inner.restore(out, mask)
        return torch.from_numpy(np.ascontiguousarray(result)).permute(2, 0, 1).to(tensor.device)

    return Converted(inner.image, inner.alpha, restore)


def convert_mask(value: ImageLike, hw: tuple[int, int]) -> np.ndarray:
    """Any mask kind -> float32 (H, W) in [0, 1], with the rules files follow.

    Integers follow the rule mask files do (:mod:`dkt.imaging.masks`): largest value 1 is a
    0/1 label mask, 0..255 is 8-bit whatever the type (``np.where(m > 0, 255, 0)`` is
    int64), 0..65535 is 16-bit in a ``uint16`` array, anything else is refused. Floats must
    already lie in [0, 1].
    """
    if isinstance(value, (str, os.PathLike)):
        return read_mask(Path(value), expected_hw=hw, max_pixels=DEFAULT_MAX_PIXELS)
    if isinstance(value, Image.Image):
        mask = image_to_mask(value)
    elif isinstance(value, np.ndarray):
        mask = _array_mask(value)
    elif _is_tensor(value):
        mask = _array_mask(value.detach().cpu().numpy())
    else:
        raise InputError(f"mask: expected a path, a PIL image, an array or a tensor, got "
                         f"{type(value).__name__}")  # fmt: skip
    if mask.shape != tuple(hw):
        (h, w), (eh, ew) = mask.shape, hw
        raise InputError(f"mask is {w}x{h} but the image is {ew}x{eh}")
    return mask


def _array_mask(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and 1 in (array.shape[0], array.shape[2]):
        array = array.reshape(array.shape[:2] if array.shape[2] == 1 else array.shape[1:])
    if array.ndim != 2:
        raise InputError(f"mask: expected an (H, W) array, got {array.shape}")
    if array.dtype == bool:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        return integer_weights(array, sixteen_bit=array.dtype == np.uint16)
    if np.issubdtype(array.dtype, np.floating):
        _check_unit_range(array, "mask")
        return array.astype(np.float32)
    raise InputError(f"mask: unsupported array dtype {array.dtype}")


def check_not_empty(mask: np.ndarray, source: ImageLike) -> None:
    """A mask that selects nothing is an error, as on the command line and the server: it
    would return the input as is. ``source`` is what the mask came from (a path is named)."""
    check_selects(mask, Path(source) if isinstance(source, (str, os.PathLike)) else None)
