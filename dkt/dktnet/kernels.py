"""The kernel generator and the dynamic-kernel transform tau(F) = (F.P.K_c + K_b).V.

Reading of METHOD.md taken here (and why):
- The generator is "classifier-like": an MLP maps a region's statistics to logits over K
  learned style prototypes; the softmax weights mix K learned banks of (P, K_c, K_b, V).
  A bias residual predicted directly from the statistics lets K_b follow the exact target
  instead of only the prototypes' span.
- tau has rank d << C, so it cannot represent the identity on its own. Each use of tau is
  therefore a residual on standardised features (see :mod:`dkt.dktnet.bitransform`): with V
  initialised at about 1% of the features the whole bi-transformation starts close to masked
  AdaIN and training learns the cross-channel (whitening/colouring) correction AdaIN lacks.
- Why the kernels must be able to move: with V at 1e-3, a classifier whose last layer was
  1e-3 and one gradient clip shared with the decoder, the bundled model's generators picked
  the same prototype for every painting (weight >= 0.9995) and P, K_c got gradients below
  Adam's eps. The fixes are here (initial scales, covariance summary) and in training
  (per-group clipping, the kernel-diversity term of :mod:`training.losses`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dkt.dktnet.stats import RegionStats, masked_covariance

#: V's initial scale: tau starts at about 1% of the standardised features (close to masked
#: AdaIN, so training is stable from step one) without scaling every gradient upstream of V
#: down to nothing, as the earlier 1e-3 did (P and K_c then got 1e-11 RMS gradients).
_V_INIT_GAIN = 0.01


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
    """Predicts the four dynamic kernels of one transform from a region's statistics.

    The summary it classifies is the region's per-channel mean and log-std and, when
    ``cov_rank`` > 0, a low-rank covariance: the standardised features projected on
    ``cov_rank`` learned directions, and the covariance of those projections (its upper
    triangle). Mean and std alone are the same for regions whose channels correlate
    differently, which is exactly what P.K_c (whitening) and K_c.V (colouring) act on.
    """

    def __init__(
        self, channels: int, dim: int, prototypes: int, hidden: int, cov_rank: int = 0
    ) -> None:
        super().__init__()
        self.channels, self.dim, self.cov_rank = channels, dim, cov_rank
        summary = 2 * channels + cov_rank * (cov_rank + 1) // 2
        self.classifier = nn.Sequential(
            nn.LayerNorm(summary),
            nn.Linear(summary, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, prototypes),
        )
        self.bias_residual = nn.Linear(summary, dim)
        if cov_rank:
            self.cov_proj = nn.Parameter(torch.empty(channels, cov_rank))
        self.P = nn.Parameter(torch.empty(prototypes, channels, dim))
        self.K_c = nn.Parameter(torch.empty(prototypes, dim, dim))
        self.K_b = nn.Parameter(torch.zeros(prototypes, 1, dim))
        self.V = nn.Parameter(torch.empty(prototypes, dim, channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """A near-zero tau, and prototype weights that already depend on the input.

        The classifier's last layer keeps PyTorch's default scale: with it at 1e-3 every
        input got uniform weights and nothing pushed them apart, so the mix collapsed.
        """
        nn.init.normal_(self.P, std=1.0 / math.sqrt(self.channels))
        with torch.no_grad():
            eye = torch.eye(self.dim).expand_as(self.K_c)
            self.K_c.copy_(eye + 0.01 * torch.randn_like(self.K_c))
        nn.init.normal_(self.V, std=_V_INIT_GAIN / math.sqrt(self.dim))
        nn.init.normal_(self.bias_residual.weight, std=1e-3)
        nn.init.zeros_(self.bias_residual.bias)
        if self.cov_rank:
            nn.init.orthogonal_(self.cov_proj)

    def summary(
        self, stats: RegionStats, z: torch.Tensor | None, weight: torch.Tensor | None
    ) -> torch.Tensor:
        """The classifier's input: mean, log-std and (with ``cov_rank``) the low-rank covariance.

        ``z`` is the region's standardised feature map and ``weight`` its (B,1,H,W) weight;
        both are only read when ``cov_rank`` > 0.
        """
        parts = [stats.as_vector()]
        if self.cov_rank:
            if z is None or weight is None:
                raise ValueError("a covariance summary needs the standardised features")
            # A 1x1 convolution, not an einsum: the same sums, and every runtime has a fast
            # convolution (ONNX Runtime's Einsum took 5% of a run at 512 px).
            projected = F.conv2d(z.float(), self.cov_proj.float().t()[:, :, None, None])
            cov = masked_covariance(projected, weight)
            rows, cols = torch.triu_indices(self.cov_rank, self.cov_rank, device=cov.device)
            parts.append(cov[:, rows, cols])
        return torch.cat(parts, dim=1).to(self.P.dtype)

    def forward(
        self,
        stats: RegionStats,
        z: torch.Tensor | None = None,
        weight: torch.Tensor | None = None,
    ) -> Kernels:
        summary = self.summary(stats, z, weight)
        weights = torch.softmax(self.classifier(summary).float(), dim=1).to(self.P.dtype)
        P = torch.einsum("bk,kcd->bcd", weights, self.P)
        K_c = torch.einsum("bk,kde->bde", weights, self.K_c)
        K_b = torch.einsum("bk,kod->bod", weights, self.K_b) + self.bias_residual(summary)[:, None]
        V = torch.einsum("bk,kdc->bdc", weights, self.V)
        return Kernels(P, K_c, K_b, V, weights)
