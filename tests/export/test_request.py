"""An export request is checked before anything is built: each bad combination is one line
naming the option, and the defaults ``--help`` shows come without torch."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dkt.errors import ExportError
from dkt.export.request import ExportRequest, check_request, device_index, resolve_format


@pytest.mark.parametrize(
    ("fmt", "output", "expected"),
    [(None, "m.onnx", "onnx"), (None, "m.ENGINE", "trt"), (None, "m.plan", "trt"),
     ("tensorrt", "m.engine", "trt"), ("ONNX", "m.onnx", "onnx")],
)  # fmt: skip
def test_the_format_comes_from_the_flag_or_the_suffix(
    fmt: str | None, output: str, expected: str
) -> None:
    assert resolve_format(fmt, Path(output)) == expected


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"output": None}, "give the output file"),
        ({"output": Path("m.bin")}, "cannot tell the format from '.bin'; pass --format"),
        ({"format": "engine"}, "should end in .engine or .plan"),
        ({"precision": "int4"}, "unknown precision 'int4'"),
        ({"precision": "int8"}, "--precision int8 needs --calibration DIR"),
        ({"calibration": Path(".")}, "--calibration is for --precision int8"),
        ({"keep_onnx": Path("k.onnx")}, "for --format trt"),
        ({"no_timing_cache": True}, "for --format trt"),
    ],
)
def test_refused_requests_name_what_is_wrong(changes: dict[str, object], message: str) -> None:
    request = ExportRequest(**{"output": Path("m.onnx"), **changes})  # type: ignore[arg-type]
    with pytest.raises(ExportError, match=re.escape(message)):
        check_request(request)


def test_a_missing_verify_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="not a folder"):
        check_request(ExportRequest(tmp_path / "m.onnx", verify_images=tmp_path / "absent"))
    assert check_request(ExportRequest(tmp_path / "m.onnx")) == (tmp_path / "m.onnx", "onnx")


def test_a_tensorrt_engine_is_built_on_a_cuda_device() -> None:
    assert device_index("cuda") == 0 and device_index("cuda:2") == 2
    for device in ("cpu", "cuda:x", "mps"):
        with pytest.raises(ExportError, match="--device must be cuda or cuda:N"):
            device_index(device)


def test_the_request_module_imports_no_torch() -> None:
    """``dkt export --help`` shows these defaults: reading them must not load torch."""
    code = "import sys, dkt.export.request; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
