"""Tests for dkt.dktnet.checkpoint: safetensors with config and provenance, loaded strictly."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from dkt.dktnet import checkpoint as ckpt
from dkt.dktnet.checkpoint import (
    FORMAT_VERSION,
    load_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)
from dkt.dktnet.config import DKTNetConfig
from dkt.dktnet.model import DKTNet
from dkt.errors import CheckpointError
from tests.pickle_trap import assert_carries_code, write_trap
from tests.tiny import tiny_config

PROVENANCE = {"run": "unit-test", "steps": 3, "loss_network": {"kind": "random-vgg19", "seed": 3}}


def _model(seed: int = 0, **overrides: object) -> DKTNet:
    torch.manual_seed(seed)
    return DKTNet(tiny_config(**overrides)).eval()


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(100)
    x = torch.rand(1, 3, 16, 16)
    mask = torch.zeros(1, 1, 16, 16)
    mask[:, :, 4:12, 5:13] = 1.0
    return x, mask


def _read_raw(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}, dict(fh.metadata() or {})  # noqa: SIM118


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, DKTNet]:
    model = _model()
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, model, provenance=PROVENANCE)
    return path, model


# ---------------------------------------------------------------------------- round trip


def test_round_trip_gives_identical_outputs(saved: tuple[Path, DKTNet]) -> None:
    path, model = saved
    loaded = load_checkpoint(path)
    assert not loaded.training
    x, mask = _inputs()
    with torch.no_grad():
        assert torch.equal(loaded(x, mask), model(x, mask))
    for (name, a), (name_b, b) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert name == name_b and torch.equal(a, b)
    # A differently seeded network really differs (the comparison above can fail).
    with torch.no_grad():
        assert not torch.equal(_model(seed=1)(x, mask), model(x, mask))


def test_round_trip_of_a_vgg19_model_keeps_the_frozen_encoder(tmp_path: Path) -> None:
    model = _model(encoder="vgg19")
    path = tmp_path / "vgg.safetensors"
    save_checkpoint(path, model)
    loaded = load_checkpoint(path)
    assert loaded.config == model.config
    assert torch.equal(
        loaded.encoder.convs["conv4_1"].weight, model.encoder.convs["conv4_1"].weight
    )
    assert not any(p.requires_grad for p in loaded.encoder.parameters())


def test_metadata_holds_config_format_and_provenance(saved: tuple[Path, DKTNet]) -> None:
    path, model = saved
    _, metadata = _read_raw(path)
    assert metadata["format"] == "dkt-dktnet"
    assert int(metadata["format_version"]) == FORMAT_VERSION
    assert DKTNetConfig.from_dict(json.loads(metadata["config"])) == model.config
    assert json.loads(metadata["provenance"]) == PROVENANCE
    loaded = load_checkpoint(path)
    assert loaded.config == model.config
    assert loaded.provenance == PROVENANCE


def test_read_checkpoint_info(saved: tuple[Path, DKTNet]) -> None:
    path, model = saved
    info = read_checkpoint_info(path)
    assert info.path == path
    assert info.config == model.config
    assert info.provenance == PROVENANCE
    assert info.format_version == FORMAT_VERSION
    assert info.parameter_count == model.parameter_count()
    assert info.parameter_count == sum(p.numel() for p in model.parameters())
    assert info.tensor_count == len(model.state_dict())
    assert info.file_size == path.stat().st_size == len(path.read_bytes())
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_missing_provenance_is_an_empty_dict(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, _model())
    assert load_checkpoint(path).provenance == {}
    assert read_checkpoint_info(path).provenance == {}


# ---------------------------------------------------------------------------- strict loading


def _rewrite(src: Path, dst: Path, edit) -> Path:
    tensors, metadata = _read_raw(src)
    edit(tensors, metadata)
    save_file(tensors, str(dst), metadata=metadata)
    return dst


def test_missing_tensor_is_named(saved: tuple[Path, DKTNet], tmp_path: Path) -> None:
    path, _ = saved
    name = "bitransform.to_painting.V"
    bad = _rewrite(path, tmp_path / "missing.safetensors", lambda t, m: t.pop(name))
    with pytest.raises(CheckpointError, match="missing") as excinfo:
        load_checkpoint(bad)
    assert name in str(excinfo.value)
    assert excinfo.value.path == bad


def test_extra_tensor_is_named(saved: tuple[Path, DKTNet], tmp_path: Path) -> None:
    path, _ = saved
    bad = _rewrite(
        path,
        tmp_path / "extra.safetensors",
        lambda t, m: t.update({"decoder.surplus.weight": torch.zeros(2)}),
    )
    with pytest.raises(CheckpointError, match="unexpected") as excinfo:
        load_checkpoint(bad)
    assert "decoder.surplus.weight" in str(excinfo.value)


def test_wrong_shape_is_named(saved: tuple[Path, DKTNet], tmp_path: Path) -> None:
    path, _ = saved
    name = "decoder.out.weight"

    def edit(t: dict[str, torch.Tensor], m: dict[str, str]) -> None:
        t[name] = torch.zeros(4, 4, 3, 3)

    bad = _rewrite(path, tmp_path / "shape.safetensors", edit)
    with pytest.raises(CheckpointError, match="shape") as excinfo:
        load_checkpoint(bad)
    assert name in str(excinfo.value)


def test_config_that_disagrees_with_the_tensors_is_an_error(
    saved: tuple[Path, DKTNet], tmp_path: Path
) -> None:
    path, _ = saved

    def edit(t: dict[str, torch.Tensor], m: dict[str, str]) -> None:
        m["config"] = json.dumps(tiny_config(kernel_dim=8).to_dict())

    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(_rewrite(path, tmp_path / "cfg.safetensors", edit))


def test_invalid_config_metadata_is_a_checkpoint_error(
    saved: tuple[Path, DKTNet], tmp_path: Path
) -> None:
    path, _ = saved

    def edit(t: dict[str, torch.Tensor], m: dict[str, str]) -> None:
        m["config"] = json.dumps({"encoder": "lite", "typo_key": 1})

    bad = _rewrite(path, tmp_path / "badcfg.safetensors", edit)
    with pytest.raises(CheckpointError, match="typo_key"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="config"):
        read_checkpoint_info(bad)


def test_newer_format_version_is_refused(saved: tuple[Path, DKTNet], tmp_path: Path) -> None:
    path, _ = saved

    def edit(t: dict[str, torch.Tensor], m: dict[str, str]) -> None:
        m["format_version"] = str(FORMAT_VERSION + 1)

    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(_rewrite(path, tmp_path / "future.safetensors", edit))


def test_non_numeric_format_version_is_a_checkpoint_error(
    saved: tuple[Path, DKTNet], tmp_path: Path
) -> None:
    path, _ = saved

    def edit(t: dict[str, torch.Tensor], m: dict[str, str]) -> None:
        m["format_version"] = "one"

    with pytest.raises(CheckpointError):
        load_checkpoint(_rewrite(path, tmp_path / "v.safetensors", edit))


def test_corrupt_provenance_is_a_checkpoint_error(
    saved: tuple[Path, DKTNet], tmp_path: Path
) -> None:
    path, _ = saved

    def edit(t: dict[str, torch.Tensor], m: dict[str, str]) -> None:
        m["provenance"] = "{not json"

    with pytest.raises(CheckpointError):
        load_checkpoint(_rewrite(path, tmp_path / "p.safetensors", edit))


@pytest.mark.parametrize("provenance", ["[1, 2]", "[" * 100_000 + "]" * 100_000])
def test_provenance_that_is_not_an_object_is_a_checkpoint_error(
    saved: tuple[Path, DKTNet], tmp_path: Path, provenance: str
) -> None:
    """A list reached ``dkt info`` as an AttributeError; deep nesting as a RecursionError."""
    path, _ = saved

    def edit(t: dict[str, torch.Tensor], m: dict[str, str]) -> None:
        m["provenance"] = provenance

    with pytest.raises(CheckpointError, match="corrupt dkt metadata"):
        read_checkpoint_info(_rewrite(path, tmp_path / "p.safetensors", edit))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_tensor_is_refused_naming_it(
    saved: tuple[Path, DKTNet], tmp_path: Path, value: float
) -> None:
    """A diverged run's weights loaded, and its NaN output was blended away unnoticed."""
    path, _ = saved
    name = "bitransform.to_painting.V"

    def edit(t: dict[str, torch.Tensor], m: dict[str, str]) -> None:
        t[name] = t[name].clone()
        t[name].view(-1)[0] = value

    bad = _rewrite(path, tmp_path / "nan.safetensors", edit)
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(bad)
    assert str(excinfo.value) == (
        f"{bad}: not loaded: tensor(s) with NaN or infinite values: {name} "
        "(a diverged training run?)"
    )


