"""From images to images through any backend.

The network runs at a working resolution (long side ``size``); the result comes back at the
input's full resolution through :mod:`dkt.inference.full_resolution` (a guided, local
colour transform by default), so the object keeps its full-resolution detail. Finally every
pixel where the mask is 0 is copied byte for byte from the input: the painting is never
altered, whatever the backend's arithmetic.

The work is split in three stages so a pipeline can run them on different threads and batch
the middle one: :meth:`Harmonizer.prepare` (validate, downsample: CPU, no model),
:meth:`Harmonizer.run_model` on a batch of prepared inputs of one working shape, and
:meth:`Harmonizer.finish` (full-resolution transfer and exact blend: CPU, no model).
:meth:`Harmonizer.harmonize` chains them for one image.

The style strength (:mod:`dkt.dktnet.strength`) is the network's to apply; at strength 0
the network is not run at all and the composite comes back as it is, byte for byte (the
transfer to full resolution would otherwise add its own small changes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from backends.base import Backend
from dkt.dktnet.strength import DEFAULT_STRENGTH, check_strength
from dkt.errors import EmptyBackgroundError, ModelOutputError, WorkingMemoryError
from dkt.imaging.metadata import ImageMeta
from dkt.inference.cpu import available_memory
from dkt.inference.edges import painting_behind
from dkt.inference.full_resolution import Box, bounds, fit_transform, strips
from dkt.limits import MIN_WORKING_SIDE, UPSAMPLERS


def working_shape(height: int, width: int, size: int | None) -> tuple[int, int]:
    """(h, w) with the long side scaled to ``size``, aspect kept; ``None`` or 0: unchanged.

    Never larger than the image itself: upsampling gives the network no detail the image
    lacks, and its memory grows with the square of ``size`` (``--size 4096`` on a 512 px
    image took 11 GB; ``--size 100000`` was killed for memory).
    """
    if not size or size >= max(height, width):
        return height, width
    scale = size / max(height, width)
    return max(MIN_WORKING_SIDE, round(height * scale)), max(MIN_WORKING_SIDE, round(width * scale))


def pad_to_min_side(
    composite: np.ndarray, mask: np.ndarray, min_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Pad (3,h,w) / (1,h,w) model inputs on the bottom and right to at least ``min_hw``.

    The eager model pads any input itself (:func:`dkt.dktnet.model.pad_to_multiple`), but an
    exported graph froze that rule at its example size, so ONNX Runtime refused a 512x8
    working shape with "Pad reflect requires axis length >= 2". Padding here, the same way
    (replicated pixels, mask 0 so the padding is no object), gives every backend an input
    it accepts; the result is cropped back in :meth:`Harmonizer.finish`.
    """
    h, w = composite.shape[-2:]
    pad_h, pad_w = max(0, min_hw[0] - h), max(0, min_hw[1] - w)
    if not (pad_h or pad_w):
        return composite, mask
    widths = ((0, 0), (0, pad_h), (0, pad_w))
    return np.pad(composite, widths, mode="edge"), np.pad(mask, widths)


def covering_mask(mask: np.ndarray) -> np.ndarray:
    """Binarise and dilate a downsampled (1,H,W) mask by one pixel (3x3 neighbourhood).

    A downsampled mask is fractional along the object's border, which would apply only part
    of the model's change there and leave a fringe of the original colours once the change
    is carried to full size. The covering mask makes the change whole up to just past the
    border; the full-resolution mask then decides the final blend.
    """
    hard = np.pad(mask[0] > 0, 1)
    h, w = mask.shape[-2:]
    grown = np.zeros((h, w), dtype=bool)
    for dy in range(3):
        for dx in range(3):
            grown |= hard[dy : dy + h, dx : dx + w]
    return grown[None].astype(np.float32)


def full_scale(image: np.ndarray) -> float:
    """The value of white in ``image``: 255 for uint8, 65535 for a 16-bit input's uint16."""
    return float(np.iinfo(image.dtype).max)


def to_8bit(image: np.ndarray) -> np.ndarray:
    """uint16 -> uint8, rounded (round(v * 255 / 65535), exactly); uint8 unchanged."""
    if image.dtype == np.uint8:
        return image
    return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)


def downsample_image(composite: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """uint8 or uint16 (H,W,3) -> float32 (3,h,w) in [0,1]: antialiased bilinear.

    Pillow resizes the 8-bit image directly (no full-size float copy, and it releases the
    GIL, so reader threads really run in parallel). A 16-bit image is resized at 8 bits:
    the network sees 8-bit detail either way, and its full depth returns in
    :meth:`Harmonizer.finish`, where the change is applied to the 16-bit pixels.
    """
    h, w = shape
    small = Image.fromarray(to_8bit(composite)).resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.float32).transpose(2, 0, 1) / 255.0


