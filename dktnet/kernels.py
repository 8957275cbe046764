"""The kernel generator and the dynamic-kernel transform tau(F) = (F.P.K_c + K_b).V.

Reading of METHOD.md taken here (and why):
- The generator is "classifier-like": an MLP maps a region's statistics to logits over K
  learned style prototypes; the softmax weights mix K learned banks of (P, K_c, K_b, V).
  A bias residual predicted directly from the statistics lets K_b follow the exact target
  instead of only the prototypes' span.
- tau has rank d << C, so it cannot represent the identity on its own. Each use of tau is
  therefore a residual on standardised features (see :mod:`dktnet.bitransform`): with V
  initialised small the whole bi-transformation starts as masked AdaIN and training only
  learns the cross-channel (whitening/colouring) correction AdaIN lacks.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from dktnet.stats import RegionStats

_V_INIT_STD = 1e-3


class Kernels(NamedTuple):
    """Per-sample dynamic kernels: P (B,C,d), K_c (B,d,d), K_b (B,1,d), V (B,d,C)."""

    P: torch.Tensor
    K_c: torch.Tensor
    K_b: torch.Tensor
    V: torch.Tensor
    weights: torch.Tensor  # (B, K) prototype mixing weights, for inspection and losses


def dynamic_kernel_transform(feat: torch.Tensor, kernels: Kernels) -> torch.Tensor:
    """tau(F) = (F.P.K_c + K_b).V with F as (B, N, C): position-wise, so any H x W works."""
    dtype = feat.dtype
    projected = torch.bmm(feat, kernels.P.to(dtype))
    core = torch.bmm(projected, kernels.K_c.to(dtype)) + kernels.K_b.to(dtype)
    return torch.bmm(core, kernels.V.to(dtype))


class KernelGenerator(nn.Module):
    """Predicts the four dynamic kernels of one transform from a region's statistics."""

    def __init__(self, channels: int, dim: int, prototypes: int, hidden: int) -> None:
        super().__init__()
        self.channels, self.dim = channels, dim
        self.classifier = nn.Sequential(
            nn.LayerNorm(2 * channels),
            nn.Linear(2 * channels, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, prototypes),
        )
        self.bias_residual = nn.Linear(2 * channels, dim)
        self.P = nn.Parameter(torch.empty(prototypes, channels, dim))
        self.K_c = nn.Parameter(torch.empty(prototypes, dim, dim))
        self.K_b = nn.Parameter(torch.zeros(prototypes, 1, dim))
        self.V = nn.Parameter(torch.empty(prototypes, dim, channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Near-uniform prototype weights and a near-zero tau, so training starts at AdaIN."""
        nn.init.normal_(self.P, std=1.0 / math.sqrt(self.channels))
        with torch.no_grad():
            eye = torch.eye(self.dim).expand_as(self.K_c)
            self.K_c.copy_(eye + 0.01 * torch.randn_like(self.K_c))
        nn.init.normal_(self.V, std=_V_INIT_STD)
        last = self.classifier[-1]
        nn.init.normal_(last.weight, std=1e-3)
        nn.init.zeros_(last.bias)
        nn.init.normal_(self.bias_residual.weight, std=1e-3)
        nn.init.zeros_(self.bias_residual.bias)

    def forward(self, stats: RegionStats) -> Kernels:
        summary = stats.as_vector().to(self.P.dtype)
        weights = torch.softmax(self.classifier(summary).float(), dim=1).to(self.P.dtype)
        P = torch.einsum("bk,kcd->bcd", weights, self.P)
        K_c = torch.einsum("bk,kde->bde", weights, self.K_c)
        K_b = torch.einsum("bk,kod->bod", weights, self.K_b) + self.bias_residual(summary)[:, None]
        V = torch.einsum("bk,kdc->bdc", weights, self.V)
        return Kernels(P, K_c, K_b, V, weights)
