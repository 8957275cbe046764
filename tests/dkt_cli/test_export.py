"""``dkt export``: options, refusals, an ONNX export with --verify, the TensorRT path's errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dkt_cli.app import app

pytest.importorskip("onnx", reason="onnx not installed (pip install 'dkt[onnx]')")
pytest.importorskip("onnxruntime", reason="onnxruntime not installed (dkt[onnx])")

runner = CliRunner()


def dkt(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_export_with_no_shape_flags_gets_the_default_profile(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    """No --max-shape: dynamic batch up to 4 and H/W up to 2048, opt at the working size."""
    from backends.onnx_metadata import read_metadata

    result = dkt("export", tiny_checkpoint, "-o", tmp_path / "m.onnx", "--exporter", "torchscript")
    assert result.exit_code == 0, result.output
    profile = read_metadata(tmp_path / "m.onnx")["profile"]
    assert profile == {"min": [1, 16, 16], "opt": [1, 64, 64], "max": [4, 2048, 2048]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "onnx", "-o", "m.engine"], "should end in .onnx"),
        (["--format", "tensorrt", "-o", "m.onnx"], "should end in .engine or .plan"),
        (["--format", "tflite", "-o", "m.onnx"], "unknown format 'tflite'"),
        (["-o", "m.bin"], "cannot tell the format"),
        (["-o", "m.onnx", "--static", "--max-shape", "1x3x64x64"], "static export has one shape"),
        (["-o", "m.onnx", "--max-shape", "1x3x64"], "at least 9"),
        (["-o", "m.onnx", "--precision", "int4"], "unknown precision 'int4'"),
        (["-o", "m.onnx", "--precision", "int8"], "int8 needs --calibration DIR"),
        (["-o", "m.plan", "--precision", "int8", "--calibration", "."], "int8 is an ONNX Runtime"),
        (["-o", "m.onnx", "--calibration", "."], "--calibration is for --precision int8"),
        (["-o", "m.onnx", "--max-shape", "1x3x64x64", "--keep-onnx", "x.onnx"], "for --format trt"),
        ([], "give the output file"),
    ],
)
def test_refusals(tiny_checkpoint: Path, args: list[str], message: str) -> None:
    result = dkt("export", tiny_checkpoint, *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_export_onnx_with_verify_then_harmonize(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    result = dkt(
        "export",
        tiny_checkpoint,
        "-o",
        out,
        "--max-shape",
        "2x3x128x128",
        "--exporter",
        "torchscript",
        "--verify",
        "--json",
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["format"] == "onnx" and record["metadata"]["exporter"] == "torchscript"
    assert record["verify"]["passed"] and record["verify"]["max_abs"] < 1e-4
    assert "parity" in result.stderr and "passed" in result.stderr
    # the exported file runs through dkt harmonize, its suffix picking onnxruntime
    from dkt.demo.samples import make_demo_sample
    from dkt.imaging.imageio import write_image

    sample = make_demo_sample(96, 128)
    write_image(tmp_path / "c.png", sample.composite)
    write_image(tmp_path / "k.png", sample.mask)
    result = dkt(
        "harmonize",
        tmp_path / "c.png",
        "--mask",
        tmp_path / "k.png",
        "-o",
        tmp_path / "o.png",
        "--model",
        out,
        "--device",
        "cpu",
        "--json",
        "-q",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["backend"]["backend"] == "onnxruntime"


def test_verify_failure_exits_1(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dkt.export.parity as parity

    monkeypatch.setitem(parity.BOUNDS, "fp32", -1.0)
    result = dkt(
        "export",
        tiny_checkpoint,
        "-o",
        tmp_path / "m.onnx",
        "--static",
        "--opt-shape",
        "1x3x32x32",
        "--exporter",
        "torchscript",
        "--verify",
    )
    assert result.exit_code == 1
    assert "FAILED" in result.output


def test_verify_images_folder_must_hold_pairs(tiny_checkpoint: Path, tmp_path: Path) -> None:
    result = dkt(
        "export",
        tiny_checkpoint,
        "-o",
        tmp_path / "m.onnx",
        "--max-shape",
        "1x3x64x64",
        "--verify",
        "--verify-images",
        tmp_path,
    )
    assert result.exit_code == 2
    assert "no <key>_comp.* / <key>_mask.* pairs" in result.output


def test_trt_without_tensorrt_names_the_extra(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    for alias in ("trt", "tensorrt", "engine"):
        result = dkt(
            "export",
            tiny_checkpoint,
            "--format",
            alias,
            "-o",
            tmp_path / "m.engine",
            "--max-shape",
            "1x3x64x64",
        )
        assert result.exit_code == 2
        assert "pip install 'dkt[trt]'" in result.output
    result = dkt(
        "export",
        tiny_checkpoint,
        "-o",
        tmp_path / "m.plan",
        "--max-shape",
        "1x3x64x64",
        "--device",
        "cpu",
    )
    assert result.exit_code == 2 and "--device must be cuda" in result.output


def test_harmonize_never_falls_back_to_the_cpu_unasked(
    torchscript_odd_onnx: Path, tmp_path: Path
) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: nothing falls back")
    from dkt.demo.samples import make_demo_sample
    from dkt.imaging.imageio import write_image

    sample = make_demo_sample(64, 96)
    write_image(tmp_path / "c.png", sample.composite)
    write_image(tmp_path / "k.png", sample.mask)
    args = [
        "harmonize",
        tmp_path / "c.png",
        "--mask",
        tmp_path / "k.png",
        "-o",
        tmp_path / "o.png",
        "--model",
        torchscript_odd_onnx,
        "--device",
        "cuda",
    ]
    refused = dkt(*args)
    assert refused.exit_code == 2
    assert "--allow-cpu-fallback" in refused.output and not (tmp_path / "o.png").exists()
    allowed = dkt(*args, "--allow-cpu-fallback", "--json", "-q")
    assert allowed.exit_code == 0, allowed.output
    backend = json.loads(allowed.stdout)["backend"]
    assert backend["fallback"] is True and backend["providers"] == ["CPUExecutionProvider"]


def test_int8_export_calibrates_on_a_folder_and_verifies(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    from dkt.demo.samples import make_demo_sample
    from dkt.imaging.imageio import write_image

    calibration = tmp_path / "calib"
    calibration.mkdir()
    for seed in range(2):
        sample = make_demo_sample(48, 64, seed=seed)
        write_image(calibration / f"s{seed}_comp.png", sample.composite)
        write_image(calibration / f"s{seed}_mask.png", sample.mask)
    out = tmp_path / "q.onnx"
    result = dkt(
        "export", tiny_checkpoint, "-o", out, "--precision", "int8", "--calibration",
        calibration, "--exporter", "torchscript", "--verify", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["metadata"]["precision"] == "int8"
    assert record["metadata"]["calibration"]["composites"] == 2
    assert record["verify"]["passed"] and record["verify"]["bound_max_abs"] == 0.2
    assert "int8 convolutions calibrated on 2 composites" in " ".join(result.stderr.split())
    assert "int8 bound 0.2" in " ".join(result.stderr.split())


def test_a_bad_calibration_image_is_named(tiny_checkpoint: Path, tmp_path: Path) -> None:
    (tmp_path / "a_comp.png").write_bytes(b"not a png")
    (tmp_path / "a_mask.png").write_bytes(b"not a png")
    result = dkt(
        "export", tiny_checkpoint, "-o", tmp_path / "q.onnx", "--precision", "int8",
        "--calibration", tmp_path,
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "a_" in result.output and "error" in result.output
    assert not (tmp_path / "q.onnx").exists()
