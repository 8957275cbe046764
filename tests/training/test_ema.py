"""Tests for training.ema: decay arithmetic, swapping weights in and out, state round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from dkt.errors import CheckpointError
from training.ema import EMA
from training.state import load_training_state, save_training_state


def _scalar_model(value: float = 0.0) -> nn.Linear:
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(value)
    return model


def _set(model: nn.Linear, value: float) -> None:
    with torch.no_grad():
        model.weight.fill_(value)


def _net() -> nn.Sequential:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def test_update_without_warmup_uses_the_fixed_decay() -> None:
    model = _scalar_model(0.0)
    ema = EMA(model, decay=0.5, warmup=False)
    for live, expected in [(4.0, 2.0), (4.0, 3.0), (0.0, 1.5)]:
        _set(model, live)
        ema.update(model)
        assert ema.shadow["weight"].item() == expected
    assert ema.num_updates == 3


def test_warmup_ramps_the_decay_up_to_its_ceiling() -> None:
    model = _scalar_model(0.0)
    ema = EMA(model, decay=0.999)
    assert ema.current_decay() == pytest.approx(0.1)
    _set(model, 1.0)
    ema.update(model)  # decay 0.1: the shadow moves 90% of the way
    assert ema.shadow["weight"].item() == pytest.approx(0.9)
    assert ema.current_decay() == pytest.approx(2 / 11)
    ema.update(model)
    assert ema.shadow["weight"].item() == pytest.approx(0.9 + 0.1 * 9 / 11)
    ema.num_updates = 8989
    assert ema.current_decay() < 0.999
    ema.num_updates = 8990  # (10 * 0.999 - 1) / (1 - 0.999)
    assert ema.current_decay() == 0.999
    ema.num_updates = 10**6
    assert ema.current_decay() == 0.999


def test_floating_buffers_are_averaged_and_counters_left_alone() -> None:
    model = _net()
    ema = EMA(model, decay=0.5, warmup=False)
    assert "1.running_mean" in ema.shadow
    assert "1.num_batches_tracked" not in ema.shadow
    model.train()
    model(torch.randn(8, 3))
    ema.update(model)
    expected = 0.5 * torch.zeros(4) + 0.5 * model[1].running_mean
    assert torch.allclose(ema.shadow["1.running_mean"], expected)


def test_copy_to_puts_the_average_into_the_model() -> None:
    model = _net()
    ema = EMA(model, decay=0.5, warmup=False)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)
    target = _net()
    ema.copy_to(target)
    for name, tensor in ema.shadow.items():
        assert torch.equal(target.state_dict()[name], tensor)


def test_swapped_into_restores_the_live_weights_even_on_error() -> None:
    model = _scalar_model(0.0)
    ema = EMA(model, decay=0.5, warmup=False)
    _set(model, 4.0)
    ema.update(model)  # shadow 2, live 4
    weight = model.weight
    with ema.swapped_into(model) as swapped:
        assert swapped is model
        assert model.weight.item() == 2.0
    assert model.weight.item() == 4.0
    with pytest.raises(RuntimeError, match="boom"), ema.swapped_into(model):
        assert model.weight.item() == 2.0
        raise RuntimeError("boom")
    assert model.weight.item() == 4.0
    assert model.weight is weight
    assert ema.shadow["weight"].item() == 2.0


def test_a_model_of_another_shape_is_refused() -> None:
    ema = EMA(_net())
    with pytest.raises(ValueError, match="does not match"):
        ema.update(nn.Sequential(nn.Linear(3, 4)))
    with pytest.raises(ValueError, match=r"0\.weight"):
        ema.copy_to(nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(4), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="decay"):
        EMA(_net(), decay=1.5)


def test_state_dict_round_trip() -> None:
    model = _net()
    ema = EMA(model)
    with torch.no_grad():
        model[0].weight.mul_(3.0)
    ema.update(model)
    ema.update(model)
    restored = EMA(_net())
    restored.load_state_dict(ema.state_dict())
    assert restored.num_updates == 2
    for name, tensor in ema.shadow.items():
        assert torch.equal(restored.shadow[name], tensor)
    with pytest.raises(ValueError, match="num_updates"):
        restored.load_state_dict({k: v for k, v in ema.state_dict().items() if k != "num_updates"})


def test_ema_round_trips_through_the_training_state_file(tmp_path: Path) -> None:
    model = _net()
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model[2].bias.add_(1.0)
    ema.update(model)
    path = tmp_path / "state.safetensors"
    save_training_state(
        path, step=1, modules={"model": model, "ema": ema}, optimizers={}, schedulers={}
    )
    fresh_model = _net()
    fresh_ema = EMA(fresh_model, decay=0.9)
    load_training_state(
        path, modules={"model": fresh_model, "ema": fresh_ema}, optimizers={}, schedulers={}
    )
    assert fresh_ema.num_updates == 1
    assert fresh_ema.current_decay() == ema.current_decay()
    for name, tensor in ema.shadow.items():
        assert torch.equal(fresh_ema.shadow[name], tensor)

    other = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 3))
    with pytest.raises(CheckpointError, match=r"module\.ema\.shadow\.2\.weight"):
        load_training_state(
            path, modules={"model": _net(), "ema": EMA(other)}, optimizers={}, schedulers={}
        )
