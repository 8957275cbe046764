"""Input shape profiles: the range of batch sizes and image sizes an exported model accepts.

One profile covers both inputs: ``composite`` is (B, 3, H, W) and ``mask`` is (B, 1, H, W)
with the same B, H and W, so a profile is three (batch, height, width) triples, ``min``,
``opt`` (what TensorRT tunes for) and ``max``. Users write shapes the way ``trtexec`` does,
``1x3x512x512`` (the composite's NCHW; the channel count must be 3); ``BxHxW`` is accepted
too.

A dynamic export needs an explicit maximum: TensorRT must size its kernels and memory for
it, and an ONNX file that claims "any size" would promise what an engine built from it
cannot keep. A static export fixes all three to one shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dkt.errors import ShapeError
from dkt.limits import MIN_IMAGE_SIDE

INPUT_NAMES = ("composite", "mask")
OUTPUT_NAMES = ("harmonized",)
CHANNELS = {"composite": 3, "mask": 1, "harmonized": 3}
#: The style strength's input (:mod:`dkt.dktnet.strength`), after the images in exports made
#: since it existed: float32 of a fixed shape, outside any shape profile. An export without
#: it runs at strength 1 only.
STRENGTH_INPUT = "strength"
STRENGTH_SHAPE = (1,)

#: ``MIN_IMAGE_SIDE`` (9, from :mod:`dkt.limits`): the network's reflection-padded convolutions
#: need at least 2x2 positions at stride 8, i.e. at least 9 pixels per side before the model
#: pads to a multiple of 8.
DEFAULT_MIN = (1, 16, 16)
#: The dynamic profile an export gets with no shape flags: up to 4 images of up to 2048 px a
#: side (a 2048 px working size is four times the bundled model's 1024 px maximum use, and
#: a TensorRT engine's memory grows with it), or the working size where that is larger.
DEFAULT_MAX = (4, 2048, 2048)

_SHAPE = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*x\s*(\d+)(?:\s*x\s*(\d+))?\s*$", re.IGNORECASE)

Triple = tuple[int, int, int]


def strength_input(names: list[str] | tuple[str, ...]) -> bool | None:
    """Whether a graph's inputs, in order, are dkt's with the strength input (``True``),
    dkt's without it (``False``: an export made before strength existed), or not dkt's
    (``None``: the caller refuses the file, naming it)."""
    names = tuple(names)
    if names == (*INPUT_NAMES, STRENGTH_INPUT):
        return True
    return False if names == INPUT_NAMES else None


def parse_shape(text: str) -> Triple:
    """``'1x3x512x512'`` or ``'1x512x512'`` -> (batch, height, width)."""
    match = _SHAPE.match(text)
    if not match:
        raise ShapeError(f"bad shape '{text}': write BxCxHxW like 1x3x512x512 (or BxHxW)")
    numbers = [int(g) for g in match.groups() if g is not None]
    if len(numbers) == 4:
        batch, channels, height, width = numbers
        if channels != 3:
            raise ShapeError(f"bad shape '{text}': the composite has 3 channels, not {channels}")
    else:
        batch, height, width = numbers
    if batch < 1:
        raise ShapeError(f"bad shape '{text}': batch must be at least 1")
    if min(height, width) < MIN_IMAGE_SIDE:
        raise ShapeError(
            f"bad shape '{text}': the network needs at least {MIN_IMAGE_SIDE} px a side"
        )
    return batch, height, width


def format_shape(triple: Triple, channels: int = 3) -> str:
    batch, height, width = triple
    return f"{batch}x{channels}x{height}x{width}"


@dataclass(frozen=True)
class ShapeProfile:
    """min <= opt <= max, element-wise, as (batch, height, width)."""

    min: Triple
    opt: Triple
    max: Triple

    def __post_init__(self) -> None:
        for i, axis in enumerate(("batch", "height", "width")):
            if not self.min[i] <= self.opt[i] <= self.max[i]:
                raise ShapeError(
                    f"shape profile needs min <= opt <= max for {axis}: "
                    f"{self.min[i]}, {self.opt[i]}, {self.max[i]} "
                    f"(min {format_shape(self.min)}, opt {format_shape(self.opt)}, "
                    f"max {format_shape(self.max)})"
                )

    @classmethod
    def static(cls, shape: Triple) -> ShapeProfile:
        return cls(shape, shape, shape)

    @property
    def dynamic_axes(self) -> tuple[str, ...]:
        """The axes whose size may vary: a subset of ('batch', 'height', 'width')."""
        names = ("batch", "height", "width")
        return tuple(n for i, n in enumerate(names) if self.min[i] != self.max[i])

    @property
    def is_dynamic(self) -> bool:
        return bool(self.dynamic_axes)

    def tensor_shapes(self, name: str) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(min, opt, max) NCHW shapes of one named input, for a TensorRT profile."""
        channels = CHANNELS[name]
        return tuple(  # type: ignore[return-value]
            (b, channels, h, w) for b, h, w in (self.min, self.opt, self.max)
        )

    @property
    def min_hw(self) -> tuple[int, int]:
        """The smallest (H, W) the profile admits, never under the network's own minimum."""
        return max(MIN_IMAGE_SIDE, self.min[1]), max(MIN_IMAGE_SIDE, self.min[2])

    def contains(self, batch: int, height: int, width: int) -> bool:
        value = (batch, height, width)
        return all(lo <= v <= hi for lo, v, hi in zip(self.min, value, self.max, strict=True))

    def check(self, composite_shape: tuple[int, ...], hint: str = "") -> None:
        """Raise :class:`ShapeError` naming the shape and the profile if it is outside."""
        batch, _, height, width = composite_shape
        if self.contains(batch, height, width):
            return
        limits = f"min {format_shape(self.min)}, max {format_shape(self.max)}"
        if not self.is_dynamic:
            limits = f"static {format_shape(self.opt)}"
        raise ShapeError(
            f"input {format_shape((batch, height, width))} is outside the model's shape "
            f"profile ({limits})" + (f"; {hint}" if hint else "")
        )

    def describe(self) -> str:
        if not self.is_dynamic:
            return f"static {format_shape(self.opt)}"
        return (
            f"min {format_shape(self.min)}, opt {format_shape(self.opt)}, "
            f"max {format_shape(self.max)}"
        )

    def to_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShapeProfile:
        try:
            return cls(*(tuple(int(v) for v in data[k]) for k in ("min", "opt", "max")))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as exc:
            raise ShapeError(f"invalid shape profile {data!r} ({exc})") from exc


