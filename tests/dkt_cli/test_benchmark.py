"""``dkt benchmark``: several backends side by side, a table on stderr, JSON on stdout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dkt_cli.app import app

runner = CliRunner()


def dkt(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_torch_and_onnxruntime_side_by_side(
    tiny_checkpoint: Path, fp16_onnx: Path, torchscript_odd_onnx: Path
) -> None:
    result = dkt(
        "benchmark",
        "--model",
        tiny_checkpoint,
        "--model",
        torchscript_odd_onnx,
        "--backends",
        "torch,onnxruntime",
        "--size",
        "48",
        "--batch",
        "2",
        "--runs",
        "3",
        "--warmup",
        "1",
        "--device",
        "cpu",
        "--json",
    )
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)["results"]
    assert [r["backend"] for r in results] == ["torch", "onnxruntime"]
    for r in results:
        assert r["batch"] == 2 and r["size"] == 48 and r["runs"] == 3
        assert r["median_ms"] > 0 and r["images_per_s"] > 0 and r["peak_memory_bytes"] > 0
        assert r["gflop_per_image"] > 0
        assert r["gflop_per_s"] == pytest.approx(r["gflop_per_image"] * r["images_per_s"])
    assert results[0]["gflop_per_image"] == results[1]["gflop_per_image"]
    assert "images/s" in result.stderr and "GFLOP/s" in result.stderr


@pytest.mark.parametrize(
    ("backends", "message"),
    [(",", "at least one name"), ("torch,torch", "twice"), ("tvm", "unknown backend 'tvm'")],
)
def test_bad_backend_lists(tiny_checkpoint: Path, backends: str, message: str) -> None:
    result = dkt("benchmark", "--model", tiny_checkpoint, "--backends", backends)
    assert result.exit_code == 2
    assert message in result.output


def test_a_failing_backend_keeps_the_results_so_far(tiny_checkpoint: Path, tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"x")
    result = dkt(
        "benchmark",
        "--model",
        tiny_checkpoint,
        "--model",
        engine,
        "--backends",
        "torch,tensorrt",
        "--size",
        "32",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--device",
        "cpu",
        "--json",
    )
    assert result.exit_code == 1
    assert [r["backend"] for r in json.loads(result.stdout)["results"]] == ["torch"]
    assert "GPUs only" in result.stderr
