"""Parity checks: eager float32 against ONNX Runtime on random and real inputs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from backends.shapes import ShapeProfile
from dkt.export.parity import (
    BOUNDS,
    ParityReport,
    compare,
    demo_images,
    folder_images,
    psnr,
    random_cases,
    real_cases,
    soft_mask,
    verify_export,
)


def test_psnr_and_compare() -> None:
    a = np.zeros((1, 3, 4, 4), np.float32)
    assert math.isinf(psnr(a, a))
    assert psnr(a, a + 0.1) == pytest.approx(20.0)
    mask = np.zeros((1, 1, 4, 4), np.float32)
    mask[..., 1:3, 1:3] = 1
    changed = a.copy()
    changed[..., 0, 0] = 0.5  # background pixel altered
    case = compare("x", a, changed, a, mask)
    assert case.max_abs == pytest.approx(0.5)
    assert not case.background_exact
    report = ParityReport([case], BOUNDS["fp32"], "fp32")
    assert not report.passed
    assert report.to_dict()["cases"][0]["shape"] == [1, 3, 4, 4]


def test_inputs_cover_odd_sizes_and_soft_masks() -> None:
    profile = ShapeProfile((1, 16, 16), (1, 64, 64), (2, 128, 128))
    cases = random_cases(profile)
    shapes = [c[1].shape for c in cases]
    assert shapes == [(1, 3, 64, 64), (2, 3, 61, 69), (1, 3, 16, 16)]
    mask = soft_mask(np.random.default_rng(0), 1, 64, 64)
    assert (mask == 0).any() and (mask == 1).any() and ((mask > 0) & (mask < 1)).any()
    ((_name, comp, m),) = real_cases(demo_images(), profile, 64)
    assert comp.shape[2:] == m.shape[2:] and max(comp.shape[2:]) == 64


def test_folder_images_pairs_comp_and_mask(tmp_path: Path) -> None:
    from dkt.imaging.imageio import write_image

    sample = demo_images()[0]
    write_image(tmp_path / "a_comp.png", sample[1])
    write_image(tmp_path / "a_mask.png", (sample[2] * 255).astype(np.uint8))
    write_image(tmp_path / "b.png", sample[1])
    write_image(tmp_path / "b_mask.png", (sample[2] * 255).astype(np.uint8))
    (tmp_path / "lonely_mask.png").write_bytes((tmp_path / "b_mask.png").read_bytes())
    assert [key for key, _, _ in folder_images(tmp_path)] == ["a", "b"]


def test_eager_vs_onnxruntime_fp32_random_and_demo(
    tiny_checkpoint: Path, dynamo_onnx: Path
) -> None:
    report = verify_export(
        tiny_checkpoint,
        dynamo_onnx,
        precision="fp32",
        profile=ShapeProfile((1, 16, 16), (1, 64, 64), (2, 128, 128)),
        working_size=64,
    )
    assert report.passed, report.to_dict()
    assert report.max_abs < 1e-4
    assert report.min_psnr > 100
    assert len(report.cases) == 5
    assert report.cases[-1].name == f"{report.cases[0].name} at strength 0.5"


def test_an_export_without_the_strength_input_is_checked_at_full_strength_only(
    tiny_checkpoint: Path, old_style_onnx: Path
) -> None:
    report = verify_export(
        tiny_checkpoint,
        old_style_onnx,
        precision="fp32",
        profile=ShapeProfile((1, 16, 16), (1, 64, 64), (2, 128, 128)),
        working_size=64,
    )
    assert report.passed, report.to_dict()
    assert len(report.cases) == 4 and not [c for c in report.cases if "strength" in c.name]


def test_eager_vs_onnxruntime_fp16(tiny_checkpoint: Path, fp16_onnx: Path) -> None:
    report = verify_export(
        tiny_checkpoint,
        fp16_onnx,
        precision="fp16",
        profile=ShapeProfile((1, 16, 16), (1, 64, 64), (2, 128, 128)),
        working_size=64,
    )
    assert report.passed, report.to_dict()
    assert report.bound == BOUNDS["fp16"]


def test_eager_vs_onnxruntime_on_real_composites(
    tiny_checkpoint: Path, torchscript_odd_onnx: Path, shared_data: Path
) -> None:
    images = folder_images(shared_data / "example_composites", limit=3)
    if not images:
        pytest.skip("no <key>_comp/<key>_mask pairs in the shared example composites")
    report = verify_export(
        tiny_checkpoint,
        torchscript_odd_onnx,
        precision="fp32",
        profile=ShapeProfile((1, 9, 9), (1, 61, 77), (3, 128, 128)),
        images=images,
        working_size=96,
    )
    assert report.passed, report.to_dict()
