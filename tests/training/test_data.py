"""Tests for training.data: on-the-fly painting + photo-object composites.

Synthetic images are tiny and made under tmp_path so the suite stays fast; the real
collection is only read (never copied) through the ``shared_data`` fixture.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from dkt.errors import ImageInputError, PathError
from training.data import (
    CompositeConfig,
    CompositeDataset,
    Foreground,
    PolygonMask,
    RleMask,
    find_foregrounds,
    find_paintings,
)

SIZE = 64


def _save_rgb(path: Path, h: int, w: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _save_mask(path: Path, mask: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    return path


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


@pytest.fixture
def synth(tmp_path: Path) -> tuple[list[Path], list[Foreground]]:
    """Three paintings of different shapes, two photos, three objects (one very thin)."""
    paintings = [
        _save_rgb(tmp_path / "paint" / "p0.png", 40, 60, 1),
        _save_rgb(tmp_path / "paint" / "sub" / "p1.jpg", 80, 50, 2),
        _save_rgb(tmp_path / "paint" / "p2.png", 32, 32, 3),
    ]
    a = _save_rgb(tmp_path / "img" / "a.png", 48, 64, 4)
    b = _save_rgb(tmp_path / "img" / "b.png", 60, 40, 5)
    _save_mask(tmp_path / "mask" / "a_obj00.png", _ellipse(48, 64, 20, 40, 10, 14))
    thin = np.zeros((60, 40), dtype=bool)
    thin[4:58, 18:21] = True  # a 3-px pole: cannot reach 5% of the canvas without clipping
    _save_mask(tmp_path / "mask" / "b_obj00.png", thin)
    _save_mask(tmp_path / "mask" / "b_obj01.png", _ellipse(60, 40, 40, 12, 12, 8))
    foregrounds = find_foregrounds(a.parent, tmp_path / "mask")
    assert [fg.image for fg in foregrounds] == [a, b, b]
    assert find_paintings(tmp_path / "paint") == sorted(paintings)
    return sorted(paintings), foregrounds


def _config(**kw: object) -> CompositeConfig:
    return CompositeConfig(size=SIZE, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- file discovery


def test_find_paintings_sorted_recursive_and_errors(tmp_path: Path) -> None:
    folder = tmp_path / "paint"
    b = _save_rgb(folder / "b.png", 8, 8, 0)
    a = _save_rgb(folder / "z" / "a.JPG", 8, 8, 0)
    (folder / "notes.txt").write_text("not an image")
    _save_rgb(folder / ".hidden" / "c.png", 8, 8, 0)
    assert find_paintings(folder) == sorted([a, b])

    (tmp_path / "empty").mkdir()
    with pytest.raises(PathError, match="no painting images"):
        find_paintings(tmp_path / "empty")
    with pytest.raises(PathError, match="not found"):
        find_paintings(tmp_path / "missing")


def test_find_foregrounds_name_patterns(tmp_path: Path) -> None:
    images, masks = tmp_path / "img", tmp_path / "mask"
    photo_a = _save_rgb(images / "a.jpg", 8, 8, 0)
    photo_b = _save_rgb(images / "b.png", 8, 8, 0)
    photo_c = _save_rgb(images / "c_obj01.jpg", 8, 8, 0)  # a photo whose stem ends in _objNN
    photo_d = _save_rgb(images / "deep" / "d.jpeg", 8, 8, 0)
    m = np.ones((8, 8), dtype=bool)
    a0 = _save_mask(masks / "a_obj00.png", m)
    a12 = _save_mask(masks / "a_obj12.png", m)
    b_plain = _save_mask(masks / "b.png", m)
    c_exact = _save_mask(masks / "c_obj01.png", m)
    c_obj = _save_mask(masks / "c_obj01_obj03.png", m)
    d_bmp = _save_mask(masks / "x" / "d_obj7.bmp", m)
    orphan = _save_mask(masks / "zzz_obj00.png", m)
    not_obj = _save_mask(masks / "a_objX.png", m)  # not the _objNN pattern

    unmatched: list[Path] = []
    with pytest.warns(UserWarning, match="2 mask"):
        found = find_foregrounds(images, masks, unmatched=unmatched)
    assert found == sorted(
        [
            Foreground(photo_a, a0),
            Foreground(photo_a, a12),
            Foreground(photo_b, b_plain),
            Foreground(photo_c, c_exact),
            Foreground(photo_c, c_obj),
            Foreground(photo_d, d_bmp),
        ],
        key=lambda fg: (str(fg.image), str(fg.mask)),
    )
    assert sorted(unmatched) == sorted([orphan, not_obj])
    with pytest.warns(UserWarning):
        assert find_foregrounds(images, masks) == found  # deterministic


def test_find_foregrounds_shared_folder_and_errors(tmp_path: Path) -> None:
    folder = tmp_path / "both"
    photo = _save_rgb(folder / "cat.jpg", 8, 8, 0)
    mask = _save_mask(folder / "cat_obj00.png", np.ones((8, 8), dtype=bool))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the photo itself must not be reported as an orphan
        assert find_foregrounds(folder, folder) == [Foreground(photo, mask)]

    (tmp_path / "masks").mkdir()
    with pytest.raises(PathError, match="no mask matches"):
        find_foregrounds(folder, tmp_path / "masks")
    with pytest.raises(PathError, match="not found"):
        find_foregrounds(tmp_path / "nope", folder)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="fg_ratio"):
        CompositeConfig(fg_ratio=(0.3, 0.1))
    with pytest.raises(ValueError, match="flip_prob"):
        CompositeConfig(flip_prob=1.5)
    with pytest.raises(ValueError, match="seed"):
        CompositeConfig(seed=-1)


# ---------------------------------------------------------------- items


def test_item_shapes_dtypes_ranges(synth: tuple[list[Path], list[Foreground]]) -> None:
    paintings, fgs = synth
    ds = CompositeDataset(paintings, fgs, _config())
    assert len(ds) == 3  # smallest multiple of 3 foregrounds covering 3 paintings
    assert len(CompositeDataset(paintings, fgs, _config(), length=17)) == 17
    for i in range(len(ds)):
        item = ds[i]
        assert set(item) == {"composite", "mask", "painting"}
        for key, channels in (("composite", 3), ("painting", 3), ("mask", 1)):
            t = item[key]
            assert t.dtype == torch.float32 and t.shape == (channels, SIZE, SIZE), key
            assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0, key
        assert set(item["mask"].unique().tolist()) == {0.0, 1.0}
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_deterministic_and_epoch_dependent(synth: tuple[list[Path], list[Foreground]]) -> None:
    paintings, fgs = synth
    ds = CompositeDataset(paintings, fgs, _config(seed=7), length=6)
    # A one-entry cache (constant eviction, photo b has two objects) changes nothing.
    fresh = CompositeDataset(paintings, fgs, _config(seed=7), length=6, cache_size=1)
    first = [ds[i] for i in range(6)]
    again = [fresh[i] for i in reversed(range(6))][::-1]  # other order, cold cache
    for x, y in zip(first, again, strict=True):
        for key in x:
            assert torch.equal(x[key], y[key]), key

    ds.set_epoch(1)
    epoch1 = [ds[i] for i in range(6)]
    assert any(
        not torch.equal(x["composite"], y["composite"]) for x, y in zip(first, epoch1, strict=True)
    )
    ds.set_epoch(0)
    assert torch.equal(ds[2]["composite"], first[2]["composite"])  # resume reproduces

    other_seed = CompositeDataset(paintings, fgs, _config(seed=8), length=6)
    assert not torch.equal(other_seed[0]["composite"], first[0]["composite"])


def test_composite_is_painting_outside_mask(synth: tuple[list[Path], list[Foreground]]) -> None:
    paintings, fgs = synth
    ds = CompositeDataset(paintings, fgs, _config(), length=12)
    for i in range(len(ds)):
        item = ds[i]
        outside = item["mask"][0] == 0
        assert torch.equal(item["composite"][:, outside], item["painting"][:, outside])
        # Inside, the photo replaces the painting (random-noise images: almost never equal).
        inside = ~outside
        assert not torch.equal(item["composite"][:, inside], item["painting"][:, inside])


def test_foreground_ratio_within_range(synth: tuple[list[Path], list[Foreground]]) -> None:
    paintings, fgs = synth
    lo, hi = 0.05, 0.30
    ds = CompositeDataset(paintings, fgs, _config(fg_ratio=(lo, hi)), length=30)
    ratios = np.array([float(ds[i]["mask"].mean()) for i in range(len(ds))])
    # Tolerance: mask rounding at 64 px and clipping of the thin pole at the canvas edge.
    assert ratios.min() >= lo * 0.9, ratios
    assert ratios.max() <= hi * 1.05, ratios
    assert ratios.max() - ratios.min() > 0.05  # the ratio is really sampled


def test_original_position_is_kept(tmp_path: Path) -> None:
    painting = _save_rgb(tmp_path / "p.png", 64, 64, 0)
    photo = _save_rgb(tmp_path / "img" / "a.png", 64, 128, 1)
    mask = _ellipse(64, 128, 48, 96, 8, 16)  # low right: centre at (0.75, 0.75)
    fg = Foreground(photo, _save_mask(tmp_path / "m" / "a_obj00.png", mask))
    # Small objects, so that clamping at the canvas edge does not move their centre.
    cfg = _config(fg_ratio=(0.05, 0.08), random_position_prob=0.0, flip_prob=0.0)
    ds = CompositeDataset([painting], [fg], cfg, length=10)
    for i in range(len(ds)):
        ys, xs = np.nonzero(ds[i]["mask"][0].numpy())
        assert abs(ys.mean() / SIZE - 0.75) < 0.03 and abs(xs.mean() / SIZE - 0.75) < 0.03

    # A big object at the same place is clamped inside the canvas, never clipped.
    big = CompositeDataset([painting], [fg], _config(fg_ratio=(0.25, 0.3), flip_prob=0.0), length=5)
    big.config.random_position_prob = 0.0
    for i in range(len(big)):
        m = big[i]["mask"][0]
        assert 0.25 * 0.95 <= float(m.mean()) <= 0.3 * 1.05
        assert bool(m[:, -1].any())  # pushed against the right edge


def test_bad_painting_raises_or_is_skipped(
    tmp_path: Path, synth: tuple[list[Path], list[Foreground]]
) -> None:
    paintings, fgs = synth
    bad = tmp_path / "paint" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 definitely not a whole jpeg")
    strict = CompositeDataset([bad], fgs, _config(), length=4)
    with pytest.raises(ImageInputError) as info:
        strict[0]
    assert "broken.jpg" in str(info.value) and info.value.path == bad

    all_paintings = sorted([*paintings, bad])
    lenient = CompositeDataset(all_paintings, fgs, _config(), length=24, skip_bad=True)
    items = [lenient[i] for i in range(len(lenient))]
    assert lenient.skipped == {bad}  # some draw picked it (1 in 4 per item)
    reference = CompositeDataset(all_paintings, fgs, _config(), length=24, skip_bad=True)
    for i in reversed(range(len(reference))):  # replacements are deterministic too
        assert torch.equal(reference[i]["composite"], items[i]["composite"])


def test_bad_mask_is_reported(tmp_path: Path, synth: tuple[list[Path], list[Foreground]]) -> None:
    paintings, fgs = synth
    empty = _save_mask(tmp_path / "mask" / "a_obj05.png", np.zeros((48, 64), dtype=bool))
    bad_fg = Foreground(fgs[0].image, empty)
    with pytest.raises(ImageInputError, match="a_obj05"):
        CompositeDataset(paintings, [bad_fg], _config())[0]
    ds = CompositeDataset(paintings, [*fgs, bad_fg], _config(), length=8, skip_bad=True)
    for i in range(len(ds)):
        ds[i]
    assert ds.skipped == {empty}


def test_pickle_drops_caches(synth: tuple[list[Path], list[Foreground]]) -> None:
    paintings, fgs = synth
    ds = CompositeDataset(paintings, fgs, _config(), length=3)
    item = ds[1]
    clone = pickle.loads(pickle.dumps(ds))
    assert len(clone._painting_cache) == 0 and len(clone._cutout_cache) == 0
    assert torch.equal(clone[1]["composite"], item["composite"])


def test_workers_match_single_process(synth: tuple[list[Path], list[Foreground]]) -> None:
    paintings, fgs = synth
    ds = CompositeDataset(paintings, fgs, _config(seed=3), length=8)
    ds.set_epoch(2)

    def batches(workers: int) -> list[dict[str, torch.Tensor]]:
        loader = DataLoader(ds, batch_size=4, shuffle=False, num_workers=workers)
        return list(loader)

    serial, parallel = batches(0), batches(2)
    assert len(serial) == len(parallel) == 2
    for x, y in zip(serial, parallel, strict=True):
        for key in x:
            assert torch.equal(x[key], y[key]), key


# ---------------------------------------------------------------- real data


def test_real_shared_data(shared_data: Path) -> None:
    paintings = find_paintings(shared_data / "paintings")
    fgs = find_foregrounds(shared_data / "photos" / "images", shared_data / "photos" / "masks")
    assert len(paintings) > 100 and len(fgs) > 100
    assert any(fg.image.name.startswith("libcom_") for fg in fgs)
    for fg in fgs:
        assert fg.mask.stem.rsplit("_obj", 1)[0] == fg.image.stem

    ds = CompositeDataset(paintings, fgs, CompositeConfig(size=128, seed=1), length=4)
    (batch,) = list(DataLoader(ds, batch_size=4, num_workers=0))
    assert batch["composite"].shape == (4, 3, 128, 128)
    assert batch["mask"].shape == (4, 1, 128, 128)
    ratios = batch["mask"].mean(dim=(1, 2, 3))
    assert bool((ratios > 0.04).all() and (ratios < 0.32).all()), ratios
    outside = batch["mask"].expand_as(batch["composite"]) == 0
    assert torch.equal(batch["composite"][outside], batch["painting"][outside])


def test_annotation_masks_draw_and_are_skipped_one_by_one(
    tmp_path: Path, synth: tuple[list[Path], list[Foreground]]
) -> None:
    pytest.importorskip("pycocotools")
    paintings, _ = synth
    photo = _save_rgb(tmp_path / "img" / "c.png", 40, 40, 6)
    labels = tmp_path / "labels" / "c.txt"
    square = (0.2, 0.2, 0.7, 0.2, 0.7, 0.8, 0.2, 0.8)
    good = Foreground(photo, PolygonMask((square,), None, labels, "line 1"))
    outside = PolygonMask(((2.0, 2.0, 3.0, 2.0, 3.0, 3.0),), None, labels, "line 2")
    other = Foreground(photo, RleMask("1", (1, 1), labels, "line 3"))  # one empty pixel
    with pytest.raises(ImageInputError, match=r"labels/c.txt: line 2: mask has 0 foreground"):
        CompositeDataset(paintings, [Foreground(photo, outside)], _config())[0]

    fgs = [good, Foreground(photo, outside), other]
    ds = CompositeDataset(paintings, fgs, _config(), length=9, skip_bad=True)
    ratios = [float(ds[i]["mask"].mean()) for i in range(len(ds))]
    # The annotations are skipped, not their file: the good line of it is still drawn.
    assert ds.skipped == {outside, other.mask}
    assert min(ratios) > 0.04 and good in ds._cutout_cache