def build_profile(
    *,
    dynamic: bool,
    working_size: int,
    min_shape: str | None = None,
    opt_shape: str | None = None,
    max_shape: str | None = None,
) -> ShapeProfile:
    """The profile the export options describe.

    Dynamic: ``max_shape`` defaults to :data:`DEFAULT_MAX` (or the working size, if larger),
    ``min_shape`` to 1x3x16x16 and ``opt_shape`` to one image at the model's working size
    (clamped into the range), so an export needs no shape flags at all.
    Static: only ``opt_shape`` may be given (default: one image at the working size).
    """
    opt = parse_shape(opt_shape) if opt_shape else None
    if not dynamic:
        if min_shape or max_shape:
            raise ShapeError("a static export has one shape: give --opt-shape only, or --dynamic")
        return ShapeProfile.static(opt or (1, working_size, working_size))
    if not max_shape:
        batch, height, width = DEFAULT_MAX
        max_shape = f"{batch}x3x{max(height, working_size)}x{max(width, working_size)}"
    high = parse_shape(max_shape)
    low = (
        parse_shape(min_shape)
        if min_shape
        else tuple(min(a, b) for a, b in zip(DEFAULT_MIN, high, strict=True))
    )
    if opt is None:
        wanted = (1, working_size, working_size)
        opt = tuple(  # type: ignore[assignment]
            max(lo, min(v, hi)) for lo, v, hi in zip(low, wanted, high, strict=True)
        )
    return ShapeProfile(low, opt, high)  # type: ignore[arg-type]
