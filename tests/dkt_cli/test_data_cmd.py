"""``dkt data make-composites``: a frozen, reproducible evaluation set with a manifest."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dkt.imaging.imageio import read_image, read_mask, write_image
from dkt.inference.manifest import plan_manifest
from dkt_cli.app import app
from training.data import CompositeConfig, CompositeDataset
from training.sources import load_foregrounds, load_paintings

runner = CliRunner()
COUNT = 4


def flat(text: str) -> str:
    return "".join(text.split())


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """3 paintings (40x48) and 2 photos (32x32), each with one ``_obj00`` mask (~20%)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    yy, xx = np.mgrid[0:32, 0:32]
    for i in range(3):
        write_image(root / "paintings" / f"p{i}.png", rng.integers(0, 256, (40, 48, 3), np.uint8))
    for i in range(2):
        write_image(root / "photos" / f"ph{i}.png", rng.integers(0, 256, (32, 32, 3), np.uint8))
        blob = ((yy - 16) ** 2 + (xx - 14 - 3 * i) ** 2 < 64).astype(np.uint8) * 255
        write_image(root / "masks" / f"ph{i}_obj00.png", blob)
    return root


def _args(data: Path, out: Path, *extra: str, count: int = COUNT) -> list[str]:
    return [
        "data", "make-composites", "--paintings", str(data / "paintings"),
        "--photos", str(data / "photos"), "--masks", str(data / "masks"),
        "--count", str(count), "--size", "32", "--out", str(out), *extra,
    ]  # fmt: skip


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_same_seed_gives_byte_identical_sets(data: Path, tmp_path: Path) -> None:
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((first, "5"), (second, "5"), (other, "6")):
        result = runner.invoke(app, _args(data, out, "--seed", seed))
        assert result.exit_code == 0, result.output
    files = _files(first)
    names = [f"{i:05d}.png" for i in range(COUNT)]
    expected = {f"{d}/{n}" for d in ("composites", "masks", "paintings") for n in names}
    assert set(files) == expected | {"manifest.csv", "make-composites.json"}
    assert files == _files(second)
    assert files["manifest.csv"] != _files(other)["manifest.csv"]
    assert files["composites/00000.png"] != _files(other)["composites/00000.png"]

    settings = json.loads(files["make-composites.json"])
    assert settings["seed"] == 5 and settings["count"] == COUNT and settings["size"] == 32
    assert settings["versions"]["dkt"] and settings["foregrounds"]["objects"] == 2
    assert settings["foregrounds"]["ratio"] == [0.05, 0.3] and settings["fg_ratio"] == [0.05, 0.3]


