"""What an export is asked to do, checked before anything is built.

Kept free of torch, so the command line's ``--help`` shows these defaults at once and a
bad combination of options is refused before a model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backends.onnx_metadata import ONNX_PRECISIONS
from dkt import dktnet
from dkt.errors import ExportError

#: Torch's ONNX exporters, the default first.
EXPORTERS = ("dynamo", "torchscript")
DEFAULT_OPSET = 18
DEFAULT_WORKSPACE_MIB = 4096
#: Format names accepted, to the canonical one.
FORMATS = {"onnx": "onnx", "trt": "trt", "tensorrt": "trt", "engine": "trt"}
#: The suffixes each canonical format's file may have: the suffix picks the backend later.
SUFFIXES = {"onnx": (".onnx",), "trt": (".engine", ".plan")}


@dataclass(frozen=True)
class ExportRequest:
    """An export: the options of ``dkt export``, ``format`` None meaning from the suffix.

    Shapes are NCHW texts as ``trtexec`` takes them (``1x3x512x512``); the TensorRT fields
    (``device``, ``workspace`` in MiB, the timing cache, ``keep_onnx``) are for ``trt`` only.
    """

    output: Path | None
    model: Path = dktnet.BUNDLED_MODEL
    format: str | None = None
    dynamic: bool = True
    min_shape: str | None = None
    opt_shape: str | None = None
    max_shape: str | None = None
    opset: int = DEFAULT_OPSET
    precision: str = "fp32"
    calibration: Path | None = None
    exporter: str = EXPORTERS[0]
    simplify: bool = False
    verify: bool = False
    verify_images: Path | None = None
    device: str = "cuda"
    workspace: int = DEFAULT_WORKSPACE_MIB
    timing_cache: Path | None = None
    no_timing_cache: bool = False
    keep_onnx: Path | None = None


def resolve_format(fmt: str | None, output: Path) -> str:
    """The canonical format (onnx or trt) from ``fmt`` or, without it, the output suffix."""
    suffix = output.suffix.lower()
    if fmt is None:
        for name, suffixes in SUFFIXES.items():
            if suffix in suffixes:
                return name
        raise ExportError(
            f"{output}: cannot tell the format from '{suffix or '(no suffix)'}'; pass --format"
        )
    canonical = FORMATS.get(fmt.lower())
    if canonical is None:
        raise ExportError(f"unknown format '{fmt}' (use onnx, or trt / tensorrt / engine)")
    if suffix not in SUFFIXES[canonical]:
        raise ExportError(
            f"{output}: a {canonical} export should end in {' or '.join(SUFFIXES[canonical])} "
            "(the suffix picks the backend when the file is used)"
        )
    return canonical


def check_request(request: ExportRequest) -> tuple[Path, str]:
    """The output file and canonical format, once the options agree with each other."""
    output = request.output
    if output is None:
        raise ExportError("give the output file: -o model.onnx or -o model.engine")
    canonical = resolve_format(request.format, output)
    precision = request.precision
    if precision not in ONNX_PRECISIONS:
        raise ExportError(f"unknown precision '{precision}' (use {', '.join(ONNX_PRECISIONS)})")
    if precision == "int8" and canonical != "onnx":
        raise ExportError(
            "int8 is an ONNX Runtime export (--format onnx); TensorRT builds fp32 or fp16"
        )
    if precision == "int8" and request.calibration is None:
        raise ExportError(
            "--precision int8 needs --calibration DIR: composites and masks to calibrate on"
        )
    if request.calibration is not None and precision != "int8":
        raise ExportError("--calibration is for --precision int8")
    if request.verify_images is not None and not request.verify_images.is_dir():
        raise ExportError(f"{request.verify_images}: not a folder")
    trt_only = request.keep_onnx or request.timing_cache or request.no_timing_cache
    if canonical == "onnx" and trt_only:
        raise ExportError("--keep-onnx and the timing-cache options are for --format trt")
    return output, canonical


def device_index(device: str) -> int:
    """The CUDA device a TensorRT engine is built on; anything but ``cuda[:N]`` is refused."""
    kind, _, index = device.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise ExportError(
            f"TensorRT builds on a GPU: --device must be cuda or cuda:N, not '{device}'"
        )
    return int(index or 0)
