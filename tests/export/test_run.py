"""``export_model``, the verb behind ``dkt export``, called directly."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dkt.errors import ExportError
from dkt.export.request import ExportRequest

pytest.importorskip("onnx", reason="onnx not installed (pip install 'dkt[onnx]')")
pytest.importorskip("onnxruntime", reason="onnxruntime not installed (dkt[onnx])")

from dkt.export.run import export_model

_STATIC: dict[str, Any] = {"dynamic": False, "opt_shape": "1x3x32x32", "exporter": "torchscript"}


def test_writes_the_file_and_reports_it_before_verifying(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "m.onnx"
    said: list[str] = []
    request = ExportRequest(out, tiny_checkpoint, verify=True, **_STATIC)
    report = export_model(request, on_written=said.append)
    assert out.is_file() and report.output == out and report.format == "onnx"
    assert len(said) == 1 and said[0] == report.summary
    assert said[0].startswith(f"wrote {out} (") and "shapes" in said[0]
    assert report.record["format"] == "onnx" and report.record["output"] == str(out)
    assert report.record["profile"]["opt"] == [1, 32, 32]
    assert report.parity is not None and report.passed
    assert report.record["verify"]["passed"] is True


def test_a_parity_check_over_its_bound_is_reported_not_raised(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dkt.export.parity as parity

    monkeypatch.setitem(parity.BOUNDS, "fp32", -1.0)
    request = ExportRequest(tmp_path / "m.onnx", tiny_checkpoint, verify=True, **_STATIC)
    report = export_model(request)
    assert not report.passed and report.record["verify"]["passed"] is False
    assert (tmp_path / "m.onnx").is_file()  # the export stands; the caller decides


def test_a_verify_folder_without_pairs_is_refused_before_exporting(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    said: list[str] = []
    request = ExportRequest(
        tmp_path / "m.onnx", tiny_checkpoint, verify=True, verify_images=tmp_path, **_STATIC
    )
    with pytest.raises(ExportError, match=re.escape("no <key>_comp.* / <key>_mask.* pairs found")):
        export_model(request, on_written=said.append)
    assert said == [] and not (tmp_path / "m.onnx").exists()
