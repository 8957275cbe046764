"""The onnxruntime backend: explicit providers, no silent CPU fallback, the blend invariant."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from backends import registry
from backends.base import LoadOptions
from backends.shapes import ShapeProfile
from dkt.errors import BackendError, ShapeError
from dkt.inference.harmonizer import Harmonizer

ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (dkt[onnx])")

from backends.onnxruntime_backend import (  # noqa: E402
    CPU,
    CUDA,
    TENSORRT,
    OnnxRuntimeBackend,
    provider_plan,
)


def test_provider_plan_is_explicit() -> None:
    both = [CUDA, CPU]
    assert provider_plan("cpu", both) == [(CPU, {})]
    assert provider_plan("cuda:1", both) == [(CUDA, {"device_id": 1}), (CPU, {})]
    assert provider_plan("auto", both)[0][0] == CUDA
    assert provider_plan("auto", [CPU]) == [(CPU, {})]
    plan = provider_plan("tensorrt:0", both, ShapeProfile((1, 16, 16), (1, 64, 64), (2, 96, 96)))
    assert [p for p, _ in plan] == [TENSORRT, CUDA, CPU]
    options = plan[0][1]
    assert options["trt_profile_min_shapes"] == "composite:1x3x16x16,mask:1x1x16x16"
    assert options["trt_profile_max_shapes"] == "composite:2x3x96x96,mask:2x1x96x96"
    with pytest.raises(BackendError, match="invalid device 'gpu'"):
        provider_plan("gpu", both)
    with pytest.raises(BackendError, match="invalid device 'cuda:x'"):
        provider_plan("cuda:x", both)


def test_suffix_picks_the_backend_and_backend_overrides() -> None:
    assert registry.name_for_model(Path("m.onnx")) == "onnxruntime"
    assert registry.name_for_model(Path("m.engine")) == "tensorrt"
    assert registry.name_for_model(Path("m.PLAN")) == "tensorrt"
    assert registry.get("onnxruntime") is OnnxRuntimeBackend


def test_runs_and_reports_what_loaded(dynamo_onnx: Path) -> None:
    with registry.open_backend(dynamo_onnx, LoadOptions(device="cpu")) as backend:
        assert isinstance(backend, OnnxRuntimeBackend)
        described = backend.describe()
        assert described["providers"][0] == CPU
        assert described["fallback"] is False
        assert described["precision"] == "fp32"
        assert backend.working_size == 64
        out = backend.run(
            np.full((1, 3, 20, 30), 0.5, np.float32), np.zeros((1, 1, 20, 30), np.float32)
        )
        np.testing.assert_array_equal(out, 0.5)


@pytest.mark.skipif(CUDA in ort.get_available_providers(), reason="this onnxruntime has CUDA")
def test_gpu_request_never_falls_back_silently(dynamo_onnx: Path) -> None:
    with pytest.raises(BackendError) as info:
        registry.open_backend(dynamo_onnx, LoadOptions(device="cuda"))
    message = str(info.value)
    assert "CUDAExecutionProvider" in message and "--allow-cpu-fallback" in message
    assert "\n" not in message
    fallback = LoadOptions(device="cuda", allow_cpu_fallback=True)
    with registry.open_backend(dynamo_onnx, fallback) as backend:
        described = backend.describe()
        assert described["fallback"] is True
        assert described["providers"] == [CPU]


def test_precision_is_fixed_by_the_file(dynamo_onnx: Path, fp16_onnx: Path) -> None:
    with pytest.raises(BackendError, match="exported for fp32"):
        registry.open_backend(dynamo_onnx, LoadOptions(precision="fp16"))
    with registry.open_backend(fp16_onnx) as backend:
        assert backend.describe()["precision"] == "fp16"


def test_static_graph_refuses_other_shapes_clearly(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from dkt.export.onnx import export_onnx

    out = tmp_path / "static.onnx"
    export_onnx(
        tiny_checkpoint, out, profile=ShapeProfile.static((1, 32, 32)), exporter="torchscript"
    )
    with registry.open_backend(out) as backend:
        backend.run(np.zeros((1, 3, 32, 32), np.float32), np.zeros((1, 1, 32, 32), np.float32))
        with pytest.raises(ShapeError, match=r"input 1x3x40x32 is outside .*static 1x3x32x32"):
            backend.run(np.zeros((1, 3, 40, 32), np.float32), np.zeros((1, 1, 40, 32), np.float32))


def test_harmonizer_keeps_background_bytes(torchscript_odd_onnx: Path) -> None:
    rng = np.random.default_rng(3)
    composite = rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)
    mask = np.zeros((90, 70), np.float32)
    mask[30:60, 20:50] = 1.0
    mask[29, 20:50] = 0.4
    with registry.open_backend(torchscript_odd_onnx) as backend:
        out = Harmonizer(backend).harmonize(composite, mask)  # working size 64 from metadata
    np.testing.assert_array_equal(out[mask == 0], composite[mask == 0])


def test_not_a_dkt_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx at all")
    with pytest.raises(BackendError, match=r"bad\.onnx"):
        registry.open_backend(bad)


def test_missing_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, dynamo_onnx: Path
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(BackendError) as info:
        registry.open_backend(dynamo_onnx)
    message = str(info.value)
    assert message.endswith("install it with: pip install 'dkt[onnx]'")
    assert "\n" not in message


def test_memory_estimate_comes_from_the_exports_recorded_config(
    dynamo_onnx: Path, fp16_onnx: Path
) -> None:
    """Issue 12 item 1 under ORT: the budget is known without the weights, fp16 halves it."""
    from backends.onnx_metadata import read_metadata
    from backends.onnxruntime_backend import ORT_ARENA_FACTOR
    from dkt.dktnet.config import DKTNetConfig
    from dkt.dktnet.model import estimate_working_bytes

    config = DKTNetConfig.from_dict(read_metadata(dynamo_onnx)["config"])
    eager = estimate_working_bytes(config, 256, 320)
    with registry.open_backend(dynamo_onnx, LoadOptions(device="cpu")) as fp32:
        assert fp32.working_bytes(256, 320) == int(eager * ORT_ARENA_FACTOR)
    with registry.open_backend(fp16_onnx, LoadOptions(device="cpu")) as fp16:
        assert fp16.working_bytes(256, 320) == int(eager * ORT_ARENA_FACTOR / 2)


def test_a_working_size_over_the_budget_is_refused_before_ort_runs(dynamo_onnx: Path) -> None:
    """A size the memory cannot hold fails in one line naming the size, not in ORT's arena."""
    from dkt.inference.harmonizer import WorkingMemoryError

    with registry.open_backend(dynamo_onnx, LoadOptions(device="cpu")) as backend:
        harmonizer = Harmonizer(backend, 0)
        need = backend.working_bytes(64, 96)
        harmonizer.memory_left = lambda: need - 1
        composite = np.full((64, 96, 3), 128, np.uint8)
        mask = np.zeros((64, 96), np.float32)
        mask[16:40, 20:60] = 1.0
        with pytest.raises(WorkingMemoryError, match=r"^working size 96x64 needs about"):
            harmonizer.harmonize(composite, mask)
        harmonizer.memory_left = lambda: need
        assert harmonizer.harmonize(composite, mask).shape == (64, 96, 3)


