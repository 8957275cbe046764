"""``dkt data``: prepare data sets; ``make-composites`` freezes composites for evaluation.

Training draws composites on the fly, so no two runs see the same pictures unless they
share a seed. An evaluation needs the opposite: one fixed set that every method and every
checkpoint is scored on. ``make-composites`` writes items 0..N-1 of epoch 0 of exactly
the dataset training would build from the same sources and seed (so the set can be
regenerated, or matched to what a run saw), as PNG files plus a manifest that
``dkt harmonize --manifest`` reads directly.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from dkt.atomic import atomic_write_bytes, remove_stale_temps
from dkt.csvcells import guard_cell
from dkt.dktnet import __version__
from dkt.errors import DktError, ImageInputError
from dkt.imaging.imageio import write_image
from dkt_cli.console import err, fail, progress_bar, shown_warnings
from training.data import CompositeConfig, CompositeDataset, MaskSource
from training.sources import DEFAULT_RATIO, load_foregrounds, load_paintings

app = typer.Typer(help="Prepare data sets for training and evaluation.", no_args_is_help=True)

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

_SOURCES = "Sources"
_DRAWING = "Drawing"
_NUMBERED = re.compile(r"^\d+\.png$")
# Libraries whose versions can change the pixels (resampling, PNG encoding, decoding).
_PIXEL_LIBRARIES = ("numpy", "pillow", "pycocotools")


def _range(text: str, option: str, *, allow_none: bool = False) -> tuple[float, float] | None:
    """``LO,HI`` as two fractions (``none`` where the filter can be switched off)."""
    if allow_none and text.strip().lower() in ("none", "all"):
        return None
    try:
        lo, hi = (float(part) for part in text.split(","))
    except ValueError:
        fail(f"{option} {text!r}: expected LO,HI as fractions, e.g. 0.05,0.3")
    if not 0.0 <= lo <= hi <= 1.0:
        fail(f"{option} {text!r}: need 0 <= LO <= HI <= 1")
    return lo, hi


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        fail(f"--out {out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        fail(f"--out {out}: the folder is not empty (use --overwrite to write into it)")


def _describe(source: MaskSource) -> str:
    if isinstance(source, Path):
        return os.path.abspath(source)
    return f"{os.path.abspath(source.file)} ({source.where})"


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"dkt": __version__}
    for name in _PIXEL_LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _remove_stale(out: Path, names: set[str]) -> None:
    """With ``--overwrite``, drop numbered files of an earlier, longer set.

    Only ``<digits>.png`` files in the three folders this command writes are touched,
    so the folder never mixes two sets, and nothing the user put there is deleted.
    """
    for folder in FOLDERS:
        sub = out / folder
        if not sub.is_dir():
            continue
        for entry in sub.iterdir():
            if _NUMBERED.match(entry.name) and entry.name not in names and entry.is_file():
                entry.unlink()


def _absolute(path: Path | None) -> str | None:
    return None if path is None else os.path.abspath(path)


@app.command("make-composites")
def make_composites(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder to write (must be empty unless --overwrite).",
            show_default=False,
        ),
    ],
    photos: Annotated[
        Path,
        typer.Option(help="Folder of photos (foregrounds).", rich_help_panel=_SOURCES),
    ],
    paintings: Annotated[
        Path | None,
        typer.Option(help="Folder of paintings (backgrounds).", rich_help_panel=_SOURCES),
    ] = None,
    paintings_csv: Annotated[
        Path | None,
        typer.Option(
            help="CSV list of paintings instead of a folder (a WikiArt split file, say): "
            "column path/file/filename/image, else the first.",
            rich_help_panel=_SOURCES,
        ),
    ] = None,
    paintings_root: Annotated[
        Path | None,
        typer.Option(
            help="Folder the --paintings-csv paths are relative to (default: the CSV's folder).",
            rich_help_panel=_SOURCES,
        ),
    ] = None,
    masks: Annotated[
        Path | None,
        typer.Option(
            help="Folder of instance masks named <photo>_objNN.png.", rich_help_panel=_SOURCES
        ),
    ] = None,
    coco: Annotated[
        Path | None,
        typer.Option(
            help="COCO instances JSON (file_name relative to --photos).", rich_help_panel=_SOURCES
        ),
    ] = None,
    yolo: Annotated[
        Path | None,
        typer.Option(
            help="Folder of YOLO segmentation labels (<photo>.txt).", rich_help_panel=_SOURCES
        ),
    ] = None,
    ratio: Annotated[
        str,
        typer.Option(
            help="Keep objects covering LO,HI of their own photo ('none' keeps all).",
            rich_help_panel=_SOURCES,
        ),
    ] = f"{DEFAULT_RATIO[0]},{DEFAULT_RATIO[1]}",
    count: Annotated[
        int, typer.Option(help="Composites to write.", min=1, rich_help_panel=_DRAWING)
    ] = 100,
    size: Annotated[
        int, typer.Option(help="Side of the square composites.", min=8, rich_help_panel=_DRAWING)
    ] = 256,
    seed: Annotated[
        int,
        typer.Option(help="Seed of the draws (as in training).", min=0, rich_help_panel=_DRAWING),
    ] = 0,
    fg_ratio: Annotated[
        str,
        typer.Option(
            help="Area LO,HI of the pasted object, as a fraction of the composite.",
            rich_help_panel=_DRAWING,
        ),
    ] = f"{CompositeConfig.fg_ratio[0]},{CompositeConfig.fg_ratio[1]}",
    random_position_prob: Annotated[
        float,
        typer.Option(
            help="Chance of a random placement (else the object keeps its place in the photo).",
            min=0.0,
            max=1.0,
            rich_help_panel=_DRAWING,
        ),
    ] = CompositeConfig.random_position_prob,
    flip_prob: Annotated[
        float,
        typer.Option(
            help="Chance of a mirror flip, for painting and object separately.",
            min=0.0,
            max=1.0,
            rich_help_panel=_DRAWING,
        ),
    ] = CompositeConfig.flip_prob,
    skip_bad: Annotated[
        bool,
        typer.Option(
            "--skip-bad/--no-skip-bad",
            help="Replace draws that hit an unreadable file (counted at the end) instead of "
            "stopping at the first one.",
        ),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Write into a non-empty --out folder.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Freeze a reproducible set of composites (with masks and paintings) for evaluation.

    Writes composites/, masks/ and paintings/ (00000.png, ...), manifest.csv for
    'dkt harmonize --manifest OUT/manifest.csv' (results go to OUT/harmonized/) with each
    item's sources and seed, and make-composites.json with the settings. The same sources,
    options and library versions give byte-identical files.
    """
    if (paintings is None) == (paintings_csv is None):
        fail("give exactly one of --paintings DIR and --paintings-csv FILE")
    if paintings_root is not None and paintings_csv is None:
        fail("--paintings-root only applies to --paintings-csv")
    kinds = {"masks": masks, "coco": coco, "yolo": yolo}
    given = [name for name, value in kinds.items() if value is not None]
    if len(given) != 1:
        fail("give exactly one mask source: --masks DIR, --coco JSON or --yolo DIR")
    kind = given[0]
    filter_ratio = _range(ratio, "--ratio", allow_none=True)
    paste_ratio = _range(fg_ratio, "--fg-ratio")
    _check_out(out, overwrite)

    problem: str | None = None
    with shown_warnings():  # printed before any error: a missing-files warning explains it
        try:
            painting_files = load_paintings(paintings, paintings_csv, root=paintings_root)
            foregrounds = load_foregrounds(
                photos, masks=masks, coco=coco, yolo=yolo, ratio=filter_ratio
            )
            config = CompositeConfig(
                size=size,
                fg_ratio=paste_ratio,  # type: ignore[arg-type]
                random_position_prob=random_position_prob,
                flip_prob=flip_prob,
                seed=seed,
            )
            dataset = CompositeDataset(
                painting_files, foregrounds, config, length=count, skip_bad=skip_bad
            )
        except (DktError, ValueError) as exc:
            problem = str(exc)
    if problem is not None:
        fail(problem)

    digits = max(5, len(str(count - 1)))
    names = [f"{i:0{digits}d}.png" for i in range(count)]
    remove_stale_temps(out / folder / name for folder in FOLDERS for name in names)
    rows: list[dict[str, Any]] = []
    with progress_bar(quiet) as progress:
        task = progress.add_task("drawing", total=count)
        for index, name in enumerate(names):
            try:
                drawn = dataset.draw(index)
            except ImageInputError as exc:
                fail(f"{exc} (--skip-bad replaces draws that hit unreadable files)")
            except DktError as exc:
                fail(str(exc))
            write_image(out / "composites" / name, drawn.composite)
            write_image(out / "masks" / name, drawn.mask.astype(np.uint8) * 255)
            write_image(out / "paintings" / name, drawn.painting)
            rows.append(
                {
                    "composite": f"composites/{name}",
                    "mask": f"masks/{name}",
                    "output": f"{HARMONIZED}/{name}",
                    "painting": f"paintings/{name}",
                    "painting_source": os.path.abspath(drawn.painting_path),
                    "photo_source": os.path.abspath(drawn.foreground.image),
                    "mask_source": _describe(drawn.foreground.mask),
                    "seed": seed,
                    "epoch": dataset.epoch,
                    "index": index,
                    "attempt": drawn.attempt,
                }
            )
            progress.advance(task)
    if overwrite:
        _remove_stale(out, set(names))

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: guard_cell(v) for k, v in row.items()} for row in rows)
    atomic_write_bytes(out / MANIFEST, text.getvalue().encode("utf-8"))
    skipped = sorted(_describe(item) for item in dataset.skipped)
    settings = {
        "command": "dkt data make-composites",
        "versions": _versions(),
        "count": count,
        "size": size,
        "seed": seed,
        "epoch": dataset.epoch,
        "fg_ratio": list(paste_ratio),  # type: ignore[arg-type]
        "random_position_prob": random_position_prob,
        "flip_prob": flip_prob,
        "skip_bad": skip_bad,
        "paintings": {
            "folder": _absolute(paintings),
            "csv": _absolute(paintings_csv),
            "root": _absolute(paintings_root),
            "files": len(painting_files),
        },
        "foregrounds": {
            "photos": _absolute(photos),
            kind: _absolute(kinds[kind]),
            "ratio": None if filter_ratio is None else list(filter_ratio),
            "objects": len(foregrounds),
        },
        "skipped": skipped,
    }
    atomic_write_bytes(out / SETTINGS, (json.dumps(settings, indent=2) + "\n").encode("utf-8"))

    if skipped:
        err.print(f"skipped {len(skipped)} unreadable file(s)")
    err.print(
        f"wrote {count} composites to {out}\nharmonize them with:  "
        f"dkt harmonize --manifest {out / MANIFEST}",
        soft_wrap=True,
    )
