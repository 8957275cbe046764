"""The words and numbers of the evaluate table: cell texts, notes under it, failure rows.

Text only, so a notebook or another front end shows the same numbers ``dkt evaluate``
prints; how they are laid out (a Rich table, HTML) is the front end's.
"""

from __future__ import annotations

import math
from pathlib import Path

from dkt.evaluation.report import vgg_content_label, vgg_taps_label
from dkt.evaluation.runner import METRICS, EvalReport, MethodResult, Metric


def format_value(metric: Metric, value: float | None, na: str) -> str:
    """A metric's value at the precision its scale needs."""
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


def cell(report: EvalReport, result: MethodResult, metric: Metric, short: bool) -> str:
    """One method's aggregate of one metric; ``short`` gives ``n/a`` and KID's ± spread."""
    reason = report.unavailable.get(metric.key)
    if reason:
        return "n/a" if short else reason
    value = result.aggregate(metric)
    text = format_value(metric, value, "n/a")
    if metric.key == "kid" and value is not None and short:
        std = result.set_metrics.get("kid_std")
        if std is not None and not math.isnan(std):
            text += f" ±{std:.4f}"
    return text


def table_rows(report: EvalReport) -> list[list[str]]:
    """One row per method: name, images scored (of those read), each metric, s/img."""
    rows = []
    for result in report.methods:
        n = (
            f"{result.images}"
            if not result.failures
            else f"{result.images}/{report.items_evaluated}"
        )
        spi = result.seconds_per_image
        rows.append(
            [
                result.name,
                n,
                *(cell(report, result, m, short=True) for m in METRICS),
                "-" if spi is None else f"{spi:.3f}",
            ]
        )
    return rows


def notes(report: EvalReport, references: Path | None) -> list[str]:
    """What the columns mean, why some are n/a, and each method's own notes."""
    lines = [
        "colour, texture: distance between the result's object and its painting (lower = "
        "more harmonized; the composite row is the starting point). content SSIM: object vs "
        "composite (1 = unchanged). bg change: largest change outside the mask (0 expected).",
        "chroma speckle: RMS of the object's fine colour detail (Lab a/b minus a 5x5 mean) "
        "over the painting's; 1 = like the painting, above 1 = colour speckle the painting "
        "lacks, below 1 = flatter colour; geometric mean over images.",
    ]
    if "fid" in report.unavailable:
        lines.append(f"FID, KID: {report.unavailable['fid']}")
    else:
        counts = sorted({r.images for r in report.methods})
        shown = "/".join(str(c) for c in counts)
        lines.append(
            f"FID, KID: each method's {shown} result(s) vs {report.references} reference "
            f"painting(s) in {references}; FID is biased upwards on small sets, compare only "
            "at equal n; KID is unbiased (± = spread over subsets)."
        )
    if "vgg_style" in report.unavailable:
        lines.append(f"VGG style, content: {report.unavailable['vgg_style']}")
    elif report.vgg_taps:
        taps = vgg_taps_label(report)
        if not report.vgg_tap_sources:
            taps = f"{taps} (the taps the weights have)"
        lines.append(f"VGG style at {taps}; VGG content at {vgg_content_label(report)}.")
    for result in report.methods:
        lines += [f"{result.name}: {note}" for note in result.notes]
    return lines


def failure_rows(report: EvalReport) -> list[tuple[str, str, str]]:
    """``(method, item, error)`` for every unreadable composite and every failed result."""
    rows: list[tuple[str, str, str]] = [
        ("(composite)", f.key, f.error) for f in report.item_failures
    ]
    for result in report.methods:
        rows += [(result.name, f.key, f.error) for f in result.failures]
    return rows
