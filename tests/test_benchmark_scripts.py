"""The PHDNet timing stand-in and the model speed benchmark (tiny sizes, a few seconds)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.phdnet_standin import PHDNET_PARAMETERS, build_phdnet_standin
from dkt import dktnet
from tests.cd16x_files import write_cd16x_encoder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def standin() -> torch.nn.Module:
    return build_phdnet_standin(seed=0)


def test_standin_has_phdnets_parameter_count(standin: torch.nn.Module) -> None:
    assert PHDNET_PARAMETERS == 82_999_249
    assert sum(p.numel() for p in standin.parameters()) == PHDNET_PARAMETERS


def test_standin_maps_composite_and_mask_to_an_image(standin: torch.nn.Module) -> None:
    composite = torch.rand(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:48, 20:44] = 1.0
    with torch.inference_mode():
        out = standin(composite, mask)
    assert out.shape == (1, 3, 64, 64)
    assert torch.isfinite(out).all()


def test_standin_weights_are_seeded(standin: torch.nn.Module) -> None:
    again = build_phdnet_standin(seed=0)
    first = next(iter(standin.state_dict().values()))
    assert torch.equal(first, next(iter(again.state_dict().values())))


def test_model_speed_runs_end_to_end(tmp_path: Path) -> None:
    out_json = tmp_path / "speed.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    args = ["--size", "32", "--repeats", "1", "--warmup", "0", "--threads", "1"]
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "model_speed.py"),
            *args,
            "--json",
            str(out_json),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if line.startswith("| model"))
    assert "1 thr speed-up" in header
    name = f"| {dktnet.BUNDLED_MODEL.name}"
    rows = [line for line in result.stdout.splitlines() if line.startswith(name)]
    assert len(rows) == 1 and rows[0].rstrip(" |").endswith("x")
    assert "82,999,249" in result.stdout
    assert out_json.is_file() and '"speedup_vs_phdnet"' in out_json.read_text()


def test_gpu_check_dry_run_runs_every_row_on_the_cpu(tmp_path: Path) -> None:
    """The GPU check's --dry-run: each row runs (or says why it cannot) so a lent GPU's
    minutes are never lost to a typo; the report is one JSON file plus the table."""
    import json

    out = tmp_path / "gpu_check.json"
    encoder = write_cd16x_encoder(tmp_path / "encoder.pth")
    script = ROOT / "benchmarks" / "gpu_check.py"
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--dry-run",
            "--out",
            str(out),
            "--encoder-init",
            str(encoder),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = {(r["name"], r["batch"]): r for r in report["rows"]}
    errors = [f"{r['name']}: {r['status']}" for r in report["rows"] if r["status"] != "ok"
              and not r["status"].startswith("skipped: CUDA graphs")]  # fmt: skip
    assert not errors, errors
    for name in ("eager fp32", "eager fp16", "eager bf16", "eager fp32 channels_last"):
        for batch in (1, 2):
            row = rows[(name, batch)]
            assert row["images_per_s"] > 0 and row["tflops"] > 0
            assert row["background_exact"] == {"random": True, "flat_object": True}
    assert rows[("eager fp32", 1)]["max_abs_diff"]["random"] == 0.0
    assert 0 < rows[("eager bf16", 1)]["max_abs_diff"]["flat_object"] < 0.05
    assert rows[("torch.compile fp32", 2)]["images_per_s"] > 0
    assert rows[("ORT CPU", 1)]["background_exact"]["random"]
    for config in ("dktnet-cd16x", "dktnet-relu3", "dktnet-vgg19"):
        assert rows[(f"train {config} bf16", 2)]["images_per_s"] > 0
    assert report["gflop_per_image"] > 0 and "eager fp16" in result.stdout


def test_backends_cpu_compares_eager_ort_and_phdnet_with_the_op_breakdown(tmp_path: Path) -> None:
    import json

    from dkt.demo.samples import make_demo_sample
    from dkt.imaging.imageio import write_image

    calibration = tmp_path / "calib"
    calibration.mkdir()
    sample = make_demo_sample(48, 64)
    write_image(calibration / "a_comp.png", sample.composite)
    write_image(calibration / "a_mask.png", sample.mask)
    out = tmp_path / "cpu.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "backends_cpu.py"), "--configs", "lite",
         "--sizes", "64", "--threads", "1", "--runs", "1", "--warmup", "0",
         "--exporter", "torchscript", "--profile", "--int8", str(calibration),
         "--json", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = json.loads(out.read_text())
    assert row["ort_speedup"] == pytest.approx(row["eager"]["median_ms"] / row["ort"]["median_ms"])
    assert row["eager"]["gflop"] > 0 and row["phdnet"]["gflop"] > 50 * row["eager"]["gflop"]
    ops = {o["op"]: o for o in row["ort_profile"]["ops"]}
    assert "Conv" in ops and 0 < row["ort_profile"]["conv_share"] < 1
    assert sum(o["share"] for o in ops.values()) == pytest.approx(1.0)
    assert "ORT kernel time by operator" in result.stdout and "| Conv |" in result.stdout
    assert row["ort_int8_speedup"] == pytest.approx(
        row["eager"]["median_ms"] / row["ort_int8"]["median_ms"]
    )
    assert "ORT int8 ms" in result.stdout
