"""Tests for the eager PyTorch backend on a tiny checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backends.base import LoadOptions
from backends.registry import open_backend
from backends.torch_backend import TorchBackend, resolve_device
from dkt.dktnet.checkpoint import file_sha256, load_checkpoint
from dkt.errors import BackendError, CheckpointError

pytestmark = pytest.mark.usefixtures("one_thread")


def _inputs(batch: int = 1, h: int = 36, w: int = 52, seed: int = 0):
    """Float NCHW composites in [0, 1] and rectangle masks that differ per batch item."""
    rng = np.random.default_rng(seed)
    composite = rng.uniform(0.0, 1.0, (batch, 3, h, w)).astype(np.float32)
    mask = np.zeros((batch, 1, h, w), np.float32)
    for i in range(batch):
        mask[i, 0, 4 + 7 * i : 20 + 5 * i, 6 + 11 * i : 30 + 9 * i] = 1.0
    return composite, mask


@pytest.fixture
def backend(tiny_model: Path):
    engine = TorchBackend.load(tiny_model, LoadOptions(device="cpu"))
    yield engine
    engine.close()


def test_load_describe_and_working_size(backend: TorchBackend, tiny_model: Path) -> None:
    assert backend.working_size == 64
    described = backend.describe()
    assert described["backend"] == "torch"
    assert described["device"] == "cpu"
    assert described["precision"] == "fp32"
    assert described["model"] == str(tiny_model)
    assert described["model_sha256"] == file_sha256(tiny_model)
    assert described["parameters"] == load_checkpoint(tiny_model).parameter_count()
    assert described["torch"] == torch.__version__


def test_open_backend_picks_torch_for_safetensors(tiny_model: Path) -> None:
    with open_backend(tiny_model, LoadOptions(device="cpu")) as engine:
        assert isinstance(engine, TorchBackend)
        assert engine.describe()["model"] == str(tiny_model)


def test_run_equals_the_checkpoint_models_forward(backend: TorchBackend, tiny_model: Path) -> None:
    composite, mask = _inputs()
    out = backend.run(composite, mask)
    assert out.dtype == np.float32
    assert out.shape == composite.shape
    with torch.no_grad():
        expected = load_checkpoint(tiny_model)(torch.from_numpy(composite), torch.from_numpy(mask))
    np.testing.assert_allclose(out, expected.numpy(), rtol=0, atol=1e-6)
    inside = np.broadcast_to(mask > 0, out.shape)
    assert not np.allclose(out[inside], composite[inside], atol=1e-3), "object left as it was"


def test_background_is_exact_and_output_in_range(backend: TorchBackend) -> None:
    composite, mask = _inputs(h=40, w=40, seed=3)
    mask[0, 0, 10:12, 10:30] = 0.4  # a soft edge as well
    out = backend.run(composite, mask)
    outside = np.broadcast_to(mask == 0, out.shape)
    np.testing.assert_array_equal(out[outside], composite[outside])
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_batch_of_two_with_different_masks_matches_single_runs(backend: TorchBackend) -> None:
    composite, mask = _inputs(batch=2, seed=5)
    assert not np.array_equal(mask[0], mask[1])
    batched = backend.run(composite, mask)
    for i in range(2):
        single = backend.run(composite[i : i + 1], mask[i : i + 1])[0]
        np.testing.assert_allclose(batched[i], single, rtol=0, atol=1e-5)
        outside = np.broadcast_to(mask[i] == 0, single.shape)
        np.testing.assert_array_equal(batched[i][outside], composite[i][outside])


def test_any_strength_runs_and_full_strength_is_the_default(backend: TorchBackend) -> None:
    from dkt.errors import StrengthError

    composite, mask = _inputs(batch=2)
    assert backend.strength_refusal is None
    backend.check_strength(0.25)  # no refusal
    default = backend.run(composite, mask)
    assert np.array_equal(backend.run(composite, mask, 1.0), default)
    assert np.array_equal(backend.run(composite, mask, 0.0), composite)  # hard masks: exact
    half = backend.run(composite, mask, 0.5)
    inside = np.broadcast_to(mask > 0, composite.shape)
    assert np.array_equal(half[~inside], composite[~inside])
    moved = [np.abs(out - composite)[inside].mean() for out in (half, default)]
    assert 0 < moved[0] < moved[1]
    with pytest.raises(StrengthError):
        backend.run(composite, mask, 1.5)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_on_cpu_is_refused_clearly(tiny_model: Path, precision: str) -> None:
    with pytest.raises(BackendError) as info:
        TorchBackend.load(tiny_model, LoadOptions(device="cpu", precision=precision))
    message = str(info.value)
    assert precision in message
    assert "GPU" in message and "fp32" in message


def test_unknown_precision_lists_the_choices(tiny_model: Path) -> None:
    with pytest.raises(BackendError, match=r"unknown precision 'fp8'.*fp32, fp16, bf16"):
        TorchBackend.load(tiny_model, LoadOptions(device="cpu", precision="fp8"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_a_gpu_is_a_backend_error(tiny_model: Path, device: str) -> None:
    with pytest.raises(BackendError, match=rf"device '{device}'.*no CUDA GPU"):
        TorchBackend.load(tiny_model, LoadOptions(device=device))


def test_invalid_device_name(tiny_model: Path) -> None:
    with pytest.raises(BackendError, match="invalid device 'gpu0'"):
        TorchBackend.load(tiny_model, LoadOptions(device="gpu0"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_auto_device_without_gpu_runs_on_cpu(tiny_model: Path) -> None:
    with TorchBackend.load(tiny_model, LoadOptions(device="auto")) as engine:
        assert engine.describe()["device"] == "cpu"


def test_a_file_that_is_not_a_checkpoint_is_refused_naming_it(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"definitely not safetensors")
    with pytest.raises(CheckpointError, match=r"bogus\.safetensors: not a safetensors checkpoint"):
        TorchBackend.load(bogus, LoadOptions(device="cpu"))


def test_close_releases_the_model(tiny_model: Path) -> None:
    with TorchBackend.load(tiny_model, LoadOptions(device="cpu")) as engine:
        composite, mask = _inputs()
        engine.run(composite, mask)
    assert engine.model is None
    with pytest.raises(Exception):  # noqa: B017 - "unusable afterwards", any error
        engine.run(composite, mask)


def test_cuda_index_beyond_the_gpus_present_is_a_backend_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``cuda:N`` is advertised; an N the machine lacks must not end in a CUDA traceback."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    assert resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(BackendError, match=r"device 'cuda:1'.*sees 1 CUDA GPU"):
        resolve_device("cuda:1")
