"""The learning-rate schedule: warm-up, then the decay the config names."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from training.config import OptimSettings
from training.optim import build_optimizer, build_scheduler, lr_factor


def test_warmup_is_linear_then_cosine_reaches_the_floor() -> None:
    s = OptimSettings(warmup_steps=4, schedule="cosine", min_lr_ratio=0.1)
    assert [lr_factor(i, 100, s) for i in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lr_factor(4, 100, s) == pytest.approx(1.0)
    assert lr_factor(52, 100, s) == pytest.approx(0.55)
    assert lr_factor(100, 100, s) == pytest.approx(0.1)
    assert lr_factor(500, 100, s) == pytest.approx(0.1)


def test_linear_and_constant() -> None:
    lin = OptimSettings(warmup_steps=0, schedule="linear", min_lr_ratio=0.0)
    assert lr_factor(50, 100, lin) == pytest.approx(0.5)
    const = dataclasses.replace(lin, schedule="constant")
    assert lr_factor(99, 100, const) == 1.0


def test_scheduler_drives_the_optimizer_and_weight_decay_picks_adamw() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    s = OptimSettings(warmup_steps=2, schedule="constant")
    opt = build_optimizer([p], 1e-3, s)
    assert type(opt) is torch.optim.Adam
    sched = build_scheduler(opt, 10, s)
    assert opt.param_groups[0]["lr"] == pytest.approx(5e-4)
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert (
        type(build_optimizer([p], 1e-3, dataclasses.replace(s, weight_decay=0.01)))
        is torch.optim.AdamW
    )
