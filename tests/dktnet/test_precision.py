"""Reduced precision: the statistics run in float32 whatever the network's dtype."""

from __future__ import annotations

import pytest
import torch

from dkt.dktnet.config import DKTNetConfig
from dkt.dktnet.model import DKTNet

TINY = DKTNetConfig(lite_channels=(4, 8, 8, 16), kernel_dim=4, prototypes=2, generator_hidden=8)


def _inputs(dtype: torch.dtype, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 37, 45)
    m = torch.zeros(2, 1, 37, 45)
    m[:, :, 10:25, 12:30] = 1.0
    return x.to(device, dtype), m.to(device, dtype)


def test_bfloat16_forward_on_cpu_tracks_float32() -> None:
    """The dtype plumbing (stats upcast, kernels cast back) works in bf16 and stays close."""
    torch.manual_seed(1)
    model = DKTNet(TINY).eval()
    x, m = _inputs(torch.float32)
    with torch.no_grad():
        ref = model(x, m)
        low = model.to(torch.bfloat16)(x.bfloat16(), m.bfloat16())
    assert low.dtype == torch.bfloat16
    assert torch.isfinite(low.float()).all()
    assert (low.float() - ref).abs().max() < 0.1
    outside = (m == 0).expand_as(x)
    assert torch.equal(low[outside], x.bfloat16()[outside])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_cuda_precisions(dtype: torch.dtype) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine: fp16/bf16 CUDA inference not exercised")
    torch.manual_seed(1)
    model = DKTNet(TINY).eval()
    x, m = _inputs(torch.float32)
    with torch.no_grad():
        ref = model(x, m)
        out = model.to("cuda", dtype)(*_inputs(dtype, "cuda")).float().cpu()
    assert torch.isfinite(out).all()
    assert (out - ref).abs().max() < (1e-4 if dtype == torch.float32 else 0.05)
