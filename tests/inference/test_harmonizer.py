"""Tests for ``dkt.inference.harmonizer``: full-size images in, full-size images out.

Fake backends make the arithmetic visible: one counts its calls and records what it was
given, one adds a known constant inside the mask, and one scribbles over everything (the
harmonizer must still hand back the painting untouched).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from backends.base import Backend, LoadOptions
from backends.torch_backend import TorchBackend
from dkt.errors import EmptyBackgroundError
from dkt.inference.edges import painting_behind
from dkt.inference.full_resolution import UPSAMPLERS, Box
from dkt.inference.harmonizer import Harmonizer, working_shape

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
    def load(cls, model: Path, options: LoadOptions = LoadOptions()) -> FakeBackend:
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
        assert max(backend.shapes[0][-2:]) == min(effective, 75)  # never above the image's


@pytest.mark.parametrize("size", [75, 76, 4096, 100_000])
def test_a_working_size_above_the_image_runs_at_the_images_own_size(pair, size: int) -> None:
    """Issue 12 item 1: ``--size 4096`` on a small image took 11 GB; 100000 was OOM-killed."""
    composite, masks = pair(50, 75)
    backend = FakeBackend(delta=0.1)
    harmonizer = Harmonizer(backend, size)
    assert working_shape(50, 75, size) == (50, 75)
    assert harmonizer.item_bytes(50, 75) == Harmonizer(backend, 0).item_bytes(50, 75)
    out = harmonizer.harmonize(composite, masks["hard"])
    assert backend.shapes == [(1, 3, 50, 75)]
    own_size = Harmonizer(FakeBackend(delta=0.1), 0).harmonize(composite, masks["hard"])
    assert np.array_equal(out, own_size)


# --------------------------------------------------------------------------- small inputs


class MinimumBackend(FakeBackend):
    """Refuses what an exported graph cannot run: a side under the network's minimum."""

    def run(self, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        low_h, low_w = self.min_input_hw
        if composite.shape[-2] < low_h or composite.shape[-1] < low_w:
            raise RuntimeError("Pad reflect requires axis length >= 2")
        return super().run(composite, mask)


@pytest.mark.parametrize(("height", "width", "size"), [(5000, 20, 64), (64, 80, 8), (4, 6, 0)])
def test_inputs_under_the_networks_minimum_are_padded_for_every_backend(
    height: int, width: int, size: int
) -> None:
    """Issue 12 item 6: a 5000x20 strip and ``--size 8`` reach the backend padded to 9 px."""
    rng = np.random.default_rng(0)
    composite = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), np.float32)
    mask[height // 4 : height // 2, width // 4 : width // 2 + 1] = 1.0
    backend = MinimumBackend(delta=0.2)
    out = Harmonizer(backend, size).harmonize(composite, mask)
    assert out.shape == composite.shape
    assert min(backend.shapes[0][-2:]) >= 9
    assert np.array_equal(out[mask == 0], composite[mask == 0])
    changed = out.astype(np.int16) - composite.astype(np.int16)
    assert (changed[mask == 1] > 0).mean() > 0.9  # the object got the change, not the padding


def test_onnxruntime_runs_what_eager_runs(torchscript_odd_onnx: Path) -> None:
    """Issue 12 item 6: ORT's raw "Pad reflect requires axis length >= 2" is gone."""
    pytest.importorskip("onnxruntime")
    from backends.onnxruntime_backend import OnnxRuntimeBackend

    rng = np.random.default_rng(1)
    strip = rng.integers(0, 256, (5000, 20, 3), dtype=np.uint8)
    strip_mask = np.zeros((5000, 20), np.float32)
    strip_mask[2000:3000, 4:16] = 1.0
    small = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    small_mask = np.zeros((64, 80), np.float32)
    small_mask[20:40, 20:50] = 1.0
    with OnnxRuntimeBackend.load(torchscript_odd_onnx, LoadOptions(device="cpu")) as ort_backend:
        for composite, mask, size in ((strip, strip_mask, 64), (small, small_mask, 8)):
            out = Harmonizer(ort_backend, size).harmonize(composite, mask)
            assert out.shape == composite.shape
            assert np.array_equal(out[mask == 0], composite[mask == 0])


@pytest.mark.parametrize("kind", ["hard", "soft"])
@pytest.mark.parametrize("size", [None, 24, 90])
@pytest.mark.parametrize("engine", ["scribble", "torch"])
@pytest.mark.parametrize("upsample", UPSAMPLERS)
def test_background_is_byte_identical(
    pair, tiny_model: Path, kind: str, size: int | None, engine: str, upsample: str
) -> None:
    """Where mask == 0 the output *is* the input, whatever the backend computes."""
    composite, masks = pair(60, 72, seed=1)
    mask = masks[kind]
    backend = ScribbleBackend() if engine == "scribble" else TorchBackend.load(tiny_model)
    out = Harmonizer(backend, size, upsample).harmonize(composite, mask)
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
    direct = backend.run(comp, mask[None, None])[0]
    # The model blended with the composite; the soft edge's painting share is swapped for
    # the painting around it (dkt.inference.edges).
    behind = painting_behind(composite, mask, Box(0, 48, 0, 64), 255.0)
    direct = np.clip(direct + (1 - mask[None]) * (behind - comp[0]), 0, 1).transpose(1, 2, 0)
    expected = np.where(mask[..., None] > 0, np.rint(direct * 255.0), composite)
    assert np.array_equal(out, expected.astype(np.uint8))


@pytest.mark.parametrize("size", [32, 40, 23, 130])
@pytest.mark.parametrize("kind", ["hard", "soft"])
@pytest.mark.parametrize("upsample", UPSAMPLERS)
def test_change_reaches_the_object_border_at_full_resolution(
    pair, size: int, kind: str, upsample: str
) -> None:
    """A constant change made at low resolution covers the whole object, border included.

    Without the covering mask the low-resolution mask is fractional along the border, so the
    upsampled change would fade out there and leave a fringe of the original colours.
    """
    height, width = 96, 90
    composite, masks = pair(height, width, seed=4)
    mask = masks[kind]
    delta = 40
    out = Harmonizer(FakeBackend(delta=delta / 255.0), size, upsample).harmonize(composite, mask)
    change = out.astype(np.int16) - composite.astype(np.int16)

    full = mask == 1.0
    border = _inner_border(full)
    assert border.sum() > 20  # the test really looks at edge pixels
    assert np.abs(change[border] - delta).max() <= 1
    assert np.abs(change[full] - delta).max() <= 1
    # Soft edges get the change in proportion to the mask, their painting share comes from
    # the painting around them (dkt.inference.edges), and the painting gets none of it.
    behind = painting_behind(composite, mask, Box(0, height, 0, width), 1.0).transpose(1, 2, 0)
    expected = delta * mask[..., None] + (1 - mask[..., None]) * (behind - composite)
    assert np.abs(change - expected).max() <= 1


# --------------------------------------------------------------------------- full resolution

#: A strong colour change, as harmonizing a saturated photo into a muted painting makes.
COLOUR_MATRIX = 1.5 * np.array(
    [[0.55, 0.25, 0.15], [0.30, 0.50, 0.20], [0.10, 0.20, 0.45]], np.float32
)
COLOUR_SHIFT = np.array([0.05, 0.02, -0.10], np.float32)


class ColourBackend(FakeBackend):
    """Applies one affine colour transform inside the mask: a known, global harmonization."""

    def run(self, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.calls += 1
        changed = np.einsum("ij,bihw->bjhw", COLOUR_MATRIX, composite)
        changed = np.clip(changed + COLOUR_SHIFT[None, :, None, None], 0.0, 1.0)
        return (composite * (1 - mask) + changed * mask).astype(np.float32)


def _detailed_object(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A painting with an object of smooth colour regions under a 4-px checker and grain.

    The checker is finer than any working resolution below a quarter of the input's: the
    network never sees it, the user certainly does.
    """
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    painting = np.stack([0.5 + 0.2 * np.sin(xx / 20), 0.5 + 0.2 * np.cos(yy / 16),
                         0.4 + 0.1 * np.sin((xx + yy) / 24)])  # fmt: skip
    colours = np.stack([0.45 + 0.2 * np.sin(xx / 15 + 1), 0.4 + 0.2 * np.sin(yy / 12),
                        0.35 + 0.15 * np.cos((xx - yy) / 16)])  # fmt: skip
    checker = 0.12 * np.sign(np.sin(np.pi * xx / 2 + 0.3) * np.sin(np.pi * yy / 2 + 0.3))
    detail = checker + rng.normal(0, 0.05, (height, width))
    obj = colours + detail[None] * np.array([1.0, 0.8, 0.6], np.float32)[:, None, None]
    inside = ((yy - height * 0.5) / (height * 0.32)) ** 2 + (
        (xx - width * 0.45) / (width * 0.28)
    ) ** 2 <= 1
    image = np.where(inside[None], obj, painting)
    composite = np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
    return composite, inside.astype(np.float32)


def _gradient_energy(image: np.ndarray, region: np.ndarray) -> float:
    """Mean squared finite difference inside ``region``: how much fine detail is visible."""
    x = image.astype(np.float64)
    gx, gy = np.diff(x, axis=1)[:-1], np.diff(x, axis=0)[:, :-1]
    return float(((gx**2 + gy**2).sum(-1))[region[:-1, :-1]].mean())


def _interior(mask: np.ndarray, steps: int) -> np.ndarray:
    inside = mask > 0
    for _ in range(steps):
        inside = ~_inner_border(inside) & inside
    return inside


def test_guided_transfer_keeps_fine_detail_that_the_residual_transfer_loses() -> None:
    """At a quarter of the size, the colour change reaches the 4-px checker with guided.

    The truth is the colour transform applied at full resolution. The residual method adds a
    smooth low-resolution change, so the checker keeps the photo's contrast (about half the
    gradient energy it should have); the guided method re-colours it like its surroundings.
    """
    composite, mask = _detailed_object(192, 256)
    full = composite.astype(np.float32).transpose(2, 0, 1) / 255.0
    truth = np.einsum("ij,ihw->jhw", COLOUR_MATRIX, full) + COLOUR_SHIFT[:, None, None]
    truth = np.rint(np.clip(truth, 0, 1) * 255).transpose(1, 2, 0)
    core = _interior(mask, 4)
    wanted = _gradient_energy(truth, core)

    results = {}
    for method in ("guided", "residual"):
        out = Harmonizer(ColourBackend(), 64, method).harmonize(composite, mask)
        error = out.astype(np.float64)[core] - truth[core]
        results[method] = (_gradient_energy(out, core) / wanted, np.sqrt((error**2).mean()))
    (guided_energy, guided_rmse), (residual_energy, residual_rmse) = results.values()
    assert 0.85 <= guided_energy <= 1.1, results
    assert residual_energy < 0.7, results
    assert guided_rmse < 0.5 * residual_rmse, results


def test_unknown_upsample_method_is_refused() -> None:
    with pytest.raises(ValueError, match="guided"):
        Harmonizer(FakeBackend(), 32, "bicubic")


@pytest.mark.slow
@pytest.mark.parametrize("upsample", UPSAMPLERS)
def test_a_4000x3000_scan_comes_back_4000x3000_with_bounded_memory(
    make_pair, tiny_model: Path, upsample: str
) -> None:
    """The full-resolution stages work in strips: a few image-sized buffers, not dozens."""
    import tracemalloc

    composite, mask = make_pair(3000, 4000, seed=5)
    mask = (mask / 255.0).astype(np.float32)
    backend = TorchBackend.load(tiny_model)
    harmonizer = Harmonizer(backend, 512, upsample)
    prepared = harmonizer.prepare(composite, mask)
    output = backend.run(prepared.model_composite[None], prepared.model_mask[None])[0]
    tracemalloc.start()
    out = harmonizer.finish(prepared, output)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert out.shape == (3000, 4000, 3)
    assert np.array_equal(out[mask == 0], composite[mask == 0])
    assert not np.array_equal(out[mask == 1], composite[mask == 1])
    assert peak < 6 * composite.nbytes, peak / composite.nbytes  # 36 MB image, < 216 MB


class HungryBackend(FakeBackend):
    """A CPU backend that needs 1 kB per working pixel."""

    on_cpu = True

    def working_bytes(self, height: int, width: int) -> int | None:
        return 1000 * height * width


def test_a_working_size_the_memory_cannot_hold_is_refused_before_the_model_runs(pair) -> None:
    from dkt.errors import WorkingMemoryError

    composite, masks = pair(64, 80)
    backend = HungryBackend(delta=0.1)
    harmonizer = Harmonizer(backend, 0)
    harmonizer.memory_left = lambda: 1000 * 64 * 80 - 1
    with pytest.raises(WorkingMemoryError, match=r"working size 80x64 needs about .* GiB"):
        harmonizer.harmonize(composite, masks["hard"])
    assert backend.calls == 0
    harmonizer.memory_left = lambda: 1000 * 64 * 80
    harmonizer.harmonize(composite, masks["hard"])
    assert backend.calls == 1


def test_a_smaller_working_size_fits_where_the_full_size_does_not(pair) -> None:
    composite, masks = pair(64, 80)
    backend = HungryBackend(delta=0.1)
    harmonizer = Harmonizer(backend, 40)
    harmonizer.memory_left = lambda: 1000 * 64 * 80 - 1
    out = harmonizer.harmonize(composite, masks["hard"])
    assert out.shape == composite.shape and backend.calls == 1


def test_a_gpu_backend_is_not_refused_by_host_memory(pair) -> None:
    composite, masks = pair(32, 32)
    backend = HungryBackend(delta=0.1)
    backend.on_cpu = False  # type: ignore[misc]
    harmonizer = Harmonizer(backend, 0)
    harmonizer.memory_left = lambda: 0
    harmonizer.harmonize(composite, masks["hard"])
    assert backend.calls == 1


# --------------------------------------------------------------------------- style strength


class StrengthBackend(FakeBackend):
    """Adds ``delta * strength`` inside the mask; records the strength of every call."""

    def __init__(self, delta: float = 0.0) -> None:
        super().__init__(delta)
        self.strengths: list[float | None] = []

    @property
    def strength_refusal(self) -> str | None:
        return None

    def run(self, composite: np.ndarray, mask: np.ndarray, strength: float | None = None):
        self.strengths.append(strength)
        self.calls += 1
        scale = 1.0 if strength is None else strength
        return (composite + self.delta * scale * mask).astype(np.float32)


@pytest.mark.parametrize(("kind", "size"), [("hard", None), ("soft", None), ("soft", 24)])
def test_strength_0_gives_the_composite_byte_for_byte_without_the_model(
    pair, tiny_model: Path, kind: str, size: int | None
) -> None:
    """Even below the image's size, where the full-resolution transfer would add its own
    small changes: the network is not run at all."""
    composite, masks = pair(40, 56, seed=4)
    backend = StrengthBackend(delta=0.3)
    out = Harmonizer(backend, size, strength=0.0).harmonize(composite, masks[kind])
    assert np.array_equal(out, composite) and backend.calls == 0
    with TorchBackend.load(tiny_model) as torch_backend:
        real = Harmonizer(torch_backend, size, strength=0.0).harmonize(composite, masks[kind])
    assert np.array_equal(real, composite)


def test_strength_reaches_the_backend_only_when_it_is_not_1(pair) -> None:
    composite, masks = pair(40, 56)
    backend = StrengthBackend(delta=0.4)
    change = {}
    for strength in (1.0, 0.5):
        out = Harmonizer(backend, 0, strength=strength).harmonize(composite, masks["hard"])
        change[strength] = np.abs(out.astype(int) - composite)[masks["hard"] > 0].mean()
    assert backend.strengths == [None, 0.5]  # a two-argument run still works at 1
    assert 0 < change[0.5] < change[1.0]


def test_a_backend_that_knows_no_strength_runs_at_1_and_refuses_the_rest(pair) -> None:
    from dkt.errors import BackendError

    composite, masks = pair(30, 40)
    backend = FakeBackend(delta=0.2)  # its run takes two arrays: written before strength
    Harmonizer(backend, strength=1.0).harmonize(composite, masks["hard"])
    with pytest.raises(BackendError, match=r"^strength 0\.5: the fake backend runs at style "):
        Harmonizer(backend, strength=0.5)


@pytest.mark.parametrize("strength", [-0.1, 1.5, float("nan"), "strong"])
def test_a_strength_outside_0_to_1_is_a_value_error(strength: object) -> None:
    with pytest.raises(ValueError, match="strength must be a number from 0 to 1"):
        Harmonizer(FakeBackend(), strength=strength)  # type: ignore[arg-type]


def test_a_full_mask_is_refused_at_strength_0_too(pair) -> None:
    composite, _ = pair(20, 20)
    with pytest.raises(EmptyBackgroundError):
        Harmonizer(StrengthBackend(), strength=0.0).harmonize(composite, np.ones((20, 20)))


class NaNObjectBackend(FakeBackend):
    """A broken (diverged) model: NaN or infinity where the object is, the painting kept."""

    value = float("nan")

    def run(self, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.where(mask > 0, np.float32(self.value), composite).astype(np.float32)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize(("height", "width", "size"), [(64, 80, None), (128, 160, 64)])
def test_a_non_finite_model_output_fails_the_image(
    pair, value: float, height: int, width: int, size: int | None
) -> None:
    """The composite came back unchanged and counted as harmonized (direct and transfer)."""
    from dkt.errors import ModelOutputError

    composite, masks = pair(height, width)
    backend = NaNObjectBackend()
    backend.value = value
    with pytest.raises(ModelOutputError, match="NaN or infinite inside the object"):
        Harmonizer(backend, size=size).harmonize(composite, masks["soft"])