def downsample_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """float32 (H,W) -> float32 (1,h,w): antialiased bilinear."""
    h, w = shape
    small = Image.fromarray(np.ascontiguousarray(mask, dtype=np.float32))  # mode "F"
    return np.asarray(small.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)[None]


@dataclass
class Prepared:
    """One image ready for the model: the full-resolution inputs and what the model sees.

    ``model_composite`` / ``model_mask`` are (3,h,w) / (1,h,w) float32 at the working shape,
    or ``None`` when there is nothing for the model to do (an empty mask). ``crop`` is the
    working shape when the model inputs were padded beyond it (a side under the backend's
    minimum); ``None`` when they are the working shape. ``meta``: the composite file's
    colour profile, DPI and EXIF, carried to the writer (the harmonizer never reads it).
    """

    composite: np.ndarray
    mask: np.ndarray
    model_composite: np.ndarray | None
    model_mask: np.ndarray | None
    crop: tuple[int, int] | None = None
    meta: ImageMeta | None = None

    @property
    def needs_model(self) -> bool:
        return self.model_composite is not None

    @property
    def shape(self) -> tuple[int, int]:
        """The model inputs' shape: items of one shape can share a batch."""
        if self.model_composite is None:
            return self.mask.shape
        return self.model_composite.shape[-2:]

    @property
    def working(self) -> tuple[int, int]:
        """The working shape: the model's output cropped to this is the low-resolution result."""
        return self.crop or self.shape

    @property
    def direct(self) -> bool:
        """The model runs at the full size: its output is the result, no transfer needed."""
        return self.model_composite is not None and tuple(self.working) == self.mask.shape

    def model_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """``model_composite`` and ``model_mask``, for an image that :attr:`needs_model`."""
        # Harmonizer.prepare sets both or neither, and callers ask only when needs_model.
        assert self.model_composite is not None and self.model_mask is not None
        return self.model_composite, self.model_mask


