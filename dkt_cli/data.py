"""``dkt data``: prepare data sets; ``make-composites`` freezes composites for evaluation.

The work is :mod:`dkt.evaluation.composites`' (a frozen set is an evaluation input, drawn
exactly as training draws), imported when the command runs; this module parses the options,
calls it and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dkt_cli.console import err, fail, progress_bar, shown_warnings
from dkt_cli.options import request_from
from training.defaults import (
    COMPOSITE_SIZE,
    FG_RATIO,
    FLIP_PROB,
    OBJECT_RATIO,
    RANDOM_POSITION_PROB,
)

app = typer.Typer(help="Prepare data sets for training and evaluation.", no_args_is_help=True)

_SOURCES = "Sources"
_DRAWING = "Drawing"


def _opt(help_: str, panel: str | None = None, *names: str, **kwargs: Any) -> Any:
    """A ``typer.Option``, help and panel first, so each alias below stays short."""
    return typer.Option(*names, help=help_, rich_help_panel=panel, **kwargs)


#: The two ranges' defaults, as the options take them.
_OBJECT_RATIO = f"{OBJECT_RATIO[0]},{OBJECT_RATIO[1]}"
_FG_RATIO = f"{FG_RATIO[0]},{FG_RATIO[1]}"


Out = Annotated[
    Path,
    _opt("Folder to write (must be empty unless --overwrite).", None, "--out", "-o",
         show_default=False),
]  # fmt: skip
Photos = Annotated[Path, _opt("Folder of photos (foregrounds).", _SOURCES)]
Paintings = Annotated[Path | None, _opt("Folder of paintings (backgrounds).", _SOURCES)]
PaintingsCsv = Annotated[
    Path | None,
    _opt("CSV list of paintings instead of a folder (a WikiArt split file, say): column "
         "path/file/filename/image, else the first.", _SOURCES),
]  # fmt: skip
PaintingsRoot = Annotated[
    Path | None,
    _opt("Folder the --paintings-csv paths are relative to (default: the CSV's folder).",
         _SOURCES),
]  # fmt: skip
Masks = Annotated[Path | None, _opt("Folder of instance masks named <photo>_objNN.png.", _SOURCES)]
Coco = Annotated[
    Path | None, _opt("COCO instances JSON (file_name relative to --photos).", _SOURCES)
]
Yolo = Annotated[Path | None, _opt("Folder of YOLO segmentation labels (<photo>.txt).", _SOURCES)]
Ratio = Annotated[
    str, _opt("Keep objects covering LO,HI of their own photo ('none' keeps all).", _SOURCES)
]
Count = Annotated[int, _opt("Composites to write.", _DRAWING, min=1)]
Size = Annotated[int, _opt("Side of the square composites.", _DRAWING, min=8)]
Seed = Annotated[int, _opt("Seed of the draws (as in training).", _DRAWING, min=0)]
FgRatio = Annotated[
    str, _opt("Area LO,HI of the pasted object, as a fraction of the composite.", _DRAWING)
]
RandomPositionProb = Annotated[
    float,
    _opt("Chance of a random placement (else the object keeps its place in the photo).",
         _DRAWING, min=0.0, max=1.0),
]  # fmt: skip
FlipProb = Annotated[
    float,
    _opt("Chance of a mirror flip, for painting and object separately.", _DRAWING, min=0.0,
         max=1.0),
]  # fmt: skip
SkipBad = Annotated[
    bool,
    _opt("Replace draws that hit an unreadable file (counted at the end) instead of stopping "
         "at the first one.", None, "--skip-bad/--no-skip-bad"),
]  # fmt: skip
Overwrite = Annotated[bool, _opt("Write into a non-empty --out folder.", None, "--overwrite")]
Quiet = Annotated[bool, _opt("No progress bar.", None, "--quiet", "-q")]


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


@app.command("make-composites")
def make_composites(
    out: Out,
    photos: Photos,
    paintings: Paintings = None,
    paintings_csv: PaintingsCsv = None,
    paintings_root: PaintingsRoot = None,
    masks: Masks = None,
    coco: Coco = None,
    yolo: Yolo = None,
    ratio: Ratio = _OBJECT_RATIO,
    count: Count = 100,
    size: Size = COMPOSITE_SIZE,
    seed: Seed = 0,
    fg_ratio: FgRatio = _FG_RATIO,
    random_position_prob: RandomPositionProb = RANDOM_POSITION_PROB,
    flip_prob: FlipProb = FLIP_PROB,
    skip_bad: SkipBad = False,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Freeze a reproducible set of composites (with masks and paintings) for evaluation.

    Writes composites/, masks/ and paintings/ (00000.png, ...), manifest.csv for
    'dkt harmonize --manifest OUT/manifest.csv' (results go to OUT/harmonized/) with each
    item's sources and seed, and make-composites.json with the settings. The same sources,
    options and library versions give byte-identical files.
    """
    params = dict(locals())  # first, so it holds the parameters only
    params["ratio"] = _range(ratio, "--ratio", allow_none=True)
    params["fg_ratio"] = _range(fg_ratio, "--fg-ratio")
    from dkt.errors import DktError
    from dkt.evaluation.composites import (
        MANIFEST,
        CompositeSetRequest,
        make_composite_set,
        plan_composite_set,
    )

    try:
        with shown_warnings():  # printed before any error: a missing-files warning explains it
            plan = plan_composite_set(request_from(CompositeSetRequest, params))
        with progress_bar(quiet) as progress:
            task = progress.add_task("drawing", total=count)
            report = make_composite_set(plan, on_drawn=lambda index: progress.advance(task))
    except DktError as exc:
        fail(str(exc))
    if report.skipped:
        err.print(f"skipped {len(report.skipped)} unreadable file(s)")
    err.print(
        f"wrote {count} composites to {out}\nharmonize them with:  "
        f"dkt harmonize --manifest {out / MANIFEST}",
        soft_wrap=True,
    )
