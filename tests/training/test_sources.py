"""Tests for training.sources: paintings from folders or CSV lists, objects from mask
images, COCO instances JSON and YOLO segmentation labels.

COCO files are written here, over a generated photo, so every mask has a known answer;
YOLO parsing is checked on the real labels of ``../shared/data`` (read in place) against
the instance masks rasterised from them.
"""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dkt.errors import MaskSourceError, PathError
from training.data import Foreground, PolygonMask, RleMask, _rle_runs, decode_mask
from training.sources import load_foregrounds, load_paintings, polygon_fraction

mask_api = pytest.importorskip("pycocotools.mask")

H, W = 40, 50  # the generated COCO photo


def _save_rgb(path: Path, h: int = H, w: int = W, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _rect(top: int, bottom: int, left: int, right: int, h: int = H, w: int = W) -> np.ndarray:
    mask = np.zeros((h, w), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def _runs(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE by hand: column-major runs, starting with a run of zeros."""
    flat = mask.flatten(order="F").astype(int)
    edges = np.flatnonzero(np.diff(flat)) + 1
    bounds = [0, *edges.tolist(), flat.size]
    runs = np.diff(bounds).tolist()
    return runs if flat[0] == 0 else [0, *runs]


#: Known masks of the four annotations of the COCO file below.
POLY_MASK = _rect(5, 20, 10, 30)  # 300 px = 0.15 of the photo
CROWD_MASK = _rect(25, 35, 35, 45)  # 100 px = 0.05
_yy, _xx = np.mgrid[:H, :W]
BLOB_MASK = (_yy - 28) ** 2 + (_xx - 12) ** 2 <= 36  # a disc, compressed RLE
TINY_MASK = _rect(0, 2, 0, 3)  # 6 px: under 5%


@pytest.fixture
def coco(tmp_path: Path) -> tuple[Path, Path]:
    """photos/ with one photo (and one listed but missing), and its instances JSON."""
    photos = tmp_path / "photos"
    _save_rgb(photos / "sub" / "a.png")
    blob = mask_api.encode(np.asfortranarray(BLOB_MASK.astype(np.uint8)))
    doc = {
        "images": [
            {"id": 1, "file_name": "sub/a.png", "width": W, "height": H},
            {"id": 2, "file_name": "gone.jpg", "width": W, "height": H},
        ],
        "annotations": [
            {"id": 11, "image_id": 1, "iscrowd": 0, "area": 300.0,
             "segmentation": [[10, 5, 30, 5, 30, 20, 10, 20], [1, 1, 2, 2]]},
            {"id": 12, "image_id": 1, "iscrowd": 1, "area": 100,
             "segmentation": {"size": [H, W], "counts": _runs(CROWD_MASK)}},
            {"id": 13, "image_id": 1, "iscrowd": 0,  # no area: measured from the RLE
             "segmentation": {"size": [H, W], "counts": blob["counts"].decode()}},
            {"id": 14, "image_id": 1, "iscrowd": 0, "area": 6,
             "segmentation": [[0, 0, 3, 0, 3, 2, 0, 2]]},
            {"id": 15, "image_id": 2, "iscrowd": 0, "area": 500,
             "segmentation": [[0, 0, 30, 0, 30, 30]]},
        ],
    }  # fmt: skip
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc))
    return photos, path


def _write_coco(path: Path, annotations: list[dict[str, object]]) -> Path:
    doc = {"images": [{"id": 1, "file_name": "sub/a.png", "width": W, "height": H}]}
    path.write_text(json.dumps({**doc, "annotations": annotations}))
    return path


def _all_coco(photos: Path, path: Path) -> list[Foreground]:
    """Every object of the fixture's JSON (its missing photo's warning is tested once)."""
    with pytest.warns(UserWarning, match="gone.jpg"):
        return load_foregrounds(photos, coco=path, ratio=None)


# ------------------------------------------------------------------ COCO


def test_coco_polygon_and_rle_masks_decode_exactly(coco: tuple[Path, Path]) -> None:
    photos, path = coco
    unmatched: list[Path] = []
    with pytest.warns(UserWarning, match=r"1 image\(s\) of .*instances.json.*gone.jpg"):
        fgs = load_foregrounds(photos, coco=path, ratio=None, unmatched=unmatched)
    assert unmatched == [photos / "gone.jpg"]
    assert [fg.image for fg in fgs] == [photos / "sub" / "a.png"] * 4
    assert [fg.mask.where for fg in fgs] == [f"annotation {i}" for i in (11, 12, 13, 14)]
    poly, crowd, blob, tiny = (fg.mask for fg in fgs)
    assert isinstance(poly, PolygonMask) and poly.frame == (H, W)
    assert len(poly.polygons) == 1  # the 2-point part is dropped, not read as a box
    assert isinstance(crowd, RleMask) and isinstance(blob, RleMask)
    for source, expected in ((poly, POLY_MASK), (crowd, CROWD_MASK), (blob, BLOB_MASK),
                             (tiny, TINY_MASK)):  # fmt: skip
        got = decode_mask(source, H, W)
        assert got.dtype == bool and np.array_equal(got, expected), source.where


def test_coco_masks_follow_a_resized_photo(coco: tuple[Path, Path]) -> None:
    photos, path = coco
    poly, crowd, *_ = (fg.mask for fg in _all_coco(photos, path))
    twice = np.ones((2, 2), dtype=bool)
    assert np.array_equal(decode_mask(poly, 2 * H, 2 * W), np.kron(POLY_MASK, twice))
    assert np.array_equal(decode_mask(crowd, 2 * H, 2 * W), np.kron(CROWD_MASK, twice))
    with pytest.raises(MaskSourceError, match=r"instances.json: annotation 11: .*50x40.*50x50"):
        decode_mask(poly, W, W)


def test_coco_ratio_filter_uses_the_annotation_area(coco: tuple[Path, Path]) -> None:
    photos, path = coco
    with pytest.warns(UserWarning):
        kept = load_foregrounds(photos, coco=path)  # default 5% to 30%
    assert [fg.mask.where for fg in kept] == ["annotation 11", "annotation 12", "annotation 13"]
    with pytest.warns(UserWarning):
        narrow = load_foregrounds(photos, coco=path, ratio=(0.1, 0.2))
    assert [fg.mask.where for fg in narrow] == ["annotation 11"]
    with (
        pytest.warns(UserWarning),
        pytest.raises(PathError, match=r"instances.json: none of its 4"),
    ):
        load_foregrounds(photos, coco=path, ratio=(0.5, 0.6))


def test_mask_sources_are_hashable_and_pickle(coco: tuple[Path, Path]) -> None:
    photos, path = coco
    fgs = _all_coco(photos, path)
    assert len({*fgs, *_all_coco(photos, path)}) == 4
    assert pickle.loads(pickle.dumps(fgs)) == fgs
    assert Foreground(photos / "x.png", Path("m.png")).mask == Path("m.png")


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        ({"segmentation": [[1, 2, "x", 4, 5, 6]]}, "annotation 7: a polygon must be a list"),
        ({"segmentation": [[1, 2, 3, 4, 5, 6, 7]]}, "annotation 7: a polygon has an odd"),
        ({"segmentation": {"size": [H, W], "counts": [5, 3]}}, "annotation 7: RLE runs cover 8"),
        ({"segmentation": {"size": [H, W], "counts": [5, -3]}}, "annotation 7: RLE counts must"),
        ({"segmentation": {"size": [H, W], "counts": "a b"}}, "annotation 7: RLE counts: char"),
        ({"segmentation": {"size": [H, W], "counts": "PPYo1"}}, "annotation 7: RLE runs cover"),
        ({"segmentation": {"size": [H], "counts": "0"}}, "annotation 7: RLE 'size'"),
        ({"segmentation": 3}, "annotation 7: 'segmentation' must be"),
        ({"image_id": 9, "segmentation": []}, "annotation 7: image_id 9 is not among"),
    ],
)
def test_coco_bad_annotation_names_file_and_id(
    coco: tuple[Path, Path], annotation: dict[str, object], message: str
) -> None:
    photos, _ = coco
    path = _write_coco(photos.parent / "bad.json", [{"id": 7, "image_id": 1, **annotation}])
    with pytest.raises(PathError, match=rf"bad.json: {message}"):
        load_foregrounds(photos, coco=path, ratio=None)


def test_coco_unreadable_or_foreign_json(coco: tuple[Path, Path]) -> None:
    photos, path = coco
    broken = photos.parent / "broken.json"
    broken.write_text(path.read_text()[:-40])
    with pytest.raises(PathError, match=r"broken.json: not valid JSON \(line 1"):
        load_foregrounds(photos, coco=broken)
    broken.write_text(json.dumps({"images": []}))
    with pytest.raises(
        PathError, match=r"broken.json: not a COCO instances file: no 'annotations'"
    ):
        load_foregrounds(photos, coco=broken)
    with pytest.raises(PathError, match=r"missing.json: no such file"):
        load_foregrounds(photos, coco=photos.parent / "missing.json")
    broken.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png"}], "annotations": []}))
    with pytest.raises(PathError, match=r"broken.json: image 1: width and height"):
        load_foregrounds(photos, coco=broken)


def test_exactly_one_mask_source(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"exactly one mask source.*got none"):
        load_foregrounds(tmp_path)
    with pytest.raises(ValueError, match="got masks, yolo"):
        load_foregrounds(tmp_path, masks=tmp_path, yolo=tmp_path)
    with pytest.raises(ValueError, match="ratio"):
        load_foregrounds(tmp_path, masks=tmp_path, ratio=(0.4, 0.2))


def test_rle_string_decoder_matches_pycocotools() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        h, w = rng.integers(1, 30, size=2)
        mask = rng.random((h, w)) < rng.random()
        counts = mask_api.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode()
        assert _rle_runs(counts) == _runs(mask)


# ------------------------------------------------------------------ YOLO


def test_yolo_real_labels_match_the_shared_masks(shared_data: Path) -> None:
    images, labels = shared_data / "photos" / "images", shared_data / "photos" / "labels"
    fgs = load_foregrounds(images, yolo=labels, ratio=None)
    lines = {
        (p.stem, n): len(line.split())
        for p in labels.glob("*.txt")
        for n, line in enumerate(p.read_text().splitlines(), start=1)
        if line.split()
    }
    assert len(fgs) == sum(v > 5 for v in lines.values()) > 500
    for fg in fgs:
        assert isinstance(fg.mask, PolygonMask) and fg.mask.frame is None
        assert fg.image.stem == fg.mask.file.stem and fg.image.parent == images
        assert len(fg.mask.polygons[0]) == lines[fg.mask.file.stem, int(fg.mask.where[5:])] - 1

    # The shared masks were rasterised from these labels: <photo>_objNN is line NN + 1.
    for mask_file in sorted((shared_data / "photos" / "masks").glob("coco_*_obj*.png"))[::40]:
        stem, obj = mask_file.stem.rsplit("_obj", 1)
        (fg,) = (f for f in fgs if f.image.stem == stem and f.mask.where == f"line {int(obj) + 1}")
        expected = np.asarray(Image.open(mask_file)) >= 128
        got = decode_mask(fg.mask, *expected.shape)
        iou = (got & expected).sum() / (got | expected).sum()
        assert iou > 0.9, (mask_file.name, iou)

    kept = load_foregrounds(images, yolo=labels)
    assert 50 < len(kept) < len(fgs)
    assert all(0.05 <= polygon_fraction(fg.mask.polygons) <= 0.30 for fg in kept)


def test_yolo_layouts_boxes_and_errors(tmp_path: Path) -> None:
    photos, labels = tmp_path / "images", tmp_path / "labels"
    a = _save_rgb(photos / "train" / "a.jpg", 20, 20)
    b = _save_rgb(photos / "b.png", 20, 20)
    square = "0 0.1 0.1 0.6 0.1 0.6 0.6 0.1 0.6"  # a quarter of the photo
    (labels / "train").mkdir(parents=True)
    (labels / "train" / "a.txt").write_text(f"{square}\n\n3 0.5 0.5 0.2 0.2\n")
    (labels / "b.txt").write_text(f"3 0.5 0.5 0.2 0.2\n{square}\n1 0 0 0.1 0 0.1 0.1\n")
    (labels / "orphan.txt").write_text(square)
    unmatched: list[Path] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fgs = load_foregrounds(photos, yolo=labels, unmatched=unmatched)
    messages = " | ".join(str(w.message) for w in caught)
    assert "1 label file(s)" in messages and "orphan.txt" in messages
    assert "2 detection-only line(s) (a box, no polygon) in 2 label file(s)" in messages
    assert unmatched == [labels / "orphan.txt"]
    assert [(fg.image, fg.mask.where) for fg in fgs] == [(b, "line 2"), (a, "line 1")]
    assert decode_mask(fgs[0].mask, 20, 20).sum() == 100  # the 1% triangle was filtered

    (labels / "b.txt").write_text(f"{square}\n0 0.1 0.2 0.3\n")
    with pytest.raises(PathError, match=r"b.txt: line 2: expected a class id .* got 4 values"):
        load_foregrounds(photos, yolo=labels)
    (labels / "b.txt").write_text("person 0.1 0.1 0.6 0.1 0.6 0.6\n")
    with pytest.raises(PathError, match=r"b.txt: line 1: expected a class id"):
        load_foregrounds(photos, yolo=labels)


# ------------------------------------------------------------------ mask images


def test_mask_images_ratio_filter(tmp_path: Path) -> None:
    photos, masks = tmp_path / "img", tmp_path / "masks"
    _save_rgb(photos / "a.png", 20, 20)
    masks.mkdir()
    areas = {"a_obj00": (2, 2), "a_obj01": (10, 10), "a_obj02": (20, 18)}  # 1%, 25%, 90%
    for name, (rows, cols) in areas.items():
        mask = _rect(0, rows, 0, cols, 20, 20).astype(np.uint8) * 255
        Image.fromarray(mask).save(masks / f"{name}.png")
    (masks / "a_obj03.png").write_bytes(b"not a png")  # kept: the dataset reports it
    kept = load_foregrounds(photos, masks=masks)
    assert [fg.mask.name for fg in kept] == ["a_obj01.png", "a_obj03.png"]
    assert len(load_foregrounds(photos, masks=masks, ratio=None)) == 4


def test_shared_masks_surviving_the_default_filter(shared_data: Path) -> None:
    photos = shared_data / "photos"
    kept = load_foregrounds(photos / "images", masks=photos / "masks")
    assert len(kept) == 126  # of 230: the figure quoted in training/sources.py


# ------------------------------------------------------------------ paintings


def test_paintings_folder_or_csv_exactly_one(tmp_path: Path) -> None:
    p = _save_rgb(tmp_path / "art" / "p.png", 8, 8)
    assert load_paintings(tmp_path / "art") == [p]
    with pytest.raises(ValueError, match="exactly one"):
        load_paintings()
    with pytest.raises(ValueError, match="exactly one"):
        load_paintings(tmp_path / "art", tmp_path / "list.csv")


def test_paintings_csv_without_header_like_wikiart(tmp_path: Path) -> None:
    root = tmp_path / "wikiart"
    files = [_save_rgb(root / "Impressionism" / f"monet_{i}.jpg", 8, 8) for i in range(3)]
    listing = tmp_path / "csv" / "style_train.csv"
    listing.parent.mkdir()
    rows = [f"Impressionism/monet_{i}.jpg,{i}" for i in (2, 0, 1)]
    rows += [f"Impressionism/lost_{i}.jpg,4" for i in range(7)]
    listing.write_text("\n".join(rows) + "\n")
    with pytest.warns(UserWarning, match=r"7 painting\(s\) listed in .*lost_0.jpg.* and 2 more"):
        found = load_paintings(csv=listing, root=root)
    assert found == [files[2], files[0], files[1]]  # the CSV's order


def test_paintings_csv_with_header(tmp_path: Path) -> None:
    a = _save_rgb(tmp_path / "a.png", 8, 8)
    b = _save_rgb(tmp_path / "d" / "b.jpg", 8, 8)
    named = tmp_path / "named.csv"
    named.write_text("\ufeffstyle,Filename\nx,a.png\n\ny,d/b.jpg\n")
    assert load_paintings(csv=named) == [a, b]
    plain = tmp_path / "plain.csv"
    plain.write_text("painting,style\na.png,x\n")  # an unknown header: not a file, skipped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_paintings(csv=plain) == [a]


def test_paintings_csv_errors_name_the_file(tmp_path: Path) -> None:
    listing = tmp_path / "list.csv"
    listing.write_text("path\nnope.jpg\nalso-nope.jpg\n")
    with pytest.warns(UserWarning), pytest.raises(PathError, match=r"list.csv: none of the 2"):
        load_paintings(csv=listing)
    listing.write_text("path,style\n,x\n")
    with pytest.raises(PathError, match=r"list.csv: line 2: no painting path"):
        load_paintings(csv=listing)
    listing.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(PathError, match=r"list.csv: not UTF-8"):
        load_paintings(csv=listing)
    with pytest.raises(PathError, match=r"absent.csv: no such file"):
        load_paintings(csv=tmp_path / "absent.csv")
    listing.write_text("\n\n")
    with pytest.raises(PathError, match=r"list.csv: lists no paintings"):
        load_paintings(csv=listing)
