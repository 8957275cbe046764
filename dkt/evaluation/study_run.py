"""The verbs behind ``dkt study pairs`` and ``dkt study fit``, callable from a script.

:func:`write_design` turns methods and items (a folder of composites, a text file or a
comma list) into a balanced design CSV; :func:`fit_study` reads a judgments log from the
study server (or a filled-in design), screens raters by their catch trials and fits
Bradley-Terry strengths. Both raise a :class:`~dkt.errors.DktError` whose one line names
the file and what is wrong; what the command prints along the way (notes, the catch
screen) goes through :class:`FitCallbacks`, so a script can ignore it.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dkt.atomic import atomic_write_bytes
from dkt.csvcells import guard_row, read_row
from dkt.errors import JudgmentError, JudgmentLogError, StudyError
from dkt.evaluation.bradley_terry import (
    PRIOR_VARIANCE,
    REQUIRED_COLUMNS,
    BTResult,
    Judgments,
    parse_judgments,
)
from dkt.evaluation.bradley_terry import fit as fit_bt
from dkt.evaluation.catch import CatchScreen, screen_raters
from dkt.evaluation.judgments import drop_torn_line, is_log_text
from dkt.evaluation.pairs import Comparison, balanced_pairs
from dkt.inference.pairing import IMAGE_SUFFIXES

#: Below this many items, resampling whole items gives too few distinct bootstrap samples.
MIN_ITEMS_FOR_ITEM_BOOTSTRAP = 10
BOOTSTRAP_BY = ("auto", "items", "judgments")


def split_names(text: str) -> list[str]:
    """A comma list's names, blanks dropped (``"a, b,"`` is two names)."""
    return [t.strip() for t in text.split(",") if t.strip()]


def keys_in_folder(folder: Path, pattern: str) -> list[str]:
    """Keys of the image files under ``folder`` whose stem matches ``pattern``.

    A key keeps its sub-folder (``a/k1``), so two composites of one name in different
    folders stay two items; hidden files and folders are skipped.
    """
    if pattern.count("{key}") != 1:
        raise StudyError(f"--composite-pattern {pattern!r} must contain {{key}} exactly once")
    pre, post = pattern.split("{key}")
    regex = re.compile(f"{re.escape(pre)}(?P<key>.+){re.escape(post)}")
    keys = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = Path(root).relative_to(folder).parts
        for name in sorted(files):
            stem, suffix = os.path.splitext(name)
            match = regex.fullmatch(stem)
            if name.startswith(".") or suffix.lower() not in IMAGE_SUFFIXES or match is None:
                continue
            keys.append("/".join((*rel, match["key"])))
    return sorted(keys)


def read_items(spec: str, pattern: str = "{key}") -> list[str]:
    """Items from a folder of composites, a text file (one per line, ``#`` comments) or a
    comma list; a lone name that looks like a path but is none is an error, not an item."""
    path = Path(spec)
    if path.is_dir():
        keys = keys_in_folder(path, pattern)
        if not keys:
            raise StudyError(f"--items {spec}: no images matching '{pattern}'")
        return keys
    if path.is_file():
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        keys = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        if not keys:
            raise StudyError(f"--items {spec}: the file lists no items")
    else:
        keys = split_names(spec)
        if len(keys) == 1 and ("/" in spec or "." in spec):
            raise StudyError(f"--items {spec}: no such folder or file")
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise StudyError(f"--items: {duplicates[0]!r} is listed more than once")
    return keys


def _method_names(methods: str) -> list[str]:
    names = split_names(methods)
    if len(names) < 2:
        raise StudyError("--methods needs at least 2 comma-separated names")
    if len(set(names)) != len(names):
        raise StudyError("--methods lists a name twice")
    return names


@dataclass(frozen=True)
class PairsRequest:
    """A study design to write (the options of ``dkt study pairs``)."""

    #: Comma-separated method names, at least 2.
    methods: str
    #: A folder of composites, a text file with one item per line, or a comma list.
    items: str
    output: Path
    #: Comparisons per item; ``None``: one per pair of methods.
    per_item: int | None = None
    seed: int = 0
    #: The composite file stem when ``items`` is a folder.
    composite_pattern: str = "{key}"


@dataclass(frozen=True)
class DesignSummary:
    """What :func:`write_design` wrote: enough to tell the user it is balanced."""

    output: Path
    comparisons: int
    items: int
    per_item: int
    methods: list[str]
    seed: int
    #: Fewest and most comparisons any one pair of methods got (equal, or 1 apart).
    per_pair_min: int
    per_pair_max: int

    @property
    def method_pairs(self) -> int:
        return len(self.methods) * (len(self.methods) - 1) // 2

    def to_dict(self) -> dict[str, object]:
        return {
            "output": str(self.output),
            "comparisons": self.comparisons,
            "items": self.items,
            "per_item": self.per_item,
            "methods": self.methods,
            "seed": self.seed,
            "per_pair_min": self.per_pair_min,
            "per_pair_max": self.per_pair_max,
        }


