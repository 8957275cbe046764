"""Frozen composite sets made by the library verbs directly: refusals before anything is
written, the files and the report, and an ``overwrite`` that drops only its own old files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dkt.errors import CompositeSetError, DktError
from dkt.evaluation.composites import (
    CompositeSetRequest,
    make_composite_set,
    plan_composite_set,
)
from dkt.imaging.imageio import write_image
from dkt.inference.manifest import plan_manifest
from training.data import CompositeConfig
from training.defaults import COMPOSITE_SIZE, FG_RATIO, FLIP_PROB, RANDOM_POSITION_PROB


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """2 paintings and 2 photos, each photo with one ``_obj00`` mask (~20%)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "sources"
    yy, xx = np.mgrid[0:32, 0:32]
    for i in range(2):
        write_image(root / "paintings" / f"p{i}.png", rng.integers(0, 256, (40, 48, 3), np.uint8))
        write_image(root / "photos" / f"ph{i}.png", rng.integers(0, 256, (32, 32, 3), np.uint8))
        blob = ((yy - 16) ** 2 + (xx - 14 - 3 * i) ** 2 < 64).astype(np.uint8) * 255
        write_image(root / "masks" / f"ph{i}_obj00.png", blob)
    return root


def _request(sources: Path, out: Path, **options: object) -> CompositeSetRequest:
    base: dict[str, object] = {
        "paintings": sources / "paintings", "masks": sources / "masks", "count": 3, "size": 32,
    }  # fmt: skip
    return CompositeSetRequest(out, sources / "photos", **{**base, **options})  # type: ignore[arg-type]


def test_writes_the_set_its_manifest_and_settings(sources: Path, tmp_path: Path) -> None:
    out = tmp_path / "set"
    drawn: list[int] = []
    report = make_composite_set(plan_composite_set(_request(sources, out)), drawn.append)
    assert drawn == [0, 1, 2] and report.count == 3 and report.skipped == []
    for folder in ("composites", "masks", "paintings"):
        assert sorted(p.name for p in (out / folder).iterdir()) == [
            f"{i:05d}.png" for i in range(3)
        ]
    assert [job.key for job in plan_manifest(report.manifest)] == [
        f"harmonized/{i:05d}.png" for i in range(3)
    ]
    settings = json.loads(report.settings.read_text())
    assert settings["count"] == 3 and settings["foregrounds"]["masks"] == str(sources / "masks")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"paintings": None}, "give exactly one of --paintings DIR and --paintings-csv FILE"),
        ({"paintings_root": Path(".")}, "--paintings-root only applies to --paintings-csv"),
        ({"masks": None}, "give exactly one mask source"),
        ({"yolo": Path(".")}, "give exactly one mask source"),
        ({"ratio": (0.5, 0.9)}, "masks: none of its 2 objects covers 0.5 to 0.9"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_written(
    sources: Path, tmp_path: Path, options: dict[str, object], message: str
) -> None:
    with pytest.raises(DktError, match=message):
        plan_composite_set(_request(sources, tmp_path / "set", **options))
    assert not (tmp_path / "set").exists()


def test_a_non_empty_out_needs_overwrite_which_drops_only_old_numbered_files(
    sources: Path, tmp_path: Path
) -> None:
    out = tmp_path / "set"
    make_composite_set(plan_composite_set(_request(sources, out, count=5)))
    (out / "composites" / "mine.png").write_bytes(b"kept")
    with pytest.raises(CompositeSetError, match="the folder is not empty"):
        plan_composite_set(_request(sources, out))
    make_composite_set(plan_composite_set(_request(sources, out, overwrite=True)))
    names = sorted(p.name for p in (out / "composites").iterdir())
    assert names == ["00000.png", "00001.png", "00002.png", "mine.png"]


def test_an_unreadable_painting_names_the_file_and_the_way_around_it(
    sources: Path, tmp_path: Path
) -> None:
    bad = sources / "paintings" / "zz-broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not a whole jpeg")
    plan = plan_composite_set(_request(sources, tmp_path / "strict", count=12))
    with pytest.raises(CompositeSetError, match="--skip-bad replaces draws") as caught:
        make_composite_set(plan)
    assert str(bad) in str(caught.value)
    report = make_composite_set(
        plan_composite_set(_request(sources, tmp_path / "lenient", count=12, skip_bad=True))
    )
    assert report.skipped == [str(bad.absolute())]


def test_the_light_defaults_are_the_drawing_defaults() -> None:
    """``--help`` shows training/defaults.py's numbers; a draw must use the same."""
    config = CompositeConfig()
    assert (config.size, config.fg_ratio) == (COMPOSITE_SIZE, FG_RATIO)
    assert (config.random_position_prob, config.flip_prob) == (RANDOM_POSITION_PROB, FLIP_PROB)
