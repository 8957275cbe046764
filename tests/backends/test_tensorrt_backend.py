"""The TensorRT backend: with a stand-in TensorRT everywhere, with the real one where it exists.

The stand-in tests cover what does not need a GPU: binding by tensor name, re-binding on a
new shape, refusing a shape outside the profile, refusing an engine from another TensorRT
release or GPU, the one-line "missing extra" message. The real-TensorRT tests build a tiny
engine and compare it with the eager model; they skip, saying why, without TensorRT or CUDA.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backends import registry
from backends import tensorrt_backend as trt_backend
from backends.base import LoadOptions
from backends.engine_sidecar import EngineMetadata, write_sidecar
from backends.shapes import ShapeProfile
from backends.tensorrt_backend import TensorRTBackend, cuda_index, import_tensorrt
from dkt.errors import BackendError, EngineMismatchError, ShapeError
from tests.backends.fake_tensorrt import FakeEngine, make_fake_tensorrt

PROFILE = ShapeProfile((1, 16, 16), (1, 64, 64), (2, 128, 128))
META = EngineMetadata(
    dkt_version="0.1.0",
    source_checkpoint="tiny.safetensors",
    source_sha256="ef" * 32,
    tensorrt_version="10.8.0.43",
    gpu_name="NVIDIA H100 80GB HBM3",
    compute_capability="9.0",
    precision="fp32",
    profile=PROFILE,
    working_size=64,
)


def engine_profile(profile: ShapeProfile) -> dict[str, tuple]:
    return {name: profile.tensor_shapes(name) for name in ("composite", "mask")}


def fake_backend(tmp_path: Path, **engine_kwargs) -> TensorRTBackend:
    trt = make_fake_tensorrt()
    engine = FakeEngine(trt, engine_profile(PROFILE), **engine_kwargs)
    context = engine.create_execution_context()
    (tmp_path / "m.engine").write_bytes(b"fake engine")
    backend = TensorRTBackend(
        trt, engine, context, META, tmp_path / "m.engine", torch.device("cpu"), stream=None
    )
    context.buffers = backend.buffers
    return backend


def batch(b: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    mask = np.zeros((b, 1, h, w), np.float32)
    mask[..., h // 4 : h // 2, w // 4 : w // 2] = 1.0
    return rng.random((b, 3, h, w), dtype=np.float32), mask


def test_binds_by_name_and_rebinds_on_a_new_shape(tmp_path: Path) -> None:
    backend = fake_backend(tmp_path)
    context = backend.context
    composite, mask = batch(2, 40, 56)
    out = backend.run(composite, mask)
    np.testing.assert_allclose(out, composite * (1 - mask) + 0.25 * mask, rtol=0, atol=1e-7)
    assert context.calls == [
        "shape composite (2, 3, 40, 56)",
        "shape mask (2, 1, 40, 56)",
        "execute",
    ]
    assert {n: tuple(t.shape) for n, t in backend.buffers.items()} == {
        "composite": (2, 3, 40, 56),
        "mask": (2, 1, 40, 56),
        "harmonized": (2, 3, 40, 56),
    }
    backend.run(composite, mask)  # same shape: no re-binding
    assert backend.rebinds == 1 and context.calls[-1] == "execute"
    backend.run(*batch(1, 128, 17))  # new shape: new input shapes and fresh buffers
    assert backend.rebinds == 2
    assert context.calls[-3:] == [
        "shape composite (1, 3, 128, 17)",
        "shape mask (1, 1, 128, 17)",
        "execute",
    ]
    assert backend.describe()["bound_shape"] == [1, 128, 17]


def test_shape_outside_the_profile_is_refused_before_tensorrt(tmp_path: Path) -> None:
    backend = fake_backend(tmp_path)
    with pytest.raises(ShapeError) as info:
        backend.run(*batch(3, 64, 64))
    assert "input 3x3x64x64 is outside the model's shape profile" in str(info.value)
    assert "min 1x3x16x16, max 2x3x128x128" in str(info.value)
    assert "--max-shape" in str(info.value) and "--size" in str(info.value)
    assert backend.context.calls == []
    with pytest.raises(ShapeError, match="outside"):
        backend.run(*batch(1, 129, 64))


def test_wrong_io_names_or_profile_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="is not dkt's"):
        fake_backend(tmp_path, names=("input", "mask", "harmonized"))
    trt = make_fake_tensorrt()
    other = FakeEngine(trt, engine_profile(ShapeProfile((1, 16, 16), (1, 64, 64), (4, 256, 256))))
    with pytest.raises(BackendError, match="does not match its metadata file"):
        TensorRTBackend(
            trt,
            other,
            other.create_execution_context(),
            META,
            tmp_path / "m.engine",
            torch.device("cpu"),
        )


def test_device_must_be_a_gpu() -> None:
    assert cuda_index("auto") == 0 and cuda_index("cuda:3") == 3
    with pytest.raises(BackendError, match=r"run on NVIDIA GPUs only.*onnxruntime"):
        cuda_index("cpu")
    with pytest.raises(BackendError, match="invalid device 'mps'"):
        cuda_index("mps")


def test_missing_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendError) as info:
        import_tensorrt()
    assert str(info.value).endswith("install it with: pip install 'dkt[trt]'")
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"x")
    write_sidecar(engine, META)
    with pytest.raises(BackendError, match=r"pip install 'dkt\[trt\]'"):
        registry.open_backend(engine, LoadOptions(device="cuda"))


def test_old_tensorrt_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt("8.6.1"))
    with pytest.raises(BackendError, match=r"TensorRT 8\.6\.1 is too old"):
        import_tensorrt()


@pytest.mark.parametrize(
    ("version", "gpu", "message"),
    [
        ("11.4.0.106", ("NVIDIA H100 80GB HBM3", "9.0"), "built with TensorRT 10.8.0.43"),
        ("10.8.0.43", ("NVIDIA L4", "8.9"), "built for NVIDIA H100 80GB HBM3"),
    ],
)
def test_load_refuses_another_release_or_gpu(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, version: str, gpu, message: str
) -> None:
    monkeypatch.setattr(trt_backend, "import_tensorrt", lambda: make_fake_tensorrt(version))
    monkeypatch.setattr(trt_backend, "gpu_identity", lambda index: gpu)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"x")
    write_sidecar(engine, META)
    with pytest.raises(EngineMismatchError) as info:
        TensorRTBackend.load(engine, LoadOptions(device="cuda"))
    assert message in str(info.value) and "re-export it on this machine" in str(info.value)


def test_load_refuses_a_precision_the_engine_was_not_built_for(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"x")
    write_sidecar(engine, META)
    with pytest.raises(BackendError, match="built for fp32"):
        TensorRTBackend.load(engine, LoadOptions(device="cuda", precision="fp16"))


def test_an_engine_with_the_strength_input_binds_it_and_runs_at_any_strength(
    tmp_path: Path,
) -> None:
    backend = fake_backend(tmp_path, names=("composite", "mask", "strength", "harmonized"))
    assert backend.strength_refusal is None and backend.describe()["strength_input"] is True
    composite, mask = batch(2, 40, 56)
    out = backend.run(composite, mask, 0.5)
    np.testing.assert_allclose(out, composite + 0.5 * mask * (0.25 - composite), atol=1e-6)
    assert tuple(backend.buffers["strength"].shape) == (1,)
    assert backend.context.calls == [  # the strength's shape is fixed: never set
        "shape composite (2, 3, 40, 56)",
        "shape mask (2, 1, 40, 56)",
        "execute",
    ]
    full = backend.run(composite, mask)  # the default is full strength, not the last one
    np.testing.assert_allclose(full, composite * (1 - mask) + 0.25 * mask, atol=1e-6)
    assert backend.rebinds == 1


def test_an_engine_without_the_strength_input_refuses_other_strengths(tmp_path: Path) -> None:
    from dkt.inference.harmonizer import Harmonizer

    backend = fake_backend(tmp_path)
    assert backend.describe()["strength_input"] is False
    for refuse in (lambda: backend.run(*batch(1, 32, 32), 0.5),
                   lambda: Harmonizer(backend, strength=0.3)):  # fmt: skip
        with pytest.raises(BackendError) as info:
            refuse()
        message = str(info.value)
        assert "\n" not in message and "m.engine" in message, message
        assert "without a strength input" in message and "re-export" in message, message
    assert backend.context.calls == []  # refused before TensorRT saw anything
    composite, mask = batch(1, 32, 32)
    np.testing.assert_allclose(
        backend.run(composite, mask, 1.0), composite * (1 - mask) + 0.25 * mask, atol=1e-6
    )


# ---------------------------------------------------------------- real TensorRT, if present


@pytest.fixture(scope="module")
def real_engine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (pip install 'dkt[trt]')")
    if not torch.cuda.is_available():
        pytest.skip("TensorRT is installed but torch sees no CUDA GPU")
    from dkt.export.tensorrt import export_engine
    from tests.export_fixtures import make_checkpoint

    root = tmp_path_factory.mktemp("trt")
    checkpoint = make_checkpoint(root / "tiny.safetensors")
    engine = root / "tiny.engine"
    export_engine(checkpoint, engine, profile=PROFILE, timing_cache=root / "timing.cache")
    return engine


def test_real_engine_matches_eager_and_rebinds(real_engine: Path) -> None:
    from dkt.export.parity import verify_export

    report = verify_export(
        real_engine.with_name("tiny.safetensors"),
        real_engine,
        precision="fp32",
        profile=PROFILE,
        device="cuda",
        working_size=64,
    )
    assert report.passed, report.to_dict()
    assert report.cases[-1].name.endswith("at strength 0.5")  # the strength input, checked
    with registry.open_backend(real_engine, LoadOptions(device="cuda")) as backend:
        assert isinstance(backend, TensorRTBackend)
        backend.run(*batch(1, 64, 64))
        backend.run(*batch(2, 61, 77))
        assert backend.rebinds >= 2
        with pytest.raises(ShapeError):
            backend.run(*batch(1, 200, 64))