def _design_csv(design: list[Comparison]) -> bytes:
    """The design with an empty ``winner`` column; cells a spreadsheet would run are guarded."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["trial", *REQUIRED_COLUMNS])
    for c in design:
        writer.writerow(guard_row([c.trial, c.item, c.method_a, c.method_b, ""]))
    return buf.getvalue().encode("utf-8")


def write_design(request: PairsRequest) -> DesignSummary:
    """Write a balanced, shuffled design (see :func:`~dkt.evaluation.pairs.balanced_pairs`)
    atomically to ``request.output``: a half-written design never replaces a good one."""
    names = _method_names(request.methods)
    keys = read_items(request.items, request.composite_pattern)
    count = request.per_item if request.per_item is not None else len(names) * (len(names) - 1) // 2
    design = balanced_pairs(names, keys, count, request.seed)
    atomic_write_bytes(request.output, _design_csv(design))
    per_pair: dict[frozenset[str], int] = {}
    for c in design:
        k = frozenset((c.method_a, c.method_b))
        per_pair[k] = per_pair.get(k, 0) + 1
    return DesignSummary(
        output=request.output,
        comparisons=len(design),
        items=len(keys),
        per_item=count,
        methods=names,
        seed=request.seed,
        per_pair_min=min(per_pair.values()),
        per_pair_max=max(per_pair.values()),
    )


def _quiet(message: str) -> None:
    pass


def _unseen(screen: CatchScreen) -> None:
    pass


@dataclass
class FitCallbacks:
    """How :func:`fit_study` reports itself; every callback defaults to silence.

    ``note`` gets a line worth knowing that changes nothing (a torn last line ignored,
    ``min_catch`` with no catch trials to apply to); ``screened`` gets the catch screen,
    when the file has catch trials, before the fit (and before it fails for lack of raters).
    """

    note: Callable[[str], None] = field(default=_quiet)
    screened: Callable[[CatchScreen], None] = field(default=_unseen)


@dataclass(frozen=True)
class FitRequest:
    """A judgments file and how to fit it (the options of ``dkt study fit``)."""

    judgments: Path
    #: Bootstrap resamples for the intervals (0: none).
    bootstrap: int = 1000
    seed: int = 0
    #: ``items`` (all judgments of a composite together), ``judgments``, or ``auto``.
    bootstrap_by: str = "auto"
    confidence: float = 0.95
    prior_variance: float = PRIOR_VARIANCE
    #: Leave out raters whose catch-trial accuracy is below this share; ``None``: keep all.
    min_catch: float | None = None


@dataclass(frozen=True)
class StudyFit:
    """The scores of one judgments file and the catch screen that chose whose answers count."""

    file: Path
    result: BTResult
    screen: CatchScreen

    def to_dict(self) -> dict[str, object]:
        return {"file": str(self.file), **self.result.to_dict(), "catch": self.screen.to_dict()}


def read_judgments(path: Path, note: Callable[[str], None] = _quiet) -> list[dict[str, str]]:
    """The rows of a judgments log or a filled-in design, cells unguarded.

    A log's torn last line (an answer the server was killed while writing, never confirmed
    to the rater) is dropped with a note rather than failing the whole file.
    """
    if not path.is_file():
        raise JudgmentLogError(path, "no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise JudgmentLogError(path, f"cannot read ({exc})") from None
    if is_log_text(text):
        text, torn = drop_torn_line(text)
        if torn:
            note(
                f"{path}: ignored a torn last line ({len(torn)} characters, an answer the "
                "study server never confirmed)"
            )
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise JudgmentLogError(
            path,
            f"missing column(s) {', '.join(missing)} (a judgments file needs "
            f"{','.join(REQUIRED_COLUMNS)}; found {','.join(columns) or 'no header'})",
        )
    reader.fieldnames = columns
    return [read_row(row) for row in reader]


def _screen(
    request: FitRequest, rows: list[dict[str, str]], callbacks: FitCallbacks
) -> CatchScreen:
    screen = screen_raters(rows, request.min_catch)
    if screen.has_catches:
        callbacks.screened(screen)
    elif request.min_catch is not None:
        callbacks.note(f"{request.judgments}: no catch trials, so --min-catch drops no one")
    if screen.dropped and not any((r.get("winner") or "").strip() for r in screen.kept_rows):
        raise JudgmentError(
            f"{request.judgments}: every rater with judgments is below --min-catch "
            f"{request.min_catch:g} ({len(screen.dropped)} dropped); nothing is left to fit"
        )
    return screen


def _parse(path: Path, screen: CatchScreen) -> Judgments:
    try:
        parsed = parse_judgments(screen.kept_rows, lines=screen.kept_lines)
    except JudgmentError as exc:
        raise JudgmentError(f"{path}: {exc}") from None
    if len(parsed.methods) < 2:
        raise JudgmentError(f"{path}: only one method ({parsed.methods[0]}) was judged")
    return parsed


def fit_study(request: FitRequest, callbacks: FitCallbacks | None = None) -> StudyFit:
    """Bradley-Terry strengths (MAP, weak Gaussian prior) with bootstrap intervals.

    Catch trials never enter the fit; raters below ``min_catch`` are left out. With
    ``bootstrap_by="auto"`` whole items are resampled when there are at least
    :data:`MIN_ITEMS_FOR_ITEM_BOOTSTRAP` of them (judgments of one composite are not
    independent), single judgments otherwise.
    """
    if request.bootstrap_by not in BOOTSTRAP_BY:
        raise StudyError(f"--bootstrap-by {request.bootstrap_by!r}: use auto, items or judgments")
    callbacks = callbacks or FitCallbacks()
    rows = read_judgments(request.judgments, callbacks.note)
    screen = _screen(request, rows, callbacks)
    parsed = _parse(request.judgments, screen)
    by = request.bootstrap_by
    if by == "auto":
        by = "items" if len(parsed.items) >= MIN_ITEMS_FOR_ITEM_BOOTSTRAP else "judgments"
    result = fit_bt(
        parsed,
        bootstrap_samples=request.bootstrap,
        seed=request.seed,
        by=by,
        confidence=request.confidence,
        prior_variance=request.prior_variance,
    )
    return StudyFit(request.judgments, result, screen)
