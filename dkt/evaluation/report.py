"""An evaluation report as files: the ``--json`` document, the CSV table, the contact sheet.

Kept apart from the command so a script or notebook that ran :func:`run_evaluation` writes
the same files ``dkt evaluate`` writes.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dkt.atomic import atomic_write_bytes
from dkt.csvcells import guard_row
from dkt.demo.figures import contact_sheet
from dkt.dktnet.distilled import DISTILLED_KIND, tap_groups
from dkt.errors import EmptySheetError
from dkt.evaluation.runner import METRICS, EvalReport
from dkt.imaging.imageio import write_image


def _num(value: float | None) -> float | None:
    """Six significant digits (not decimals: VGG losses can be far below 1e-6)."""
    if value is None or math.isnan(value):
        return None
    return float(f"{float(value):.6g}")


def network_label(record: Mapping[str, object]) -> str:
    """A loss network's record in words: the real VGG-19, or the distilled approximation."""
    kind = record.get("kind")
    if kind == DISTILLED_KIND:
        name = "distilled cd16x approximation"
    elif kind == "vgg19":
        name = "VGG-19"
    else:
        name = str(kind or "network not recorded")
    return f"{name}, {record['file']}" if record.get("file") else name


def _tap_run(taps: list[str]) -> str:
    return f"{taps[0]}..{taps[-1]}" if len(taps) > 2 else ", ".join(taps)


def vgg_taps_label(report: EvalReport) -> str | None:
    """The VGG metrics' taps, each run of them with the network that gave it.

    E.g. ``relu1_1..relu3_1 (VGG-19, vgg_normalised_conv3_1.pth) + relu4_1, relu5_1
    (distilled cd16x approximation, cd16x_encoder_relu5_1.pth)``; without recorded sources,
    the taps alone. None when no VGG metric was taken.
    """
    if not report.vgg_taps:
        return None
    if not report.vgg_tap_sources:
        return ", ".join(report.vgg_taps)
    groups = tap_groups(report.vgg_taps, report.vgg_tap_sources)
    return " + ".join(f"{_tap_run(taps)} ({network_label(rec)})" for taps, rec in groups)


def vgg_content_label(report: EvalReport) -> str | None:
    """The tap VGG content was taken at, with its network where recorded."""
    tap = report.vgg_content_tap
    if tap is None:
        return None
    record = report.vgg_tap_sources.get(tap)
    return f"{tap} ({network_label(record)})" if record else tap


def _vgg_dict(report: EvalReport) -> dict[str, Any] | None:
    if not report.vgg_taps:
        return None
    groups = tap_groups(report.vgg_taps, report.vgg_tap_sources)
    return {
        "taps": list(report.vgg_taps),
        "content_tap": report.vgg_content_tap,
        "label": vgg_taps_label(report),
        "sources": [
            {
                "taps": taps,
                "network": rec.get("kind"),
                "file": rec.get("file"),
                "approximation": rec.get("kind") == DISTILLED_KIND,
            }
            for taps, rec in groups
            if rec
        ],
    }


def report_dict(report: EvalReport, info: dict[str, Any]) -> dict[str, Any]:
    """The ``--json`` document."""
    methods = []
    for r in report.methods:
        metrics = {
            m.key: None if m.key in report.unavailable else _num(r.aggregate(m)) for m in METRICS
        }
        if "fid" not in report.unavailable:
            metrics["kid_std"] = _num(r.set_metrics.get("kid_std"))
        methods.append(
            {
                "method": r.name,
                "token": r.token,
                "kind": r.kind,
                "images": r.images,
                "failed": len(r.failures),
                "seconds_per_image": _num(r.seconds_per_image),
                "metrics": metrics,
                "fid_images": r.images if "fid" not in report.unavailable else None,
                "notes": r.notes,
                "failures": [{"item": f.key, "error": f.error} for f in r.failures],
                "description": r.description,
                "per_item": {k: {m: _num(v) for m, v in s.items()} for k, s in r.per_item.items()},
            }
        )
    return {
        "items": {
            "total": report.items_total,
            "evaluated": report.items_evaluated,
            "failures": [{"item": f.key, "error": f.error} for f in report.item_failures],
        },
        "references": report.references,
        "unavailable": report.unavailable,
        "vgg": _vgg_dict(report),
        "metrics": {
            m.key: {
                "label": m.label,
                "better": m.better,
                "aggregate": m.aggregate,
                "description": m.description,
            }
            for m in METRICS
        },
        "methods": methods,
        "seconds_total": round(report.seconds_total, 3),
        **info,
    }


def write_csv(path: Path, report: EvalReport) -> None:
    """The table as CSV: one row per method; unavailable metrics say why."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    keys = [m.key for m in METRICS]
    writer.writerow(
        [
            "method",
            "kind",
            "images",
            "failed",
            *keys,
            "kid_std",
            "fid_references",
            "seconds_per_image",
        ]
    )
    for r in report.methods:
        cells = []
        for m in METRICS:
            reason = report.unavailable.get(m.key)
            value = r.aggregate(m)
            cells.append(reason if reason else ("" if value is None else f"{value:.6g}"))
        kid_std = r.set_metrics.get("kid_std")
        spi = r.seconds_per_image
        writer.writerow(
            guard_row([
                r.name,
                r.kind,
                r.images,
                len(r.failures),
                *cells,
                "" if kid_std is None else f"{kid_std:.6g}",
                "" if report.references is None else report.references,
                "" if spi is None else f"{spi:.4f}",
            ])
        )  # fmt: skip
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


def _or_blank(image: np.ndarray | None, blank: np.ndarray) -> np.ndarray:
    """A method that failed on a composite still needs a cell, so the columns line up."""
    return blank if image is None else image


def write_sheet(path: Path, report: EvalReport) -> None:
    """Contact sheet: one row per composite, columns composite | each method."""
    if not report.sheet_rows:
        raise EmptySheetError(f"{path}: no composite could be read, nothing to show")
    # The "composite" baseline's column would repeat the first one: leave it out.
    shown = [i for i, r in enumerate(report.methods) if r.token != "composite"]
    rows: list[list[np.ndarray]] = []
    for _, images in report.sheet_rows:
        composite, *outputs = images
        assert composite is not None  # the runner puts the composite it read first
        blank = np.full_like(composite, 200)
        rows.append([composite] + [_or_blank(outputs[i], blank) for i in shown])
    sheet = contact_sheet(
        rows,
        column_labels=["composite", *(report.methods[i].name for i in shown)],
        row_labels=[key for key, _ in report.sheet_rows],
        cell_height=192,
    )
    write_image(path, sheet)
