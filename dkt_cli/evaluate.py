"""``dkt evaluate``: several methods on one set of composites, every metric, one table.

Human output (progress, the table, notes) goes to stderr; ``--json`` puts the full report,
per-item scores included, on stdout; ``--csv`` writes the table; ``--sheet`` a contact
sheet (composite | each method) to look at. The exit code is 1 when any composite or any
method's result for it could not be scored (the table is still printed).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from dkt.errors import DktError, EmptySheetError, MethodError, PairingError
from dkt.evaluation import inception as fid_inception
from dkt.evaluation.methods import OpenMethod, open_methods, parse_methods
from dkt.evaluation.report import (
    report_dict,
    vgg_content_label,
    vgg_taps_label,
    write_csv,
    write_sheet,
)
from dkt.evaluation.runner import METRICS, EvalReport, Metric, PerceptualScorer, run_evaluation
from dkt.imaging.imageio import read_image
from dkt.inference.pairing import IMAGE_SUFFIXES, Job, plan_folder
from dkt_cli.console import EXIT_FAILED, err, fail, print_json, progress_bar, stderr_console

_INPUTS = "Inputs"
_METRICS = "Metrics"
_MODELS = "Models"
_OUTPUT = "Output"
_UNUSED_OUT = ".dkt-evaluate-unused"
NO_INCEPTION = "n/a (no Inception weights: pass --inception-weights)"
NO_REFERENCES = "n/a (no reference paintings: pass --references)"
NO_VGG = "n/a (no VGG weights: pass --vgg-weights)"
_SHOWN_FAILURES = 20
_TABLE_WIDTH = 160


def _plan(composites: Path, masks: Path, composite_pattern: str, mask_pattern: str) -> list[Job]:
    try:
        jobs = plan_folder(
            composites,
            masks,
            composites / _UNUSED_OUT,
            composite_pattern=composite_pattern,
            mask_pattern=mask_pattern,
        )
    except PairingError as exc:
        fail(str(exc))
    if not jobs:
        fail(f"{composites}: no composites found matching '{composite_pattern}'")
    return jobs


def _reference_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, hidden ones skipped), sorted."""
    if not folder.is_dir():
        fail(f"--references {folder}: no such folder")
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(root) / name)
    if len(found) < 2:
        fail(f"--references {folder}: FID/KID need at least 2 images, found {len(found)}")
    return found


def _inception(
    references: Path | None, weights: Path | None, download: bool, device: str, quiet: bool
) -> tuple[Any, str]:
    """The FID network, or None and the reason FID/KID are n/a."""
    if references is None:
        return None, NO_REFERENCES
    try:
        lookup = fid_inception.find_inception_weights(weights)
    except DktError as exc:
        fail(str(exc))
    path = lookup.path
    if path is None and download:
        try:
            if not quiet:
                err.print("downloading the FID Inception weights (about 91 MB)...")
            path = fid_inception.download_inception_weights()
        except DktError as exc:
            err.print(f"[yellow]warning:[/] {exc}")
    if path is None:
        return None, NO_INCEPTION
    try:
        return fid_inception.load_inception(path, device=device), ""
    except DktError as exc:
        fail(str(exc))


def _perceptual(
    vgg_weights: Path | None, deep_weights: Path | None, device: str
) -> PerceptualScorer | None:
    """The VGG metrics' loss network: ``--vgg-weights``, deeper taps from ``--vgg-deep-weights``.

    The loss network's provenance says, tap by tap, which network gave it; the scorer keeps
    it so the report can name the taps that are the distilled approximation's.
    """
    if vgg_weights is None:
        if deep_weights is not None:
            fail("--vgg-deep-weights adds taps past --vgg-weights' deepest; pass --vgg-weights too")
        return None
    if str(vgg_weights).startswith("random:"):
        fail("--vgg-weights needs pretrained weights; a random VGG's losses are not measurements")
    from dkt.dktnet.distilled import DISTILLED_KIND
    from training.lossnet import load_loss_network

    deep = None if deep_weights is None else str(deep_weights)
    try:
        loss = load_loss_network(str(vgg_weights), deep=deep)
    except (DktError, ValueError) as exc:
        options = "--vgg-weights" if deep is None else "--vgg-weights, --vgg-deep-weights"
        fail(f"{options}: {exc}")
    sources = loss.provenance.get("tap_sources")
    sources = sources if isinstance(sources, dict) else {}
    if deep is not None and not any(
        isinstance(r, dict) and r.get("kind") == DISTILLED_KIND for r in sources.values()
    ):
        err.print(
            f"[yellow]warning:[/] --vgg-deep-weights {deep_weights} adds no tap: "
            f"--vgg-weights already reaches {loss.network.tap_names[-1]}"
        )
    return PerceptualScorer(
        loss.network, content_index=loss.content_index, tap_sources=sources, device=device
    )


