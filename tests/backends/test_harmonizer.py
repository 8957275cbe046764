"""Tests for ``backends.harmonizer``: full-size images in, full-size images out.

Fake backends make the arithmetic visible: one counts its calls and records what it was
given, one adds a known constant inside the mask, and one scribbles over everything (the
harmonizer must still hand back the painting untouched).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from backends.base import Backend
from backends.harmonizer import EmptyBackgroundError, Harmonizer, working_shape
from backends.torch_backend import TorchBackend

pytestmark = pytest.mark.usefixtures("one_thread")


class FakeBackend(Backend):
    """Adds ``delta`` inside the mask it is given; counts calls and records input shapes."""

    name: ClassVar[str] = "fake"

    def __init__(self, delta: float = 0.0, working: int | None = None) -> None:
        self.delta = delta
        self.working = working
        self.calls = 0
        self.shapes: list[tuple[int, ...]] = []

    @classmethod
    def load(cls, model: Path, *, device: str = "cpu", precision: str = "fp32") -> FakeBackend:
        return cls()

    def run(self, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.shapes.append(composite.shape)
        return (composite + self.delta * mask).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}

    @property
    def working_size(self) -> int | None:
        return self.working


class ScribbleBackend(FakeBackend):
    """Breaks the backend contract: changes every pixel, background included."""

    def run(self, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.calls += 1
        rng = np.random.default_rng(self.calls)
        return rng.uniform(0.0, 1.0, composite.shape).astype(np.float32)


def _soften(mask: np.ndarray) -> np.ndarray:
    """A float mask in [0, 1] with anti-aliased (fractional) edges, as exported by editors."""
    hard = mask.astype(np.float32) / 255.0
    padded = np.pad(hard, 1, mode="edge")
    h, w = hard.shape
    blurred = sum(padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)) / 9.0
    return blurred.astype(np.float32)


@pytest.fixture
def pair(make_pair):
    """``pair(h, w, seed)`` -> composite uint8 and {"hard": mask, "soft": mask} float32."""

    def _pair(height: int, width: int, seed: int = 0):
        composite, mask = make_pair(height, width, seed)
        return composite, {"hard": (mask > 127).astype(np.float32), "soft": _soften(mask)}

    return _pair


def _inner_border(full: np.ndarray) -> np.ndarray:
    """Pixels of ``full`` with a 4-neighbour outside it: the object's outermost ring."""
    padded = np.pad(full, 1)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return full & ~interior


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("size", [None, 0, 16, 33, 75, 200])
def test_output_keeps_the_input_size_at_any_working_size(pair, size: int | None) -> None:
    composite, masks = pair(50, 75)
    backend = FakeBackend(delta=0.1, working=40)
    out = Harmonizer(backend, size).harmonize(composite, masks["hard"])
    assert out.shape == composite.shape
    assert out.dtype == np.uint8
    effective = 40 if size is None else size
    assert backend.shapes == [(1, 3, *working_shape(50, 75, effective))]
    if effective:
        assert max(backend.shapes[0][-2:]) == effective


@pytest.mark.parametrize("kind", ["hard", "soft"])
@pytest.mark.parametrize("size", [None, 24, 90])
@pytest.mark.parametrize("engine", ["scribble", "torch"])
def test_background_is_byte_identical(
    pair, tiny_model: Path, kind: str, size: int | None, engine: str
) -> None:
    """Where mask == 0 the output *is* the input, whatever the backend computes."""
    composite, masks = pair(60, 72, seed=1)
    mask = masks[kind]
    backend = ScribbleBackend() if engine == "scribble" else TorchBackend.load(tiny_model)
    out = Harmonizer(backend, size).harmonize(composite, mask)
    assert out.shape == composite.shape
    assert np.array_equal(out[mask == 0], composite[mask == 0])
    assert (mask == 0).sum() > 0.5 * mask.size  # the check covered most of the image
    assert not np.array_equal(out[mask == 1], composite[mask == 1]), "object not harmonized"


def test_empty_mask_returns_the_composite_without_running_the_backend(pair) -> None:
    composite, _ = pair(40, 40)
    backend = FakeBackend(delta=0.3)
    out = Harmonizer(backend, 32).harmonize(composite, np.zeros((40, 40), np.float32))
    assert backend.calls == 0
    assert np.array_equal(out, composite)
    assert out is not composite  # a copy: writing to it cannot damage the caller's image


@pytest.mark.parametrize("fill", [1.0, 1.5])
def test_full_mask_is_an_empty_background_error(pair, fill: float) -> None:
    composite, _ = pair(40, 40)
    backend = FakeBackend(delta=0.3)
    with pytest.raises(EmptyBackgroundError, match="covers the whole image"):
        Harmonizer(backend, 32).harmonize(composite, np.full((40, 40), fill, np.float32))
    assert backend.calls == 0


def test_working_size_equal_to_input_size_is_a_direct_backend_run(pair, tiny_model: Path) -> None:
    composite, masks = pair(48, 64, seed=2)
    mask = masks["soft"]
    backend = TorchBackend.load(tiny_model)
    out = Harmonizer(backend, 64).harmonize(composite, mask)
    assert np.array_equal(out, Harmonizer(backend, 0).harmonize(composite, mask))

    comp = composite.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    direct = backend.run(comp, mask[None, None])[0].transpose(1, 2, 0)
    expected = np.where(mask[..., None] > 0, np.rint(direct * 255.0), composite)
    assert np.array_equal(out, expected.astype(np.uint8))


@pytest.mark.parametrize("size", [32, 40, 23, 130])
@pytest.mark.parametrize("kind", ["hard", "soft"])
def test_change_reaches_the_object_border_at_full_resolution(pair, size: int, kind: str) -> None:
    """A constant change made at low resolution covers the whole object, border included.

    Without the covering mask the low-resolution mask is fractional along the border, so the
    upsampled change would fade out there and leave a fringe of the original colours.
    """
    height, width = 96, 90
    composite, masks = pair(height, width, seed=4)
    mask = masks[kind]
    delta = 40
    out = Harmonizer(FakeBackend(delta=delta / 255.0), size).harmonize(composite, mask)
    change = out.astype(np.int16) - composite.astype(np.int16)

    full = mask == 1.0
    border = _inner_border(full)
    assert border.sum() > 20  # the test really looks at edge pixels
    assert np.abs(change[border] - delta).max() <= 1
    assert np.abs(change[full] - delta).max() <= 1
    # Soft edges get the change in proportion to the mask, and the painting none of it.
    expected = delta * mask[..., None]
    assert np.abs(change - expected).max() <= 1