def test_items_are_what_training_draws(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "set"
    assert runner.invoke(app, _args(data, out, "--seed", "2")).exit_code == 0
    dataset = CompositeDataset(
        load_paintings(data / "paintings"),
        load_foregrounds(data / "photos", masks=data / "masks"),
        CompositeConfig(size=32, seed=2),
    )
    for i in (0, COUNT - 1):
        item = dataset[i]
        composite = read_image(out / "composites" / f"{i:05d}.png")
        expected = (item["composite"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        assert np.array_equal(composite, expected)
        mask = read_mask(out / "masks" / f"{i:05d}.png")
        assert np.array_equal(mask, item["mask"][0].numpy())
        painting = read_image(out / "paintings" / f"{i:05d}.png")
        outside = mask == 0
        assert np.array_equal(composite[outside], painting[outside])


def test_manifest_feeds_harmonize(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "set"
    assert runner.invoke(app, _args(data, out)).exit_code == 0
    jobs = plan_manifest(out / "manifest.csv")
    assert [job.key for job in jobs] == [f"harmonized/{i:05d}.png" for i in range(COUNT)]
    assert all(job.composite.is_file() and job.mask.is_file() for job in jobs)
    assert all(job.output.parent == out / "harmonized" for job in jobs)
    with open(out / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:3] == ["composite", "mask", "output"]
    for i, row in enumerate(rows):
        assert (row["index"], row["epoch"], row["seed"], row["attempt"]) == (str(i), "0", "0", "0")
        assert Path(row["painting_source"]).parent == (data / "paintings").absolute()
        photo = Path(row["photo_source"])
        assert Path(row["mask_source"]).name == f"{photo.stem}_obj00.png"


def test_refuses_a_non_empty_out_unless_overwrite(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "set"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = runner.invoke(app, _args(data, out))
    assert result.exit_code == 2
    assert flat(f"--out {out}: the folder is not empty (use --overwrite") in flat(result.stderr)

    assert runner.invoke(app, _args(data, out, "--overwrite", count=6)).exit_code == 0
    assert (out / "composites" / "00005.png").is_file()
    result = runner.invoke(app, _args(data, out, "--overwrite"))  # a shorter set replaces it
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "masks").iterdir()) == [f"{i:05d}.png" for i in range(4)]
    assert (out / "notes.txt").read_text() == "mine"


def test_broken_coco_json_is_named(data: Path, tmp_path: Path) -> None:
    broken = tmp_path / "instances.json"
    broken.write_text('{"images": [{"id": 1, "file_name": "ph0.png"')
    args = _args(data, tmp_path / "set")
    args[args.index("--masks") : args.index("--masks") + 2] = ["--coco", str(broken)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert flat(f"error: {broken}: not valid JSON (line 1") in flat(result.stderr)
    assert not (tmp_path / "set").exists()


def test_coco_source_and_mask_descriptions(data: Path, tmp_path: Path) -> None:
    pytest.importorskip("pycocotools")
    doc = {
        "images": [{"id": i, "file_name": f"ph{i}.png", "width": 32, "height": 32} for i in (0, 1)],
        "annotations": [
            {"id": 10 + i, "image_id": i, "area": 200, "iscrowd": 0,
             "segmentation": [[8, 8, 24, 8, 24, 22, 8, 22]]}
            for i in (0, 1)
        ],
    }  # fmt: skip
    coco = tmp_path / "instances.json"
    coco.write_text(json.dumps(doc))
    out = tmp_path / "set"
    args = _args(data, out)
    args[args.index("--masks") : args.index("--masks") + 2] = ["--coco", str(coco)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    with open(out / "manifest.csv", newline="") as fh:
        sources = [row["mask_source"] for row in csv.DictReader(fh)]
    assert sources[:2] == [f"{coco.absolute()} (annotation {i})" for i in (10, 11)]
    assert read_mask(out / "masks" / "00000.png").mean() > 0.04


def test_skip_bad_counts_unreadable_paintings(data: Path, tmp_path: Path) -> None:
    bad = data / "paintings" / "zz-broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not a whole jpeg")
    result = runner.invoke(app, _args(data, tmp_path / "strict", count=12))
    assert result.exit_code == 2
    assert flat(f"{bad}: truncated or corrupt image") in flat(result.stderr)
    assert "--skip-bad" in result.stderr

    result = runner.invoke(app, _args(data, tmp_path / "lenient", "--skip-bad", count=12))
    assert result.exit_code == 0, result.output
    assert "skipped 1 unreadable file(s)" in result.stderr
    settings = json.loads((tmp_path / "lenient" / "make-composites.json").read_text())
    assert settings["skipped"] == [str(bad.absolute())]
    with open(tmp_path / "lenient" / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert any(row["attempt"] != "0" for row in rows)
    assert all(row["painting_source"] != str(bad.absolute()) for row in rows)


def test_paintings_csv_and_option_errors(data: Path, tmp_path: Path) -> None:
    listing = tmp_path / "lists" / "train.csv"
    listing.parent.mkdir()
    listing.write_text("p0.png,0\np2.png,1\nmissing.png,1\n")
    args = _args(data, tmp_path / "set")
    args[args.index("--paintings") : args.index("--paintings") + 2] = [
        "--paintings-csv", str(listing), "--paintings-root", str(data / "paintings"),
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "warning: 1 painting(s) listed in" in result.stderr and "missing.png" in result.stderr
    with open(tmp_path / "set" / "manifest.csv", newline="") as fh:
        used = {Path(row["painting_source"]).name for row in csv.DictReader(fh)}
    assert used <= {"p0.png", "p2.png"}

    both = [*_args(data, tmp_path / "x"), "--yolo", str(data)]
    assert "exactly one mask source" in runner.invoke(app, both).stderr
    bad_ratio = _args(data, tmp_path / "x", "--ratio", "0.3,0.1")
    assert "--ratio '0.3,0.1': need 0 <= LO <= HI <= 1" in runner.invoke(app, bad_ratio).stderr
    none_left = _args(data, tmp_path / "x", "--ratio", "0.5,0.9")
    result = runner.invoke(app, none_left)
    assert result.exit_code == 2 and "none of its 2 objects covers 0.5 to 0.9" in result.stderr
