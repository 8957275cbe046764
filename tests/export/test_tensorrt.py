"""Engine building, against a stand-in TensorRT: flags for 10 and 11, profile, cache, files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.engine_sidecar import read_sidecar
from backends.shapes import ShapeProfile
from dkt.errors import BackendError
from dkt.export.tensorrt import build_engine, default_timing_cache, network_flags
from tests.backends.fake_tensorrt import FakeBuilder, FakeParser, make_fake_tensorrt

PROFILE = ShapeProfile((1, 16, 16), (1, 256, 256), (4, 1024, 768))
GPU = ("NVIDIA H100 80GB HBM3", "9.0")
ONNX_META = {
    "precision": "fp16",
    "source_checkpoint": "lite.safetensors",
    "source_sha256": "cd" * 32,
    "working_size": 256,
    "opset": 18,
}


@pytest.fixture
def onnx_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"onnx")
    return path


def build(onnx_file: Path, version: str, **kwargs):
    trt = make_fake_tensorrt(version)
    options = {
        "profile": PROFILE,
        "precision": "fp16",
        "onnx_metadata": ONNX_META,
        "timing_cache": False,
        "trt": trt,
        "identity": GPU,
    } | kwargs
    report = build_engine(onnx_file, onnx_file.with_name("model.engine"), **options)
    return trt, FakeBuilder.last, report


@pytest.mark.parametrize("version", ["10.8.0.43", "11.4.0.106"])
def test_strongly_typed_build_without_precision_flags(onnx_file: Path, version: str) -> None:
    trt, builder, report = build(onnx_file, version)
    assert builder.network.flags == 1 << trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED
    assert builder.config.set_flags == []  # no FP16 flag: 11 has none, 10 must not mix
    assert builder.config.cleared == []  # TF32 is only switched off for fp32
    assert report.metadata.tensorrt_version == version
    assert report.network_flags[0].startswith("STRONGLY_TYPED")


def test_fp32_build_switches_tf32_off(onnx_file: Path) -> None:
    trt, builder, _ = build(
        onnx_file, "10.8.0.43", precision="fp32", onnx_metadata={**ONNX_META, "precision": "fp32"}
    )
    assert builder.config.cleared == [trt.BuilderFlag.TF32]


def test_one_profile_covers_both_inputs_and_workspace(onnx_file: Path) -> None:
    _, builder, _ = build(onnx_file, "11.4.0.106", workspace_mib=512)
    (profile,) = builder.config.profiles
    assert profile.shapes == {
        "composite": ((1, 3, 16, 16), (1, 3, 256, 256), (4, 3, 1024, 768)),
        "mask": ((1, 1, 16, 16), (1, 1, 256, 256), (4, 1, 1024, 768)),
    }
    assert builder.config.pool_limits == {0: 512 << 20}


def test_engine_and_sidecar_are_written(onnx_file: Path) -> None:
    _, _, report = build(onnx_file, "10.8.0.43")
    assert report.engine.read_bytes().startswith(b"fake-engine:")
    meta = read_sidecar(report.engine)
    assert (meta.gpu_name, meta.compute_capability) == GPU
    assert meta.precision == "fp16" and meta.profile == PROFILE and meta.working_size == 256
    assert meta.source_sha256 == "cd" * 32
    assert json.loads(report.sidecar.read_text())["extra"]["workspace_mib"] == 4096


def test_timing_cache_is_read_and_written(onnx_file: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "timing.cache"
    build(onnx_file, "10.8.0.43", timing_cache=cache)
    assert cache.read_bytes() == b"timing:"
    _, builder, report = build(onnx_file, "10.8.0.43", timing_cache=cache)
    assert builder.config.cache.data == b"timing:"  # the previous cache was loaded
    assert report.timing_cache == cache
    assert default_timing_cache("10.8.0.43", "9.0").name == "timing-trt10.8.0-sm90.cache"


def test_precision_must_match_the_graph(onnx_file: Path) -> None:
    with pytest.raises(BackendError, match="export the ONNX with --precision fp32 first"):
        build(onnx_file, "11.4.0.106", precision="fp32")


def test_parser_and_builder_failures_are_one_line(
    onnx_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeParser, "errors", ["Unsupported op X", "second"])
    with pytest.raises(BackendError, match=r"parser refused it: Unsupported op X \(and 1 more\)"):
        build(onnx_file, "10.8.0.43")
    monkeypatch.setattr(FakeParser, "errors", [])
    monkeypatch.setattr(FakeParser, "io", (["x", "mask"], ["harmonized"]))
    with pytest.raises(BackendError, match="is not dkt's"):
        build(onnx_file, "10.8.0.43")
    monkeypatch.setattr(FakeParser, "io", (["composite", "mask"], ["harmonized"]))
    monkeypatch.setattr(FakeBuilder, "fail", True)
    with pytest.raises(BackendError, match="could not build an engine"):
        build(onnx_file, "10.8.0.43")
    assert not onnx_file.with_name("model.engine").exists()


def test_the_strength_input_needs_no_profile_and_is_recorded(
    onnx_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, old = build(onnx_file, "10.8.0.43")
    assert read_sidecar(old.engine).inputs == ("composite", "mask")
    monkeypatch.setattr(FakeParser, "io", (["composite", "mask", "strength"], ["harmonized"]))
    _, builder, report = build(onnx_file, "10.8.0.43")
    (profile,) = builder.config.profiles
    assert set(profile.shapes) == {"composite", "mask"}  # one fixed shape: no range to give
    assert read_sidecar(report.engine).inputs == ("composite", "mask", "strength")


def test_network_flags_without_the_enum_member() -> None:
    trt = make_fake_tensorrt("11.4.0.106")
    trt.NetworkDefinitionCreationFlag = type("F", (), {})()
    assert network_flags(trt)[0] == 0