class Harmonizer:
    """Harmonize full-size uint8 images with a backend at a working resolution.

    ``strength`` in [0, 1] is the style strength; a backend whose model cannot run at it
    (an export made before strength existed) is refused here, before any image is read.
    """

    def __init__(
        self,
        backend: Backend,
        size: int | None = None,
        upsample: str = "guided",
        strength: float = DEFAULT_STRENGTH,
    ) -> None:
        if upsample not in UPSAMPLERS:
            raise ValueError(f"upsample must be one of {UPSAMPLERS}, got {upsample!r}")
        self.strength = check_strength(strength)
        if self.strength != DEFAULT_STRENGTH:  # at 1 any backend runs, strength-aware or not
            backend.check_strength(self.strength)
        self.backend = backend
        self.size = size if size is not None else backend.working_size
        self.upsample = upsample
        #: Bytes left to allocate, read before each image (tests pass their own).
        self.memory_left: Callable[[], int | None] = available_memory

    def item_bytes(self, height: int, width: int) -> int:
        """Bytes one image's arrays hold between being read and being written.

        The uint8 composite, the float32 mask, the model's float32 inputs and output at the
        working shape and the uint8 result while it is encoded: what a pipeline keeps per
        image in flight. The model's and the transfer's own working memory is left out: it
        belongs to a thread, not to an image waiting in a queue.
        """
        h, w = working_shape(height, width, self.size)
        return height * width * (3 + 4 + 3) + h * w * 4 * (3 + 1 + 3)

    def harmonize(self, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``composite`` uint8 (H,W,3), ``mask`` float32 (H,W) in [0,1] -> uint8 (H,W,3).

        A uint16 composite (a 16-bit input) gives a uint16 result, its background copied at
        16 bits.
        """
        prepared = self.prepare(composite, mask)
        if not prepared.needs_model:
            return self.finish(prepared, None)
        model_composite, model_mask = prepared.model_inputs()
        output = self.run_model(model_composite[None], model_mask[None])
        return self.finish(prepared, output[0])

    def run_model(self, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``backend.run`` on a (B,3,h,w) / (B,1,h,w) batch of prepared inputs, at this
        harmonizer's strength.

        The strength is passed only when it is not 1, so a backend written before strength
        existed (its ``run`` takes two arrays) still runs at full strength.
        """
        if self.strength == DEFAULT_STRENGTH:
            return self.backend.run(composite, mask)
        return self.backend.run(composite, mask, strength=self.strength)

    def prepare(self, composite: np.ndarray, mask: np.ndarray) -> Prepared:
        """Check the mask and make the model's inputs; touches no model (any thread)."""
        if not mask.any():
            return Prepared(composite, mask, None, None)
        if mask.min() >= 1.0:
            raise EmptyBackgroundError("the mask covers the whole image: no painting to match")
        if self.strength == 0.0:  # the composite itself: nothing for the model to do
            return Prepared(composite, mask, None, None)
        height, width = mask.shape
        shape = working_shape(height, width, self.size)
        self.check_memory(shape)
        if shape == (height, width):
            comp = composite.transpose(2, 0, 1).astype(np.float32) / full_scale(composite)
            low_mask = mask[None].astype(np.float32)
        else:
            comp = downsample_image(composite, shape)
            low_mask = covering_mask(downsample_mask(mask, shape))
        comp_in, mask_in = pad_to_min_side(comp, low_mask, self.backend.min_input_hw)
        crop = shape if comp_in.shape[-2:] != comp.shape[-2:] else None
        return Prepared(composite, mask, comp_in, mask_in, crop)

    def check_memory(self, shape: tuple[int, int]) -> None:
        """Refuse a working shape the CPU cannot hold, before any of its memory is taken.

        Past the memory left, a CPU run is not an exception but the kernel's OOM killer,
        which ends the whole folder run without a word; a refusal fails this file alone.
        A GPU backend raises its own out-of-memory error, which fails the file as well.
        """
        if not self.backend.on_cpu:
            return
        need = self.backend.working_bytes(*shape)
        left = self.memory_left()
        if need is None or left is None or need <= left:
            return
        h, w = shape
        raise WorkingMemoryError(
            f"working size {w}x{h} needs about {need / 2**30:.1f} GiB, "
            f"only {left / 2**30:.1f} GiB of memory is free"
        )

    def finish(self, prepared: Prepared, output: np.ndarray | None) -> np.ndarray:
        """The full-resolution result, in the composite's dtype, from the model's (3,h,w)
        ``output`` (any thread)."""
        composite, mask = prepared.composite, prepared.mask
        if output is None:
            return composite.copy()
        h, w = prepared.working
        output = output[:, :h, :w]
        _check_finite(output)
        scale = full_scale(composite)
        if prepared.direct:
            # The model blended with the composite itself: swap in the painting behind.
            full = Box(0, mask.shape[0], 0, mask.shape[1])
            pixels = composite.transpose(2, 0, 1).astype(np.float32) / scale
            behind = painting_behind(composite, mask, full, scale)
            output = output + (1.0 - mask[None]) * (behind - pixels)
            out = _quantise(np.clip(output, 0.0, 1.0), composite.dtype).transpose(1, 2, 0)
            return np.where(mask[..., None] > 0, out, composite)
        inside = mask > 0
        box = bounds(inside)
        # An image with model inputs has a non-empty mask (prepare gives none for an empty one).
        assert box is not None
        model_composite, model_mask = prepared.model_inputs()
        transform = fit_transform(
            self.upsample,
            model_composite[:, :h, :w],
            output,
            model_mask[0, :h, :w],
            mask.shape,
            box,
        )
        result = composite.copy()
        for strip in strips(box):
            rows, cols = slice(strip.y0, strip.y1), slice(strip.x0, strip.x1)
            pixels = composite[rows, cols].transpose(2, 0, 1).astype(np.float32) / scale
            changed = np.clip(transform.apply(pixels, strip, mask.shape), 0.0, 1.0)
            m = mask[None, rows, cols]
            blended = painting_behind(composite, mask, strip, scale) * (1.0 - m) + changed * m
            out = _quantise(blended, composite.dtype).transpose(1, 2, 0)
            np.copyto(result[rows, cols], out, where=inside[rows, cols, None])
        return result


def _check_finite(output: np.ndarray) -> None:
    """Fail the image whose model output holds NaN or infinity (a broken model file).

    Quantising or fitting the transfer to such values wrote the composite back unchanged,
    reported as harmonized; the blend keeps the background finite, so only the object can
    hold them.
    """
    if not np.isfinite(output).all():
        raise ModelOutputError(
            "the model's output is NaN or infinite inside the object (a broken or diverged "
            "model file?); nothing written"
        )


def _quantise(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """[0, 1] floats to ``dtype`` (uint8 or uint16) integers, rounded and clipped."""
    top = np.iinfo(dtype).max
    return np.clip(np.rint(values * float(top)), 0, top).astype(dtype)
