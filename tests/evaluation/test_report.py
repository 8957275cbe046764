"""How the evaluation report names the VGG metrics' taps and the networks that gave them."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from dkt.csvcells import read_row
from dkt.dktnet.distilled import DISTILLED_KIND
from dkt.evaluation.report import report_dict, vgg_content_label, vgg_taps_label, write_csv
from dkt.evaluation.runner import EvalReport, MethodResult

EXACT = {"kind": "vgg19", "file": "vgg_normalised_conv3_1.pth", "sha256": "00"}
DISTILLED = {"kind": DISTILLED_KIND, "file": "cd16x_encoder_relu5_1.pth", "sha256": "11"}
TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def _report(**vgg: Any) -> EvalReport:
    return EvalReport([], 0, 0, [], [], None, 0.0, **vgg)


def test_only_the_deep_taps_are_called_the_approximation() -> None:
    sources = {**dict.fromkeys(TAPS[:3], EXACT), **dict.fromkeys(TAPS[3:], DISTILLED)}
    report = _report(vgg_taps=TAPS, vgg_content_tap="relu4_1", vgg_tap_sources=sources)
    assert vgg_taps_label(report) == (
        "relu1_1..relu3_1 (VGG-19, vgg_normalised_conv3_1.pth) + relu4_1, relu5_1 "
        "(distilled cd16x approximation, cd16x_encoder_relu5_1.pth)"
    )
    assert vgg_content_label(report) == (
        "relu4_1 (distilled cd16x approximation, cd16x_encoder_relu5_1.pth)"
    )
    vgg = report_dict(report, {})["vgg"]
    assert [(s["taps"], s["approximation"]) for s in vgg["sources"]] == [
        (list(TAPS[:3]), False),
        (list(TAPS[3:]), True),
    ]


def test_a_distilled_loss_network_is_an_approximation_at_every_tap() -> None:
    report = _report(
        vgg_taps=TAPS, vgg_content_tap="relu4_1", vgg_tap_sources=dict.fromkeys(TAPS, DISTILLED)
    )
    label = vgg_taps_label(report)
    assert label == "relu1_1..relu5_1 (distilled cd16x approximation, cd16x_encoder_relu5_1.pth)"
    assert "VGG-19" not in label


def test_without_recorded_sources_the_taps_alone() -> None:
    report = _report(vgg_taps=TAPS[:3], vgg_content_tap="relu3_1")
    assert vgg_taps_label(report) == "relu1_1, relu2_1, relu3_1"
    assert vgg_content_label(report) == "relu3_1"
    assert report_dict(report, {})["vgg"]["sources"] == []
    assert report_dict(_report(), {})["vgg"] is None and vgg_taps_label(_report()) is None


def test_the_csv_table_writes_a_formula_method_name_as_text(tmp_path: Path) -> None:
    method = MethodResult(name="=HYPERLINK(1)", token="t", kind="folder", description={})
    path = tmp_path / "table.csv"
    write_csv(path, EvalReport([method], 0, 0, [], [], None, 0.0))
    with open(path, newline="", encoding="utf-8") as fh:
        [row] = csv.DictReader(fh)
    assert row["method"] == "'=HYPERLINK(1)"  # a spreadsheet shows it, and runs nothing
    assert read_row(row)["method"] == "=HYPERLINK(1)"
