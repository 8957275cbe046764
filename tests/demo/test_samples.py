"""The demo sample must look like the real problem: a painted scene with a foreign,
photographic object pasted into it. These tests check what a user would notice."""

from __future__ import annotations

import numpy as np
import pytest

from dkt.demo.samples import DemoSample, make_demo_sample, make_object, make_painting

SMALL = (192, 256)  # fast; the sample's layout is scale-free


@pytest.fixture(scope="module")
def sample() -> DemoSample:
    """The default-size sample `dkt demo` shows."""
    return make_demo_sample()


def _laplacian(grey: np.ndarray) -> np.ndarray:
    g = grey.astype(np.float64)
    return np.abs(4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:])


def _erode(mask: np.ndarray, steps: int) -> np.ndarray:
    m = mask.copy()
    for _ in range(steps):
        inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
        m = np.zeros_like(m)
        m[1:-1, 1:-1] = inner
    return m


def test_shapes_and_dtypes(sample: DemoSample) -> None:
    assert sample.composite.shape == (384, 512, 3)
    assert sample.painting.shape == (384, 512, 3)
    assert sample.mask.shape == (384, 512)
    for arr in (sample.composite, sample.painting, sample.mask):
        assert arr.dtype == np.uint8


def test_same_seed_gives_identical_bytes() -> None:
    a = make_demo_sample(*SMALL, seed=7)
    b = make_demo_sample(*SMALL, seed=7)
    assert a.composite.tobytes() == b.composite.tobytes()
    assert a.mask.tobytes() == b.mask.tobytes()
    assert a.painting.tobytes() == b.painting.tobytes()


def test_different_seeds_give_different_samples() -> None:
    a = make_demo_sample(*SMALL, seed=1)
    b = make_demo_sample(*SMALL, seed=2)
    assert not np.array_equal(a.painting, b.painting)
    assert not np.array_equal(a.mask, b.mask)


def test_composite_equals_painting_outside_mask(sample: DemoSample) -> None:
    outside = sample.mask == 0
    assert np.array_equal(sample.composite[outside], sample.painting[outside])
    # ...and the object really changed the pixels inside.
    inside = sample.mask == 255
    diff = np.abs(sample.composite[inside].astype(int) - sample.painting[inside].astype(int))
    assert diff.mean() > 40


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_object_size_and_placement(seed: int) -> None:
    s = make_demo_sample(*SMALL, seed=seed) if seed else make_demo_sample(seed=0)
    w = s.mask.shape[1]
    frac = (s.mask >= 128).mean()
    assert 0.08 <= frac <= 0.25
    # Fully inside the frame: nothing on the border rows/columns.
    assert s.mask[0].max() == 0 and s.mask[-1].max() == 0
    assert s.mask[:, 0].max() == 0 and s.mask[:, -1].max() == 0
    # Off-centre: its centroid is well away from the image's vertical centre line.
    xs = np.nonzero(s.mask >= 128)[1]
    assert abs(xs.mean() / w - 0.5) > 0.1


def test_mask_edges_are_hard(sample: DemoSample) -> None:
    """Only a thin antialiased rim sits between 0 and 255 (a cut-out, not a soft matte)."""
    m = sample.mask
    partial = (m > 0) & (m < 255)
    assert (m == 255).sum() > 0
    assert partial.sum() < 0.06 * (m == 255).sum()
    # Every partial pixel touches both the inside and the outside within one pixel.
    core = _erode(m == 255, 2)
    assert not (partial & core).any()


@pytest.mark.parametrize("seed", [0, 3])
def test_object_colour_is_foreign_to_the_painting(seed: int) -> None:
    s = make_demo_sample(*SMALL, seed=seed)
    obj_mean = s.composite[s.mask == 255].astype(float).mean(axis=0)
    paint_mean = s.painting.reshape(-1, 3).astype(float).mean(axis=0)
    assert np.linalg.norm(obj_mean - paint_mean) > 80


def test_painting_has_brush_texture_object_is_smooth(sample: DemoSample) -> None:
    """Strokes give the painting far more high-frequency detail than the shaded object."""
    grey_paint = sample.painting.astype(float).mean(axis=2)
    grey_comp = sample.composite.astype(float).mean(axis=2)
    paint_lap = _laplacian(grey_paint).mean()
    interior = _erode(sample.mask == 255, 3)[1:-1, 1:-1]
    obj_lap = _laplacian(grey_comp)[interior].mean()
    assert paint_lap > 15
    assert paint_lap > 2.5 * obj_lap
    # The object is not perfectly flat either: it carries slight sensor noise.
    assert obj_lap > 1.0


def test_painting_uses_a_limited_palette(sample: DemoSample) -> None:
    """Quantised to 8 levels per channel (512 bins), few bins cover most of the painting."""
    q = (sample.painting // 32).reshape(-1, 3).astype(int)
    codes = q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2]
    counts = np.sort(np.bincount(codes, minlength=512))[::-1]
    assert counts[:40].sum() > 0.9 * codes.size


def test_make_painting_shape_and_determinism() -> None:
    a = make_painting(64, 96, np.random.default_rng(3))
    b = make_painting(64, 96, np.random.default_rng(3))
    assert a.shape == (64, 96, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    with pytest.raises(ValueError):
        make_painting(4, 96, np.random.default_rng(0))


@pytest.mark.parametrize("kind", ["apple", "vase"])
def test_make_object(kind: str) -> None:
    rgb, alpha = make_object(90, 70, np.random.default_rng(0), kind=kind)
    assert rgb.shape == (90, 70, 3) and rgb.dtype == np.uint8
    assert alpha.shape == (90, 70) and alpha.dtype == np.float32
    assert alpha.min() == 0.0 and alpha.max() == 1.0
    assert 0.3 < alpha.mean() < 0.9
    # Photographic: a bright specular highlight well above the object's average.
    grey = rgb.astype(float).mean(axis=2)[alpha == 1.0]
    assert grey.max() > grey.mean() + 60


def test_make_object_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        make_object(40, 40, np.random.default_rng(0), kind="teapot")
