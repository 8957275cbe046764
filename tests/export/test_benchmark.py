"""The benchmark library: statistics over timed runs, memory readings, model selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backends.base import Backend, LoadOptions
from dkt.errors import BackendError
from dkt.export.benchmark import (
    benchmark_backend,
    benchmark_backends,
    count_gflop,
    model_config,
    model_for_backend,
    peak_rss_bytes,
    synthetic_batch,
)


class CountingBackend(Backend):
    name = "counting"

    def __init__(self) -> None:
        self.calls: list[tuple[int, ...]] = []

    @classmethod
    def load(cls, model, options=LoadOptions()) -> CountingBackend:  # pragma: no cover - not used
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
    assert backend.calls == [(3, 3, 24, 24)] * (1 + 2 + 7)  # memory run, warm-up, timed
    assert result.min_ms <= result.p10_ms <= result.median_ms <= result.p90_ms <= result.max_ms
    assert result.images_per_s == pytest.approx(3000.0 / result.median_ms)
    assert result.peak_memory_bytes and result.peak_memory_bytes > 0
    assert "RSS" in result.memory_kind
    assert result.to_dict()["backend"] == "counting"
    with pytest.raises(ValueError, match="runs"):
        benchmark_backend(backend, batch=1, size=8, runs=0)


class LoggingBackend(CountingBackend):
    """Appends its name to a shared log on every run, to see the order backends take."""

    def __init__(self, label: str, log: list[str]) -> None:
        super().__init__()
        self.label, self.log = label, log

    def run(self, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.log.append(self.label)
        return composite


def test_backends_take_turns_run_by_run_and_report_gflop() -> None:
    """Interleaved, so load on a shared machine hits every backend alike."""
    log: list[str] = []
    first, second = LoggingBackend("a", log), LoggingBackend("b", log)
    results = benchmark_backends([first, second], batch=2, size=16, warmup=1, runs=3,
                                 gflop_per_image=5.0)  # fmt: skip
    assert log[:2] == ["a", "b"]  # one memory run each, one at a time
    assert log[2:] == ["a", "b"] * (1 + 3)  # then warm-up and timed runs alternate
    for result in results:
        assert result.runs == 3 and result.gflop_per_image == 5.0
        assert result.gflop_per_s == pytest.approx(5.0 * result.images_per_s)


def test_gflop_counts_convolutions_and_grows_with_the_area() -> None:
    from tests.tiny import tiny_config

    config = tiny_config()
    small, large = count_gflop(config, 64), count_gflop(config, 128)
    assert small > 0 and large == pytest.approx(4 * small, rel=0.05)
    # The first 3x3 convolution alone: 2 FLOPs x 3x3 taps x 3 in x 4 out channels per pixel.
    assert small * 1e9 > 2 * 9 * 3 * 4 * 64 * 64
    wide = count_gflop(config, 64, 128)
    assert wide == pytest.approx(2 * small, rel=0.05)


def test_model_config_from_a_checkpoint(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from tests.export_fixtures import TINY_CONFIG

    assert model_config(tiny_checkpoint) == TINY_CONFIG
    assert model_config(tmp_path / "x.engine") is None


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
    import dkt.export.onnx as export_module

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
