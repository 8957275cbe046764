"""Optimisers and the learning-rate schedule named in the config.

The schedule is a linear warm-up followed by a constant, cosine or linear decay to
``min_lr_ratio * lr``. It is a plain function of the step wrapped in ``LambdaLR``, so its
state is just the step count: it survives a resume exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch.optim.lr_scheduler import LambdaLR

from training.config import OptimSettings

__all__ = ["build_optimizer", "build_scheduler", "lr_factor"]


def lr_factor(step: int, total: int, settings: OptimSettings) -> float:
    """Multiplier of the base learning rate after ``step`` optimiser steps."""
    warm = settings.warmup_steps
    if warm and step < warm:
        return (step + 1) / warm
    if settings.schedule == "constant":
        return 1.0
    span = max(total - warm, 1)
    progress = min(max(step - warm, 0) / span, 1.0)
    low = settings.min_lr_ratio
    if settings.schedule == "linear":
        return 1.0 - (1.0 - low) * progress
    return low + (1.0 - low) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(
    params: Iterable[torch.nn.Parameter], lr: float, settings: OptimSettings
) -> torch.optim.Optimizer:
    """Adam (AdamW when weight decay is set, so decay is decoupled from the adaptive step)."""
    params = list(params)
    if settings.weight_decay:
        return torch.optim.AdamW(
            params, lr=lr, betas=settings.betas, weight_decay=settings.weight_decay
        )
    return torch.optim.Adam(params, lr=lr, betas=settings.betas)


def build_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, settings: OptimSettings
) -> LambdaLR:
    return LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, settings))
