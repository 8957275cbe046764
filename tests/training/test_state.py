"""Tests for training.state: exact resume, RNG round trip, strict loading, atomic writes."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional as F
from torch.optim import SGD, Adam, AdamW
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    LambdaLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    SequentialLR,
)

import training.state as state_module
from dkt.errors import CheckpointError
from training.state import (
    LoadedState,
    capture_rng,
    load_training_state,
    read_state_meta,
    restore_rng,
    save_training_state,
)

# ---------------------------------------------------------------------------- helpers


def _net(hidden: int = 8) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(4, hidden), nn.BatchNorm1d(hidden), nn.Tanh(), nn.Linear(hidden, 2)
    )


def _build(
    seed: int, kind: str, model: nn.Module | None = None
) -> tuple[nn.Module, torch.optim.Optimizer, LRScheduler]:
    """Model, optimizer (two param groups) and a warm-up-then-decay schedule."""
    torch.manual_seed(seed)
    model = model if model is not None else _net()
    groups = [
        {"params": list(model[0].parameters())},
        {"params": [*model[1].parameters(), *model[3].parameters()], "lr": 5e-3},
    ]
    if kind == "adam":
        opt: torch.optim.Optimizer = Adam(groups, lr=1e-2, betas=(0.8, 0.95), weight_decay=1e-2)
        warmup: LRScheduler = LambdaLR(opt, lambda s: (s + 1) / 3)
        sched: LRScheduler = SequentialLR(opt, [warmup, CosineAnnealingLR(opt, 10)], [3])
    elif kind == "adamw":
        opt = AdamW(groups, lr=1e-2, betas=(0.85, 0.99), weight_decay=0.1, amsgrad=True)
        warmup = LinearLR(opt, start_factor=0.1, total_iters=3)
        sched = SequentialLR(opt, [warmup, CosineAnnealingLR(opt, 10, eta_min=1e-4)], [3])
    else:
        opt = SGD(groups, lr=0.05, momentum=0.9, nesterov=True)
        sched = MultiStepLR(opt, milestones=[2, 5], gamma=0.5)
    return model, opt, sched


def _train(model: nn.Module, opt: torch.optim.Optimizer, sched: LRScheduler, steps: int) -> None:
    """Steps whose data come from all three global generators, so each must be restored."""
    model.train()
    for _ in range(steps):
        x = torch.randn(6, 4) + float(np.random.rand()) + random.random()
        y = torch.randn(6, 2)
        loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def _save(path: Path, model: nn.Module, opt=None, sched=None, **kwargs) -> None:
    save_training_state(
        path,
        step=kwargs.pop("step", 0),
        modules={"model": model},
        optimizers={"opt": opt} if opt is not None else {},
        schedulers={"lr": sched} if sched is not None else {},
        **kwargs,
    )


def _load(path: Path, model: nn.Module, opt=None, sched=None) -> LoadedState:
    return load_training_state(
        path,
        modules={"model": model},
        optimizers={"opt": opt} if opt is not None else {},
        schedulers={"lr": sched} if sched is not None else {},
    )


def _assert_one_line_error(err: pytest.ExceptionInfo, path: Path, *needles: str) -> None:
    message = str(err.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    for needle in needles:
        assert needle in message


def _clone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------------------- exact resume


@pytest.mark.parametrize("kind", ["adam", "adamw", "sgd"])
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path: Path, kind: str) -> None:
    random.seed(0)
    np.random.seed(0)
    model, opt, sched = _build(1, kind)
    _train(model, opt, sched, 4)
    path = tmp_path / "state.safetensors"
    _save(path, model, opt, sched, step=4, meta={"epoch": 0, "batch": 4})
    _train(model, opt, sched, 5)

    # A fresh "process": other initial weights, other random streams.
    random.seed(123)
    np.random.seed(123)
    model2, opt2, sched2 = _build(2, kind)
    loaded = _load(path, model2, opt2, sched2)
    restore_rng(loaded.rng)
    _train(model2, opt2, sched2, 5)

    assert loaded.step == 4
    assert loaded.meta == {"epoch": 0, "batch": 4}
    for key, value in model.state_dict().items():
        assert torch.equal(value, model2.state_dict()[key]), key
    assert sched2.state_dict() == sched.state_dict()
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]


def test_optimizer_hyperparameters_keep_their_types(tmp_path: Path) -> None:
    model, opt, sched = _build(0, "adam")
    _train(model, opt, sched, 2)
    path = tmp_path / "state.safetensors"
    _save(path, model, opt, sched)
    model2, opt2, sched2 = _build(1, "adam")
    _load(path, model2, opt2, sched2)
    saved, restored = opt.state_dict(), opt2.state_dict()
    assert restored["param_groups"] == saved["param_groups"]
    assert isinstance(opt2.param_groups[0]["betas"], tuple)
    assert restored["state"].keys() == saved["state"].keys()
    for index, entries in saved["state"].items():
        for key, value in entries.items():
            assert torch.equal(restored["state"][index][key], value)
            assert restored["state"][index][key].dtype == value.dtype


# ---------------------------------------------------------------------------- random state


def test_capture_and_restore_rng_replays_every_generator() -> None:
    state = capture_rng()
    first = (random.random(), np.random.rand(3).tolist(), torch.rand(3))
    restore_rng(state)
    second = (random.random(), np.random.rand(3).tolist(), torch.rand(3))
    assert first[:2] == second[:2]
    assert torch.equal(first[2], second[2])


def test_rng_round_trips_through_the_file(tmp_path: Path) -> None:
    model = _net()
    path = tmp_path / "state.safetensors"
    np.random.randn()  # leaves a cached Gaussian in NumPy's state, which must survive too
    random.gauss(0, 1)
    _save(path, model)
    first = (random.gauss(0, 1), np.random.randn(), torch.randn(4))
    loaded = _load(path, _net())
    assert isinstance(loaded.rng["python"], list)
    assert loaded.rng["torch"].dtype == torch.uint8
    restore_rng(loaded.rng)
    second = (random.gauss(0, 1), np.random.randn(), torch.randn(4))
    assert first[:2] == second[:2]
    assert torch.equal(first[2], second[2])


def test_restore_rng_refuses_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="mps"):
        restore_rng({"mps": torch.zeros(1, dtype=torch.uint8)})


# ---------------------------------------------------------------------------- metadata


def test_meta_and_extra_tensors_round_trip_with_their_types(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(7)
    meta = {
        "epoch": 2,
        "position": (3, 7),
        "by_index": {1: "a", 2: (4.5, None)},
        "milestones": Counter({2: 1, 5: 2}),
        "best": float("inf"),
        "tricky": {"__tuple__": [1]},
        "numpy_int": np.int64(5),
        "config": {"lr": 1e-3, "name": "run", "flags": [True, False]},
    }
    path = tmp_path / "state.safetensors"
    _save(path, _net(), meta=meta, tensors={"sampler": generator.get_state()}, step=17)
    loaded = _load(path, _net())
    assert loaded.step == 17
    assert loaded.meta == {**meta, "numpy_int": 5}
    assert isinstance(loaded.meta["position"], tuple)
    assert isinstance(loaded.meta["milestones"], Counter)
    assert list(loaded.meta["by_index"]) == [1, 2]
    assert torch.equal(loaded.tensors["sampler"], generator.get_state())
    assert read_state_meta(path) == loaded.meta


def test_values_json_cannot_hold_are_refused_naming_where(tmp_path: Path) -> None:
    class Ramp:
        """A callable scheduler lambda whose attributes LambdaLR puts in its state."""

        def __init__(self) -> None:
            self.shape = lambda s: 1.0

        def __call__(self, step: int) -> float:
            return self.shape(step)

    model = _net()
    opt = SGD(model.parameters(), lr=0.1)
    path = tmp_path / "state.safetensors"
    with pytest.raises(TypeError, match=r"sched\.lr\.lr_lambdas\.0\.shape"):
        _save(path, model, opt, LambdaLR(opt, Ramp()))
    with pytest.raises(TypeError, match=r"meta\.hook"):
        _save(path, model, meta={"hook": print})
    assert list(tmp_path.iterdir()) == []


def test_tied_weights_are_stored(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    model[1].weight = model[0].weight
    path = tmp_path / "state.safetensors"
    _save(path, model)
    fresh = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    fresh[1].weight = fresh[0].weight
    _load(path, fresh)
    assert torch.equal(fresh[0].weight, model[0].weight)


# ---------------------------------------------------------------------------- strict loading


@pytest.mark.parametrize(
    ("run_model", "needles"),
    [
        (
            lambda: nn.Sequential(*_net(), nn.Linear(2, 2)),
            ["missing tensor", "module.model.4.weight"],
        ),
        (lambda: _net()[:2], ["unexpected tensor", "module.model.3.weight"]),
        (lambda: _net(hidden=9), ["module.model.0.weight", "[8, 4]", "[9, 4]"]),
        (lambda: _net().double(), ["module.model.0.weight", "dtype"]),
    ],
    ids=["missing", "unexpected", "shape", "dtype"],
)
def test_a_model_that_does_not_fit_is_refused_naming_file_and_key(
    tmp_path: Path, run_model, needles: list[str]
) -> None:
    path = tmp_path / "state.safetensors"
    _save(path, _net())
    with pytest.raises(CheckpointError) as err:
        _load(path, run_model())
    _assert_one_line_error(err, path, *needles)


def test_missing_and_unexpected_objects_are_named(tmp_path: Path) -> None:
    model, opt, sched = _build(0, "adam")
    path = tmp_path / "state.safetensors"
    _save(path, model, opt, sched)
    with pytest.raises(CheckpointError) as err:
        _load(path, model, opt)
    _assert_one_line_error(err, path, "scheduler", "lr", "the run lacks")
    with pytest.raises(CheckpointError) as err:
        load_training_state(
            path,
            modules={"model": model, "ema": _net()},
            optimizers={"opt": opt},
            schedulers={"lr": sched},
        )
    _assert_one_line_error(err, path, "no state for module", "ema")


def test_a_different_optimizer_or_parameter_order_is_refused(tmp_path: Path) -> None:
    model, opt, sched = _build(0, "adam")
    _train(model, opt, sched, 1)
    path = tmp_path / "state.safetensors"
    _save(path, model, opt)
    before = _clone_state(model)

    fresh = _net()
    with pytest.raises(CheckpointError) as err:
        _load(path, fresh, SGD(fresh.parameters(), lr=0.1))
    _assert_one_line_error(err, path, "optimizer 'opt' is Adam in the file, SGD in the run")

    fresh = _net()
    params = list(fresh.parameters())
    reordered = Adam([{"params": params[:3]}, {"params": params[3:]}], lr=1e-2)
    with pytest.raises(CheckpointError) as err:
        _load(path, fresh, reordered)
    _assert_one_line_error(err, path, "parameter groups of sizes")

    fresh = _net()
    params = list(fresh.parameters())
    swapped = Adam([{"params": params[2:4]}, {"params": params[:2] + params[4:]}], lr=1e-2)
    with pytest.raises(CheckpointError) as err:
        _load(path, fresh, swapped)
    _assert_one_line_error(err, path, "parameter 0 is module.model.0.weight in the file")

    # Nothing was changed by the refused loads.
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


def test_a_different_scheduler_is_refused_before_anything_changes(tmp_path: Path) -> None:
    model, opt, sched = _build(0, "adam")
    path = tmp_path / "state.safetensors"
    _save(path, model, opt, sched)
    fresh, fresh_opt, _ = _build(1, "adam")
    before = _clone_state(fresh)
    with pytest.raises(CheckpointError) as err:
        _load(path, fresh, fresh_opt, MultiStepLR(fresh_opt, [3]))
    _assert_one_line_error(err, path, "scheduler 'lr' is SequentialLR in the file, MultiStepLR")
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, before[key])
    assert fresh_opt.state == {}


# ---------------------------------------------------------------------------- not our format


def _tripwire() -> None:  # pragma: no cover - reached only if a pickle were ever loaded
    raise AssertionError("a pickle was unpickled")


#: A protocol-0 pickle that, if ever unpickled, calls :func:`_tripwire`.
_PICKLE = b"ctests.training.test_state\n_tripwire\n)R."


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("state.pt", _PICKLE, "pickle-based"),
        ("state.safetensors", _PICKLE, "not a safetensors training state"),
        ("state.safetensors", b"\x00" * 40, "not a safetensors training state"),
    ],
)
def test_foreign_files_are_refused_unread(
    tmp_path: Path, name: str, content: bytes, needle: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        _load(path, _net())
    _assert_one_line_error(err, path, needle)


@pytest.mark.parametrize(
    ("metadata", "needle"),
    [
        (None, "without dkt training-state metadata"),
        ({"format": "dkt-dktnet", "format_version": "1"}, "model checkpoint, not a training state"),
        ({"format": "dkt-training-state", "format_version": "99"}, "newer than this dkt reads"),
        ({"format": "dkt-training-state", "format_version": "1"}, "corrupt training-state"),
    ],
)
def test_safetensors_files_that_are_not_training_states_are_refused(
    tmp_path: Path, metadata: dict[str, str] | None, needle: str
) -> None:
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata=metadata)
    with pytest.raises(CheckpointError) as err:
        _load(path, _net())
    _assert_one_line_error(err, path, needle)


def test_missing_and_truncated_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.safetensors"
    with pytest.raises(CheckpointError) as err:
        _load(path, _net())
    _assert_one_line_error(err, path, "no such file")
    _save(path, _net())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError) as err:
        _load(path, _net())
    _assert_one_line_error(err, path, "not a safetensors")


# ---------------------------------------------------------------------------- atomic writes


def test_a_failed_save_leaves_the_previous_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.safetensors"
    _save(path, _net(), step=1)
    good = path.read_bytes()

    def half_written(tensors, filename, metadata=None) -> None:
        Path(filename).write_bytes(b"partial header")
        raise OSError("disk full")

    monkeypatch.setattr(state_module, "save_file", half_written)
    with pytest.raises(OSError, match="disk full"):
        _save(path, _net(), step=2)
    with pytest.raises(OSError, match="disk full"):
        _save(tmp_path / "new.safetensors", _net(), step=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.safetensors"]
    assert path.read_bytes() == good
    monkeypatch.undo()
    assert _load(path, _net()).step == 1


# ---------------------------------------------------------------------------- devices


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(("save_on", "load_on"), [("cuda", "cpu"), ("cpu", "cuda")])
def test_state_moves_between_devices(tmp_path: Path, save_on: str, load_on: str) -> None:
    model, opt, sched = _build(0, "adam", _net().to(save_on))
    model.train()
    x = torch.randn(6, 4, device=save_on)
    F.mse_loss(model(x), torch.zeros(6, 2, device=save_on)).backward()
    opt.step()
    sched.step()
    path = tmp_path / "state.safetensors"
    _save(path, model, opt, sched)
    model2, opt2, sched2 = _build(1, "adam", _net().to(load_on))
    _load(path, model2, opt2, sched2)
    for key, value in model.state_dict().items():
        assert torch.equal(model2.state_dict()[key].cpu(), value.cpu())
    state = opt2.state[model2[0].weight]
    assert state["exp_avg"].device.type == load_on
    assert state["step"].device.type == "cpu"
    assert torch.equal(state["exp_avg"].cpu(), opt.state[model[0].weight]["exp_avg"].cpu())
