"""``evaluate``: several methods on one set of composites, every metric, one report.

The verb behind ``dkt evaluate``, callable from a script: it resolves the inputs (composites,
methods, reference paintings, the FID and VGG networks), runs, and writes the CSV table and
the contact sheet. What it would print goes through :class:`Callbacks`, so the command
decides how progress and warnings look and a script can ignore them.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dkt.errors import DktError, EmptySheetError, EvaluationError, PairingError
from dkt.evaluation import inception as fid_inception
from dkt.evaluation.methods import OpenMethod, open_methods, parse_methods
from dkt.evaluation.report import report_dict, write_csv, write_sheet
from dkt.evaluation.runner import EvalReport, PerceptualScorer, run_evaluation
from dkt.imaging.imageio import read_image
from dkt.inference.pairing import IMAGE_SUFFIXES, Job, plan_folder

NO_INCEPTION = "n/a (no Inception weights: pass --inception-weights)"
NO_REFERENCES = "n/a (no reference paintings: pass --references)"
NO_VGG = "n/a (no VGG weights: pass --vgg-weights)"
#: Where planning would put outputs; evaluate writes none there (``plan_folder`` needs one).
_UNUSED_OUT = ".dkt-evaluate-unused"


@dataclass(frozen=True)
class EvaluateRequest:
    """What to evaluate, on what, and which files to write (the options of ``dkt evaluate``)."""

    composites: Path
    masks: Path
    #: Comma-separated method tokens (see :func:`~dkt.evaluation.methods.parse_methods`).
    methods: str
    composite_pattern: str = "{key}"
    mask_pattern: str = "{key}"
    outputs_pattern: str = "{key}"
    limit: int | None = None
    references: Path | None = None
    inception_weights: Path | None = None
    download_inception: bool = False
    vgg_weights: Path | None = None
    vgg_deep_weights: Path | None = None
    adain_weights: Path | None = None
    backend: str | None = None
    device: str = "auto"
    precision: str | None = None
    size: int | None = None
    csv_path: Path | None = None
    sheet: Path | None = None
    sheet_rows: int = 8
    save_outputs: Path | None = None


def _no_stage(what: str, total: int | None) -> AbstractContextManager[Callable[[], None]]:
    return contextlib.nullcontext(lambda: None)


@dataclass
class Callbacks:
    """How the run reports itself; every callback defaults to silence.

    ``stage(what, total)`` is entered around a step and yields the function that advances
    it by one (``total`` is None where the step has no count).
    """

    warn: Callable[[str], None] = lambda message: None
    note: Callable[[str], None] = lambda message: None
    stage: Callable[[str, int | None], AbstractContextManager[Callable[[], None]]] = _no_stage


@dataclass
class EvaluateResult:
    """The report, plus what the ``--json`` document adds about the run."""

    report: EvalReport
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """Whether any composite, or any method's result for one, could not be scored."""
        return bool(self.report.item_failures) or any(r.failures for r in self.report.methods)

    def to_dict(self) -> dict[str, Any]:
        return report_dict(self.report, self.info)


def plan_jobs(request: EvaluateRequest) -> list[Job]:
    """The composites to score, by key, ``limit`` applied."""
    try:
        jobs = plan_folder(
            request.composites,
            request.masks,
            request.composites / _UNUSED_OUT,
            composite_pattern=request.composite_pattern,
            mask_pattern=request.mask_pattern,
        )
    except PairingError as exc:
        raise EvaluationError(str(exc)) from exc
    if not jobs:
        raise EvaluationError(
            f"{request.composites}: no composites found matching '{request.composite_pattern}'"
        )
    return jobs if request.limit is None else jobs[: request.limit]