def test_non_finite_weights_are_never_written(tmp_path: Path) -> None:
    """Not a NaN model, and not one whose float16 copy overflows to infinity."""
    model = _model()
    with torch.no_grad():
        next(model.decoder.parameters()).view(-1)[0] = 1e6
    half = tmp_path / "half.safetensors"
    with pytest.raises(CheckpointError, match=r"not written: tensor\(s\) with NaN or infinite"):
        save_checkpoint(half, model, dtype=torch.float16)
    save_checkpoint(tmp_path / "full.safetensors", model)  # 1e6 is fine in float32
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(CheckpointError, match="not written"):
        save_checkpoint(tmp_path / "nan.safetensors", model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full.safetensors"]


def test_plain_safetensors_without_dkt_metadata(tmp_path: Path) -> None:
    plain = tmp_path / "plain.safetensors"
    save_file(_model().state_dict(), str(plain))  # right tensors, no metadata
    with pytest.raises(CheckpointError, match="without dkt metadata"):
        load_checkpoint(plain)
    with pytest.raises(CheckpointError, match="without dkt metadata"):
        read_checkpoint_info(plain)
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other), metadata={"format": "someone-else"})
    with pytest.raises(CheckpointError, match="not a DKTNet checkpoint"):
        load_checkpoint(other)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "absent.safetensors")