def _reference_features(model: Any, files: list[Path], device: str) -> np.ndarray:
    skipped: list[str] = []

    def images() -> Iterator[np.ndarray]:
        for path in files:
            try:
                yield read_image(path)
            except DktError as exc:
                skipped.append(str(exc))

    feats = fid_inception.extract_features(model, images(), device=device)
    for reason in skipped:
        err.print(f"[yellow]warning:[/] reference skipped: {reason}")
    if len(feats) < 2:
        fail(f"only {len(feats)} readable reference image(s); FID/KID need at least 2")
    return feats


# --------------------------------------------------------------------------- rendering


def _fmt(metric: Metric, value: float | None, na: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return na
    if metric.key == "bg_max_change":
        return f"{value:.0f}"
    if metric.key in ("content_ssim", "texture_gabor"):
        return f"{value:.3f}"
    if metric.key == "kid":
        return f"{value:.4f}"
    if metric.key in ("vgg_style", "vgg_content"):
        return f"{value:.4g}"
    return f"{value:.2f}"


def _cell(report: EvalReport, result: Any, metric: Metric, short: bool) -> str:
    reason = report.unavailable.get(metric.key)
    if reason:
        return "n/a" if short else reason
    value = result.aggregate(metric)
    text = _fmt(metric, value, "n/a")
    if metric.key == "kid" and value is not None and short:
        std = result.set_metrics.get("kid_std")
        if std is not None and not math.isnan(std):
            text += f" ±{std:.4f}"
    return text


def render_table(report: EvalReport) -> Table:
    """The rich table: one row per method, one column per metric with its better direction."""
    table = Table(
        title=f"dkt evaluate: {report.items_evaluated} composite(s)", title_justify="left"
    )
    table.add_column("method", style="bold", overflow="fold")
    table.add_column("n", justify="right")
    for metric in METRICS:
        table.add_column(f"{metric.label} {metric.arrow}", justify="right", overflow="fold")
    table.add_column("s/img", justify="right")
    for result in report.methods:
        n = (
            f"{result.images}"
            if not result.failures
            else f"{result.images}/{report.items_evaluated}"
        )
        spi = result.seconds_per_image
        table.add_row(
            result.name,
            n,
            *(_cell(report, result, m, short=True) for m in METRICS),
            "-" if spi is None else f"{spi:.3f}",
        )
    return table


def _notes(report: EvalReport, references: Path | None) -> list[str]:
    notes = [
        "colour, texture: distance between the result's object and its painting (lower = "
        "more harmonized; the composite row is the starting point). content SSIM: object vs "
        "composite (1 = unchanged). bg change: largest change outside the mask (0 expected).",
        "chroma speckle: RMS of the object's fine colour detail (Lab a/b minus a 5x5 mean) "
        "over the painting's; 1 = like the painting, above 1 = colour speckle the painting "
        "lacks, below 1 = flatter colour; geometric mean over images.",
    ]
    if "fid" in report.unavailable:
        notes.append(f"FID, KID: {report.unavailable['fid']}")
    else:
        counts = sorted({r.images for r in report.methods})
        shown = "/".join(str(c) for c in counts)
        notes.append(
            f"FID, KID: each method's {shown} result(s) vs {report.references} reference "
            f"painting(s) in {references}; FID is biased upwards on small sets, compare only "
            "at equal n; KID is unbiased (± = spread over subsets)."
        )
    if "vgg_style" in report.unavailable:
        notes.append(f"VGG style, content: {report.unavailable['vgg_style']}")
    elif report.vgg_taps:
        taps = vgg_taps_label(report)
        if not report.vgg_tap_sources:
            taps = f"{taps} (the taps the weights have)"
        notes.append(f"VGG style at {taps}; VGG content at {vgg_content_label(report)}.")
    for result in report.methods:
        notes += [f"{result.name}: {note}" for note in result.notes]
    return notes


def _failures_table(report: EvalReport) -> Table | None:
    rows = [("(composite)", f.key, f.error) for f in report.item_failures]
    for result in report.methods:
        rows += [(result.name, f.key, f.error) for f in result.failures]
    if not rows:
        return None
    table = Table(title=f"{len(rows)} failure(s)", title_justify="left")
    for name in ("method", "item", "error"):
        table.add_column(name)
    for row in rows[:_SHOWN_FAILURES]:
        table.add_row(*row)
    if len(rows) > _SHOWN_FAILURES:
        table.add_row("...", f"{len(rows) - _SHOWN_FAILURES} more", "see --json")
    return table


def _write_sheet(path: Path, report: EvalReport) -> None:
    try:
        write_sheet(path, report)
    except EmptySheetError:
        fail("--sheet: no composite could be read, nothing to show", code=EXIT_FAILED)
    except DktError as exc:
        fail(str(exc))


def _resolve_device(device: str) -> str:
    from backends.torch_backend import resolve_device

    try:
        return str(resolve_device(device))
    except DktError as exc:
        fail(str(exc))


def evaluate(
    composites: Annotated[
        Path,
        typer.Option(help="Folder of composites (searched recursively).", rich_help_panel=_INPUTS),
    ],
    masks: Annotated[
        Path, typer.Option(help="Folder of masks, same relative paths.", rich_help_panel=_INPUTS)
    ],
    methods: Annotated[
        str,
        typer.Option(
            help="Comma-separated: composite, reinhard, adain, adain-relu4, bundled, a model "
            "file, or a folder of results from another tool.",
            rich_help_panel=_INPUTS,
        ),
    ],
    composite_pattern: Annotated[
        str, typer.Option(help="Composite file stem, e.g. '{key}_comp'.", rich_help_panel=_INPUTS)
    ] = "{key}",
    mask_pattern: Annotated[
        str, typer.Option(help="Mask file stem, e.g. '{key}_mask'.", rich_help_panel=_INPUTS)
    ] = "{key}",
    outputs_pattern: Annotated[
        str,
        typer.Option(help="Result file stem in a method's folder.", rich_help_panel=_INPUTS),
    ] = "{key}",
    limit: Annotated[
        int | None,
        typer.Option(
            help="Evaluate only the first N composites (by key).", min=1, rich_help_panel=_INPUTS
        ),
    ] = None,
    references: Annotated[
        Path | None,
        typer.Option(help="Folder of reference paintings for FID/KID.", rich_help_panel=_METRICS),
    ] = None,
    inception_weights: Annotated[
        Path | None,
        typer.Option(
            help="FID Inception weights (pt_inception-2015-12-05-6726825d.pth or .safetensors). "
            "Default: $DKT_INCEPTION_WEIGHTS, then the cache folder.",
            rich_help_panel=_METRICS,
        ),
    ] = None,
    download_inception: Annotated[
        bool,
        typer.Option(
            "--download-inception",
            help="Download the FID Inception weights into the cache if absent (checksum-verified).",
            rich_help_panel=_METRICS,
        ),
    ] = False,
    vgg_weights: Annotated[
        Path | None,
        typer.Option(
            help="Pretrained VGG-19 weights for the style/content losses of docs/method.md.",
            rich_help_panel=_METRICS,
        ),
    ] = None,
    vgg_deep_weights: Annotated[
        Path | None,
        typer.Option(
            help="A distilled VGG-19 encoder (cd16x_encoder_relu5_1.pth or ..._relu4_1.pth) "
            "whose approximate taps add what --vgg-weights lacks (relu4_1, relu5_1); the "
            "report labels them as the distilled approximation.",
            rich_help_panel=_METRICS,
        ),
    ] = None,
    adain_weights: Annotated[
        Path | None,
        typer.Option(
            help="Folder with the baselines' weights: vgg_normalised_conv3_1.pth and "
            "feature_invertor_conv3_1.pth ('adain'), cd16x_encoder_relu4_1.pth and "
            "cd16x_decoder_relu4_1.pth ('adain-relu4'). Default: $DKT_WEIGHTS_DIR, then the "
            "cache folder.",
            rich_help_panel=_MODELS,
        ),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            help="Backend for model files; default from the suffix.", rich_help_panel=_MODELS
        ),
    ] = None,
    device: Annotated[
        str, typer.Option(help="auto, cpu, cuda, cuda:N.", rich_help_panel=_MODELS)
    ] = "auto",
    precision: Annotated[
        str | None,
        typer.Option(
            help="fp32, fp16 or bf16 (GPU) for checkpoints. Default: fp32, or what an exported "
            "file was built for.",
            rich_help_panel=_MODELS,
        ),
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(
            help="Working resolution for models (long side); default: the model's.",
            min=0,
            rich_help_panel=_MODELS,
        ),
    ] = None,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Write the table as CSV.", rich_help_panel=_OUTPUT)
    ] = None,
    sheet: Annotated[
        Path | None,
        typer.Option(
            help="Write a contact sheet (PNG): composite | each method.", rich_help_panel=_OUTPUT
        ),
    ] = None,
    sheet_rows: Annotated[
        int, typer.Option(help="Composites on the contact sheet.", min=1, rich_help_panel=_OUTPUT)
    ] = 8,
    save_outputs: Annotated[
        Path | None,
        typer.Option(
            help="Also save every result as DIR/<method>/<key>.png (e.g. for a study).",
            rich_help_panel=_OUTPUT,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print errors.")] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the full report as JSON on stdout.")
    ] = False,
) -> None:
    """Score methods side by side: style, content and background metrics, FID/KID, timing.

    Example: dkt evaluate --composites comps --masks masks --methods
    composite,reinhard,bundled,model.onnx,phdnet_results/ --references paintings
    """
    started = time.perf_counter()
    jobs = _plan(composites, masks, composite_pattern, mask_pattern)
    if limit is not None:
        jobs = jobs[:limit]
    try:
        specs = parse_methods(methods)
    except MethodError as exc:
        fail(str(exc))
    torch_device = _resolve_device(device)
    reference_files = _reference_files(references) if references is not None else []
    fid_net, fid_reason = _inception(
        references, inception_weights, download_inception, torch_device, quiet
    )
    perceptual = _perceptual(vgg_weights, vgg_deep_weights, torch_device)
    try:
        opened = open_methods(
            specs,
            composites=composites,
            composite_pattern=composite_pattern,
            outputs_pattern=outputs_pattern,
            backend=backend,
            device=device,
            precision=precision,
            size=size,
            adain_weights=adain_weights,
        )
    except MethodError as exc:
        fail(str(exc))
    try:
        report = _run(
            jobs,
            opened,
            fid_net,
            reference_files,
            perceptual,
            torch_device,
            sheet_rows if sheet else 0,
            save_outputs,
            quiet,
        )
    except KeyboardInterrupt:
        err.print("interrupted: no table for a partial evaluation")
        raise typer.Exit(130) from None
    finally:
        for method in opened:
            method.close()
    if fid_reason:
        report.unavailable.update({"fid": fid_reason, "kid": fid_reason})
    if perceptual is None:
        report.unavailable.update({"vgg_style": NO_VGG, "vgg_content": NO_VGG})
    _write_outputs(report, csv_path, sheet)
    info = {
        "composites": str(composites),
        "references_folder": None if references is None else str(references),
        "seconds_load": {m.name: round(m.seconds_load, 3) for m in opened if m.seconds_load},
        "seconds_wall": round(time.perf_counter() - started, 3),
    }
    if json_output:
        print_json(report_dict(report, info))
    failed = bool(report.item_failures) or any(r.failures for r in report.methods)
    if not quiet or failed:
        _print_report(report, references, info["seconds_wall"], quiet)
    if failed:
        raise typer.Exit(EXIT_FAILED)


