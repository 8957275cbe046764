"""The benchmark library: statistics over timed runs, memory readings, model selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dkt.backends.base import Backend, BackendError
from dkt.backends.benchmark import (
    benchmark_backend,
    model_for_backend,
    peak_rss_bytes,
    synthetic_batch,
)


class CountingBackend(Backend):
    name = "counting"

    def __init__(self) -> None:
        self.calls: list[tuple[int, ...]] = []

    @classmethod
    def load(cls, model, **kwargs) -> CountingBackend:  # pragma: no cover - not used
        return cls()

    def run(self, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.calls.append(composite.shape)
        return composite

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "device": "cpu", "precision": "fp32"}


def test_synthetic_batch() -> None:
    composite, mask = synthetic_batch(2, 32)
    assert composite.shape == (2, 3, 32, 32) and mask.shape == (2, 1, 32, 32)
    assert mask.min() == 0 and mask.max() == 1


def test_warmup_runs_and_statistics() -> None:
    backend = CountingBackend()
    result = benchmark_backend(backend, batch=3, size=24, warmup=2, runs=7)
    assert backend.calls == [(3, 3, 24, 24)] * 9
    assert result.min_ms <= result.p10_ms <= result.median_ms <= result.p90_ms <= result.max_ms
    assert result.images_per_s == pytest.approx(3000.0 / result.median_ms)
    assert result.peak_memory_bytes and result.peak_memory_bytes > 0
    assert "RSS" in result.memory_kind
    assert result.to_dict()["backend"] == "counting"
    with pytest.raises(ValueError, match="runs"):
        benchmark_backend(backend, batch=1, size=8, runs=0)


def test_peak_rss_is_plausible() -> None:
    assert 10 << 20 < peak_rss_bytes() < 64 << 30


def test_model_for_backend_picks_by_suffix(tmp_path: Path) -> None:
    models = [tmp_path / "a.safetensors", tmp_path / "b.onnx", tmp_path / "c.engine"]

    def pick(name):
        return model_for_backend(name, models, tmp_path, precision="fp32", batch=1, size=64)

    assert pick("torch") == (models[0], None)
    assert pick("onnxruntime") == (models[1], None)
    assert pick("tensorrt") == (models[2], None)
    with pytest.raises(BackendError, match="unknown backend 'tvm'"):
        pick("tvm")
    with pytest.raises(BackendError, match=r"no model for backend 'torch': pass --model"):
        model_for_backend("torch", [models[1]], tmp_path, precision="fp32", batch=1, size=64)


def test_model_for_backend_exports_from_a_checkpoint(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnx", reason="onnx not installed (dkt[onnx])")
    import dkt.backends.export_onnx as export_module

    seen = {}

    def fake_export(checkpoint, out, **kwargs):
        seen.update(kwargs, checkpoint=checkpoint)
        Path(out).write_bytes(b"onnx")

    monkeypatch.setattr(export_module, "export_onnx", fake_export)
    path, note = model_for_backend(
        "onnxruntime", [tiny_checkpoint], tmp_path, precision="fp16", batch=2, size=96
    )
    assert path == tmp_path / "tiny-fp16.onnx" and path.exists()
    assert seen["precision"] == "fp16" and seen["profile"].opt == (2, 96, 96)
    assert "exported tiny.safetensors" in note