# ---------------------------------------------------------------------------- never unpickle


def test_pickle_file_is_refused_without_unpickling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "unpickled.marker"
    pth = tmp_path / "model.pth"
    write_trap(pth, {"state_dict": _model().state_dict()}, marker)
    assert_carries_code(pth)  # so the marker's absence below means something

    def forbidden(*args: object, **kwargs: object) -> None:
        pytest.fail("checkpoint loading must never unpickle")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    with pytest.raises(CheckpointError, match="not a safetensors") as excinfo:
        load_checkpoint(pth)
    assert "pickle" in str(excinfo.value)
    with pytest.raises(CheckpointError, match="not a safetensors"):
        read_checkpoint_info(pth)
    assert not marker.exists()


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage" * 50, bytes(range(256)) * 4, (16).to_bytes(8, "little") + b"{not json}......"],
)
def test_garbage_bytes_are_a_checkpoint_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match="not a safetensors"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError):
        read_checkpoint_info(path)


# ---------------------------------------------------------------------------- atomic saves


def test_save_leaves_no_temporary_files(tmp_path: Path) -> None:
    folder = tmp_path / "nested" / "out"
    save_checkpoint(folder / "a.safetensors", _model())
    save_checkpoint(folder / "a.safetensors", _model(seed=1))  # overwrite
    assert sorted(p.name for p in folder.iterdir()) == ["a.safetensors"]
    loaded = load_checkpoint(folder / "a.safetensors")
    assert torch.equal(loaded.decoder.out.weight, _model(seed=1).decoder.out.weight)


def test_failed_save_keeps_the_existing_checkpoint(
    saved: tuple[Path, DKTNet], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = saved
    before = path.read_bytes()

    def partial_then_fail(tensors: object, filename: str, metadata: object = None) -> None:
        with open(filename, "wb") as fh:
            fh.write(b'\x08\x00\x00\x00\x00\x00\x00\x00{"half')
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", partial_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _model(seed=5))
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    load_checkpoint(path)  # still a valid checkpoint


def test_interrupted_save_creates_nothing_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(tensors: object, filename: str, metadata: object = None) -> None:
        Path(filename).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "new.safetensors", _model())
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- fp16 storage


def test_fp16_storage_loads_as_float32_and_halves_the_file(tmp_path: Path) -> None:
    # Wider channels so tensor data, not the JSON header, dominates the file size.
    model = _model(lite_channels=(8, 16, 32, 64), kernel_dim=8, generator_hidden=32)
    full, half = tmp_path / "fp32.safetensors", tmp_path / "fp16.safetensors"
    save_checkpoint(full, model)
    save_checkpoint(half, model, dtype=torch.float16)

    raw, _ = _read_raw(half)
    assert all(t.dtype == torch.float16 for t in raw.values())
    loaded = load_checkpoint(half)
    assert all(t.dtype == torch.float32 for t in loaded.state_dict().values())
    for name, t in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], t.half().float())
    ratio = half.stat().st_size / full.stat().st_size
    assert 0.45 < ratio < 0.6
    x, mask = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, mask), model(x, mask), atol=2e-2, rtol=0)
    assert read_checkpoint_info(half).parameter_count == model.parameter_count()
