"""An evaluation report as files: the ``--json`` document, the CSV table, the contact sheet.

Kept apart from the command so a script or notebook that ran :func:`run_evaluation` writes
the same files ``dkt evaluate`` writes.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from dkt.demo.figures import contact_sheet
from dkt.dktnet.atomic import atomic_write_bytes
from dkt.dktnet.errors import DktError
from dkt.evaluation.runner import METRICS, EvalReport
from dkt.imaging.imageio import write_image


class EmptySheetError(DktError):
    """No composite could be read, so a contact sheet would be empty."""


def _num(value: float | None) -> float | None:
    """Six significant digits (not decimals: VGG losses can be far below 1e-6)."""
    if value is None or math.isnan(value):
        return None
    return float(f"{float(value):.6g}")


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
            [
                r.name,
                r.kind,
                r.images,
                len(r.failures),
                *cells,
                "" if kid_std is None else f"{kid_std:.6g}",
                "" if report.references is None else report.references,
                "" if spi is None else f"{spi:.4f}",
            ]
        )
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


def write_sheet(path: Path, report: EvalReport) -> None:
    """Contact sheet: one row per composite, columns composite | each method."""
    if not report.sheet_rows:
        raise EmptySheetError(f"{path}: no composite could be read, nothing to show")
    # The "composite" baseline's column would repeat the first one: leave it out.
    shown = [i for i, r in enumerate(report.methods) if r.token != "composite"]
    rows = []
    for _, images in report.sheet_rows:
        composite = images[0]
        assert composite is not None
        blank = np.full_like(composite, 200)
        rows.append(
            [composite] + [images[i + 1] if images[i + 1] is not None else blank for i in shown]
        )
    sheet = contact_sheet(
        rows,
        column_labels=["composite", *(report.methods[i].name for i in shown)],
        row_labels=[key for key, _ in report.sheet_rows],
        cell_height=192,
    )
    write_image(path, sheet)
