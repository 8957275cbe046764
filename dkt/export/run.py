"""``export_model``: a checkpoint to ONNX or a TensorRT engine, with an optional parity check.

The verb behind ``dkt export``, callable from a script. It checks the request, builds the
shape profile, reads the calibration and verification images, exports, and verifies; the
result is an :class:`ExportReport` (the ``--json`` record, the parity report) for the
caller to print.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.shapes import ShapeProfile, build_profile
from dkt.dktnet.checkpoint import read_checkpoint_info
from dkt.errors import ExportError
from dkt.export.calibration import calibration_samples
from dkt.export.onnx import export_onnx
from dkt.export.parity import ParityReport, folder_images, verify_export
from dkt.export.request import ExportRequest, check_request, device_index


@dataclass
class ExportReport:
    """What an export wrote and, with ``verify``, how close it came to the eager model."""

    format: str
    output: Path
    #: One line: the files written, the time taken, the shapes covered.
    summary: str
    #: The ``--json`` document: format, profile, output, seconds, metadata, verify.
    record: dict[str, Any]
    parity: ParityReport | None = None

    @property
    def passed(self) -> bool:
        """False only when a parity check ran and went over its bound."""
        return self.parity is None or self.parity.passed


@dataclass(frozen=True)
class _Written:
    record: dict[str, Any]
    summary: str
    verify_device: str


def _export_onnx(
    request: ExportRequest, output: Path, profile: ShapeProfile, samples: list[Any] | None
) -> _Written:
    result = export_onnx(
        request.model,
        output,
        profile=profile,
        precision=request.precision,
        opset=request.opset,
        exporter=request.exporter,
        simplify=request.simplify,
        calibration=samples,
    )
    record = {
        "output": str(result.path),
        "seconds": round(result.seconds, 2),
        "nodes": result.nodes,
        "metadata": result.metadata,
    }
    summary = f"wrote {output} ({result.nodes} nodes, {result.seconds:.1f} s)"
    for note in result.notes:
        summary += f"; {note}"
    return _Written(record, summary, "cpu")


def _export_engine(request: ExportRequest, output: Path, profile: ShapeProfile) -> _Written:
    from dkt.export.tensorrt import export_engine

    index = device_index(request.device)
    cache: Path | bool = False if request.no_timing_cache else (request.timing_cache or True)
    report = export_engine(
        request.model,
        output,
        profile=profile,
        precision=request.precision,
        opset=request.opset,
        exporter=request.exporter,
        simplify=request.simplify,
        workspace_mib=request.workspace,
        timing_cache=cache,
        device_index=index,
        keep_onnx=request.keep_onnx,
    )
    record = {
        "output": str(report.engine),
        "sidecar": str(report.sidecar),
        "seconds": round(report.seconds, 2),
        "metadata": report.metadata.to_dict(),
    }
    summary = (
        f"wrote {report.engine} and {report.sidecar.name} "
        f"(TensorRT {report.metadata.tensorrt_version}, {report.metadata.gpu_name}, "
        f"{report.seconds:.1f} s)"
    )
    return _Written(record, summary, f"cuda:{index}")


def export_model(
    request: ExportRequest, on_written: Callable[[str], None] = lambda summary: None
) -> ExportReport:
    """Export, then (with ``verify``) compare against the eager fp32 model.

    ``on_written`` gets the summary line as soon as the file is written, before a parity
    check that can take a while. Raises a :class:`~dkt.errors.DktError` for a request that
    cannot be carried out, before anything is written where the options are at fault.
    """
    output, canonical = check_request(request)
    working_size = read_checkpoint_info(request.model).config.working_size
    profile = build_profile(
        dynamic=request.dynamic,
        working_size=working_size,
        min_shape=request.min_shape,
        opt_shape=request.opt_shape,
        max_shape=request.max_shape,
    )
    folder = request.verify_images
    images = folder_images(folder) if folder is not None else None
    if images == []:
        raise ExportError(f"{folder}: no <key>_comp.* / <key>_mask.* pairs found")
    samples = None
    if request.calibration is not None:
        samples = calibration_samples(request.calibration, working_size, profile)
    if canonical == "onnx":
        written = _export_onnx(request, output, profile, samples)
    else:
        written = _export_engine(request, output, profile)
    summary = f"{written.summary}; shapes {profile.describe()}"
    on_written(summary)
    record = {"format": canonical, "profile": profile.to_dict(), **written.record}
    report = ExportReport(canonical, output, summary, record)
    if request.verify:
        report.parity = verify_export(
            request.model,
            output,
            precision=request.precision,
            profile=profile,
            images=images,
            device=written.verify_device,
            working_size=working_size,
        )
        record["verify"] = report.parity.to_dict()
    return report