def _run(
    jobs: list[Job],
    opened: list[OpenMethod],
    fid_net: Any,
    reference_files: list[Path],
    perceptual: PerceptualScorer | None,
    device: str,
    sheet_rows: int,
    save_outputs: Path | None,
    quiet: bool,
) -> EvalReport:
    features = None
    reference_features = None
    if fid_net is not None:
        with progress_bar(quiet) as progress:
            progress.add_task(
                f"Inception features of {len(reference_files)} references", total=None
            )
            reference_features = _reference_features(fid_net, reference_files, device)

        def features(image: np.ndarray) -> np.ndarray:
            return fid_inception.extract_features(fid_net, [image], device=device)[0]

    with progress_bar(quiet) as progress:
        task = progress.add_task("evaluating", total=len(jobs))
        return run_evaluation(
            jobs,
            opened,
            perceptual=perceptual,
            features=features,
            reference_features=reference_features,
            sheet_rows=sheet_rows,
            save_outputs=save_outputs,
            on_item=lambda key: progress.advance(task),
        )


def _write_outputs(report: EvalReport, csv_path: Path | None, sheet: Path | None) -> None:
    if csv_path is not None:
        write_csv(csv_path, report)
    if sheet is not None:
        _write_sheet(sheet, report)


def _print_report(report: EvalReport, references: Path | None, seconds: float, quiet: bool) -> None:
    failures = _failures_table(report)
    if failures is not None:
        err.print(failures)
    if quiet:
        return
    # Off a terminal (a log, a pipe) there is no width to respect: print the table whole
    # rather than squeezing it into rich's default 80 columns.
    out = err if err.is_terminal else stderr_console(width=_TABLE_WIDTH)
    out.print(render_table(report))
    for note in _notes(report, references):
        out.print(f"[dim]{note}[/]")
    err.print(
        f"{report.items_evaluated} of {report.items_total} composite(s) evaluated with "
        f"{len(report.methods)} method(s) in {seconds:.1f} s"
    )
