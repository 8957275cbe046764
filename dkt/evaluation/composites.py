"""Frozen composite sets: one fixed set that every method and every checkpoint is scored on.

Training draws composites on the fly, so no two runs see the same pictures unless they
share a seed. An evaluation needs the opposite. :func:`make_composite_set` writes items
0..N-1 of epoch 0 of exactly the dataset training would build from the same sources and
seed (so the set can be regenerated, or matched to what a run saw), as PNG files plus a
manifest that ``dkt harmonize --manifest`` reads directly, and the settings that made it.

Two steps, so every refusal comes before anything is written: :func:`plan_composite_set`
checks the request and opens the sources (warning about what it left out), then
:func:`make_composite_set` draws and writes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from dkt.atomic import atomic_write_bytes, remove_stale_temps
from dkt.csvcells import guard_cell
from dkt.dktnet import __version__
from dkt.errors import CompositeSetError, DktError, ImageInputError
from dkt.imaging.imageio import write_image
from training.data import CompositeConfig, CompositeDataset, MaskSource
from training.defaults import (
    COMPOSITE_SIZE,
    FG_RATIO,
    FLIP_PROB,
    OBJECT_RATIO,
    RANDOM_POSITION_PROB,
)
from training.sources import load_foregrounds, load_paintings

#: The manifest's columns: the first three are what ``dkt harmonize --manifest`` reads.
MANIFEST_COLUMNS: tuple[str, ...] = (
    "composite",
    "mask",
    "output",
    "painting",
    "painting_source",
    "photo_source",
    "mask_source",
    "seed",
    "epoch",
    "index",
    "attempt",
)
FOLDERS: tuple[str, ...] = ("composites", "masks", "paintings")
MANIFEST = "manifest.csv"
SETTINGS = "make-composites.json"
HARMONIZED = "harmonized"

_NUMBERED = re.compile(r"^\d+\.png$")
# Libraries whose versions can change the pixels (resampling, PNG encoding, decoding).
_PIXEL_LIBRARIES = ("numpy", "pillow", "pycocotools")
_MASK_SOURCES = ("masks", "coco", "yolo")


@dataclass(frozen=True)
class CompositeSetRequest:
    """A set to make: the options of ``dkt data make-composites``.

    Exactly one of ``paintings`` (a folder) and ``paintings_csv`` (a list), and exactly one
    mask source (``masks``, ``coco``, ``yolo``). ``ratio`` None keeps objects of any size.
    """

    out: Path
    photos: Path
    paintings: Path | None = None
    paintings_csv: Path | None = None
    paintings_root: Path | None = None
    masks: Path | None = None
    coco: Path | None = None
    yolo: Path | None = None
    ratio: tuple[float, float] | None = OBJECT_RATIO
    count: int = 100
    size: int = COMPOSITE_SIZE
    seed: int = 0
    fg_ratio: tuple[float, float] = FG_RATIO
    random_position_prob: float = RANDOM_POSITION_PROB
    flip_prob: float = FLIP_PROB
    skip_bad: bool = False
    #: Write into a non-empty ``out``: numbered files of an earlier, longer set are removed.
    overwrite: bool = False


@dataclass
class CompositeSetPlan:
    """A checked request with its sources open: nothing is written yet."""

    request: CompositeSetRequest
    mask_source: str
    painting_files: list[Path]
    foregrounds: list[Any]
    dataset: CompositeDataset


@dataclass
class CompositeSetReport:
    """What was written."""

    out: Path
    count: int
    manifest: Path
    settings: Path
    #: The unreadable files ``skip_bad`` drew around, described as in the settings file.
    skipped: list[str] = field(default_factory=list)


def _check_request(request: CompositeSetRequest) -> str:
    """The one mask source given, once the sources and ``out`` agree with each other."""
    if (request.paintings is None) == (request.paintings_csv is None):
        raise CompositeSetError("give exactly one of --paintings DIR and --paintings-csv FILE")
    if request.paintings_root is not None and request.paintings_csv is None:
        raise CompositeSetError("--paintings-root only applies to --paintings-csv")
    given = [name for name in _MASK_SOURCES if getattr(request, name) is not None]
    if len(given) != 1:
        raise CompositeSetError(
            "give exactly one mask source: --masks DIR, --coco JSON or --yolo DIR"
        )
    out = request.out
    if out.exists() and not out.is_dir():
        raise CompositeSetError(f"--out {out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not request.overwrite:
        raise CompositeSetError(
            f"--out {out}: the folder is not empty (use --overwrite to write into it)"
        )
    return given[0]


def plan_composite_set(request: CompositeSetRequest) -> CompositeSetPlan:
    """Check the request and open its sources; raises a :class:`~dkt.errors.DktError`.

    Sources warn (``UserWarning``) about files they leave out, such as paintings a CSV
    lists that are missing; a caller shows those before any error they may explain.
    """
    kind = _check_request(request)
    r = request
    try:
        painting_files = load_paintings(r.paintings, r.paintings_csv, root=r.paintings_root)
        foregrounds = load_foregrounds(
            r.photos, masks=r.masks, coco=r.coco, yolo=r.yolo, ratio=r.ratio
        )
        config = CompositeConfig(
            size=r.size,
            fg_ratio=r.fg_ratio,
            random_position_prob=r.random_position_prob,
            flip_prob=r.flip_prob,
            seed=r.seed,
        )
        dataset = CompositeDataset(
            painting_files, foregrounds, config, length=r.count, skip_bad=r.skip_bad
        )
    except ValueError as exc:
        if isinstance(exc, DktError):
            raise
        raise CompositeSetError(str(exc)) from exc
    return CompositeSetPlan(request, kind, painting_files, foregrounds, dataset)


def _describe(source: MaskSource) -> str:
    if isinstance(source, Path):
        return os.path.abspath(source)
    return f"{os.path.abspath(source.file)} ({source.where})"


def _absolute(path: Path | None) -> str | None:
    return None if path is None else os.path.abspath(path)


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"dkt": __version__}
    for name in _PIXEL_LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def remove_stale(out: Path, names: set[str]) -> None:
    """Drop numbered files of an earlier, longer set.

    Only ``<digits>.png`` files in the three folders a set has are touched, so the folder
    never mixes two sets, and nothing the user put there is deleted.
    """
    for folder in FOLDERS:
        sub = out / folder
        if not sub.is_dir():
            continue
        for entry in sub.iterdir():
            if _NUMBERED.match(entry.name) and entry.name not in names and entry.is_file():
                entry.unlink()


def _draw(plan: CompositeSetPlan, index: int, name: str) -> dict[str, Any]:
    """Item ``index``, written under ``name`` in the three folders; its manifest row."""
    out = plan.request.out
    try:
        drawn = plan.dataset.draw(index)
    except ImageInputError as exc:
        raise CompositeSetError(
            f"{exc} (--skip-bad replaces draws that hit unreadable files)"
        ) from exc
    write_image(out / "composites" / name, drawn.composite)
    write_image(out / "masks" / name, drawn.mask.astype(np.uint8) * 255)
    write_image(out / "paintings" / name, drawn.painting)
    return {
        "composite": f"composites/{name}",
        "mask": f"masks/{name}",
        "output": f"{HARMONIZED}/{name}",
        "painting": f"paintings/{name}",
        "painting_source": os.path.abspath(drawn.painting_path),
        "photo_source": os.path.abspath(drawn.foreground.image),
        "mask_source": _describe(drawn.foreground.mask),
        "seed": plan.request.seed,
        "epoch": plan.dataset.epoch,
        "index": index,
        "attempt": drawn.attempt,
    }


def _manifest_bytes(rows: list[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: guard_cell(v) for k, v in row.items()} for row in rows)
    return text.getvalue().encode("utf-8")


def _settings(plan: CompositeSetPlan, skipped: list[str]) -> dict[str, Any]:
    """Everything that made the set: options, sources, library versions, skipped files."""
    r = plan.request
    return {
        "command": "dkt data make-composites",
        "versions": _versions(),
        "count": r.count,
        "size": r.size,
        "seed": r.seed,
        "epoch": plan.dataset.epoch,
        "fg_ratio": list(r.fg_ratio),
        "random_position_prob": r.random_position_prob,
        "flip_prob": r.flip_prob,
        "skip_bad": r.skip_bad,
        "paintings": {
            "folder": _absolute(r.paintings),
            "csv": _absolute(r.paintings_csv),
            "root": _absolute(r.paintings_root),
            "files": len(plan.painting_files),
        },
        "foregrounds": {
            "photos": _absolute(r.photos),
            plan.mask_source: _absolute(getattr(r, plan.mask_source)),
            "ratio": None if r.ratio is None else list(r.ratio),
            "objects": len(plan.foregrounds),
        },
        "skipped": skipped,
    }


def make_composite_set(
    plan: CompositeSetPlan, on_drawn: Callable[[int], None] = lambda index: None
) -> CompositeSetReport:
    """Draw and write every item, then the manifest and the settings (atomically).

    The same sources, options and library versions give byte-identical files. A draw that
    hits an unreadable file stops the set (without ``skip_bad``) with an error naming it;
    the items written before it stay, with no manifest.
    """
    out, count = plan.request.out, plan.request.count
    digits = max(5, len(str(count - 1)))
    names = [f"{i:0{digits}d}.png" for i in range(count)]
    remove_stale_temps(out / folder / name for folder in FOLDERS for name in names)
    rows = []
    for index, name in enumerate(names):
        rows.append(_draw(plan, index, name))
        on_drawn(index)
    if plan.request.overwrite:
        remove_stale(out, set(names))
    atomic_write_bytes(out / MANIFEST, _manifest_bytes(rows))
    skipped = sorted(_describe(item) for item in plan.dataset.skipped)
    settings = (json.dumps(_settings(plan, skipped), indent=2) + "\n").encode("utf-8")
    atomic_write_bytes(out / SETTINGS, settings)
    return CompositeSetReport(out, count, out / MANIFEST, out / SETTINGS, skipped)