# --------------------------------------------------------------------------- style strength


def _inputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from dkt.export.parity import soft_mask

    rng = np.random.default_rng(seed)
    return rng.random((1, 3, 48, 56), dtype=np.float32), soft_mask(rng, 1, 48, 56)


def test_an_export_with_the_strength_input_runs_at_any_strength_like_eager(
    dynamo_onnx: Path, tiny_checkpoint: Path
) -> None:
    composite, mask = _inputs()
    with (
        registry.open_backend(dynamo_onnx, LoadOptions(device="cpu")) as exported,
        registry.open_backend(tiny_checkpoint, LoadOptions(device="cpu"), backend="torch") as eager,
    ):
        assert exported.strength_refusal is None
        assert exported.describe()["strength_input"] is True
        for strength in (0.0, 0.5, 1.0):
            got = exported.run(composite, mask, strength)
            assert np.abs(got - eager.run(composite, mask, strength)).max() < 1e-4
        assert np.array_equal(exported.run(composite, mask), exported.run(composite, mask, 1.0))


def test_an_old_export_runs_at_strength_1_and_refuses_others_saying_re_export(
    old_style_onnx: Path, tiny_checkpoint: Path
) -> None:
    composite, mask = _inputs()
    with (
        registry.open_backend(old_style_onnx, LoadOptions(device="cpu")) as old,
        registry.open_backend(tiny_checkpoint, LoadOptions(device="cpu"), backend="torch") as eager,
    ):
        assert old.describe()["strength_input"] is False
        assert np.abs(old.run(composite, mask) - eager.run(composite, mask)).max() < 1e-4
        Harmonizer(old, strength=1.0)  # full strength is what it always ran at
        for refuse in (lambda: old.run(composite, mask, 0.5), lambda: Harmonizer(old, strength=0.5),
                       lambda: Harmonizer(old, strength=0.0)):  # fmt: skip
            with pytest.raises(BackendError) as info:
                refuse()
            message = str(info.value)
            assert "\n" not in message and "old-style.onnx" in message, message
            assert "without a strength input" in message and "re-export" in message, message