def reference_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, hidden ones skipped), sorted."""
    if not folder.is_dir():
        raise EvaluationError(f"--references {folder}: no such folder")
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(root) / name)
    if len(found) < 2:
        raise EvaluationError(
            f"--references {folder}: FID/KID need at least 2 images, found {len(found)}"
        )
    return found


def open_inception(request: EvaluateRequest, device: str, callbacks: Callbacks) -> tuple[Any, str]:
    """The FID network, or None and the reason FID/KID are n/a.

    A failed download is a warning, not an error: the table is still worth having.
    """
    if request.references is None:
        return None, NO_REFERENCES
    path = fid_inception.find_inception_weights(request.inception_weights).path
    if path is None and request.download_inception:
        try:
            callbacks.note("downloading the FID Inception weights (about 91 MB)...")
            path = fid_inception.download_inception_weights()
        except DktError as exc:
            callbacks.warn(str(exc))
    if path is None:
        return None, NO_INCEPTION
    return fid_inception.load_inception(path, device=device), ""


def open_perceptual(
    request: EvaluateRequest, device: str, callbacks: Callbacks
) -> PerceptualScorer | None:
    """The VGG metrics' loss network: ``vgg_weights``, deeper taps from ``vgg_deep_weights``.

    The loss network's provenance says, tap by tap, which network gave it; the scorer keeps
    it so the report can name the taps that are the distilled approximation's.
    """
    vgg_weights, deep_weights = request.vgg_weights, request.vgg_deep_weights
    if vgg_weights is None:
        if deep_weights is not None:
            raise EvaluationError(
                "--vgg-deep-weights adds taps past --vgg-weights' deepest; pass --vgg-weights too"
            )
        return None
    if str(vgg_weights).startswith("random:"):
        raise EvaluationError(
            "--vgg-weights needs pretrained weights; a random VGG's losses are not measurements"
        )
    from dkt.dktnet.distilled import DISTILLED_KIND
    from training.lossnet import load_loss_network

    deep = None if deep_weights is None else str(deep_weights)
    try:
        loss = load_loss_network(str(vgg_weights), deep=deep)
    except (DktError, ValueError) as exc:
        options = "--vgg-weights" if deep is None else "--vgg-weights, --vgg-deep-weights"
        raise EvaluationError(f"{options}: {exc}") from exc
    sources = loss.provenance.get("tap_sources")
    sources = sources if isinstance(sources, dict) else {}
    if deep is not None and not any(
        isinstance(r, dict) and r.get("kind") == DISTILLED_KIND for r in sources.values()
    ):
        callbacks.warn(
            f"--vgg-deep-weights {deep_weights} adds no tap: "
            f"--vgg-weights already reaches {loss.network.tap_names[-1]}"
        )
    return PerceptualScorer(
        loss.network, content_index=loss.content_index, tap_sources=sources, device=device
    )


def reference_features(
    model: Any, files: list[Path], device: str, callbacks: Callbacks
) -> np.ndarray:
    """Inception features of the readable references; unreadable ones are warned about."""
    skipped: list[str] = []

    def images() -> Iterator[np.ndarray]:
        for path in files:
            try:
                yield read_image(path)
            except DktError as exc:
                skipped.append(str(exc))

    feats = fid_inception.extract_features(model, images(), device=device)
    for reason in skipped:
        callbacks.warn(f"reference skipped: {reason}")
    if len(feats) < 2:
        raise EvaluationError(
            f"only {len(feats)} readable reference image(s); FID/KID need at least 2"
        )
    return feats


def _resolve_device(device: str) -> str:
    from backends.torch_backend import resolve_device

    return str(resolve_device(device))


def _open_methods(request: EvaluateRequest, specs: list[Any]) -> list[OpenMethod]:
    return open_methods(
        specs,
        composites=request.composites,
        composite_pattern=request.composite_pattern,
        outputs_pattern=request.outputs_pattern,
        backend=request.backend,
        device=request.device,
        precision=request.precision,
        size=request.size,
        adain_weights=request.adain_weights,
    )


def _score(
    request: EvaluateRequest,
    jobs: list[Job],
    opened: list[OpenMethod],
    networks: tuple[Any, list[Path], PerceptualScorer | None],
    device: str,
    callbacks: Callbacks,
) -> EvalReport:
    fid_net, files, perceptual = networks
    features = None
    references = None
    if fid_net is not None:
        with callbacks.stage(f"Inception features of {len(files)} references", None):
            references = reference_features(fid_net, files, device, callbacks)

        def features(image: np.ndarray) -> np.ndarray:
            return fid_inception.extract_features(fid_net, [image], device=device)[0]

    with callbacks.stage("evaluating", len(jobs)) as advance:
        return run_evaluation(
            jobs,
            opened,
            perceptual=perceptual,
            features=features,
            reference_features=references,
            sheet_rows=request.sheet_rows if request.sheet else 0,
            save_outputs=request.save_outputs,
            on_item=lambda key: advance(),
        )


def write_report_files(request: EvaluateRequest, report: EvalReport) -> None:
    """The CSV table and the contact sheet, where asked for."""
    if request.csv_path is not None:
        write_csv(request.csv_path, report)
    if request.sheet is not None:
        try:
            write_sheet(request.sheet, report)
        except EmptySheetError as exc:
            raise EmptySheetError("--sheet: no composite could be read, nothing to show") from exc


def evaluate(request: EvaluateRequest, callbacks: Callbacks | None = None) -> EvaluateResult:
    """Score every method on every composite and write the files the request names.

    Raises a :class:`~dkt.errors.DktError` for inputs that cannot be used, before anything
    runs; :class:`~dkt.errors.EmptySheetError` when a sheet was asked for and no composite
    could be read. A ``KeyboardInterrupt`` passes through, with every method closed.
    """
    callbacks = callbacks or Callbacks()
    started = time.perf_counter()
    jobs = plan_jobs(request)
    specs = parse_methods(request.methods)
    device = _resolve_device(request.device)
    files = reference_files(request.references) if request.references is not None else []
    fid_net, fid_reason = open_inception(request, device, callbacks)
    perceptual = open_perceptual(request, device, callbacks)
    opened = _open_methods(request, specs)
    try:
        report = _score(request, jobs, opened, (fid_net, files, perceptual), device, callbacks)
    finally:
        for method in opened:
            method.close()
    if fid_reason:
        report.unavailable.update({"fid": fid_reason, "kid": fid_reason})
    if perceptual is None:
        report.unavailable.update({"vgg_style": NO_VGG, "vgg_content": NO_VGG})
    write_report_files(request, report)
    info = {
        "composites": str(request.composites),
        "references_folder": None if request.references is None else str(request.references),
        "seconds_load": {m.name: round(m.seconds_load, 3) for m in opened if m.seconds_load},
        "seconds_wall": round(time.perf_counter() - started, 3),
    }
    return EvaluateResult(report, info)
