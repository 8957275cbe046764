"""Tests for dkt.dktnet.kernels: tau(F) = (F.P.K_c + K_b).V and the kernel generator."""

from __future__ import annotations

import torch

from dkt.dktnet.kernels import KernelGenerator, Kernels, dynamic_kernel_transform
from dkt.dktnet.stats import masked_stats, standardize

C, D, K, HIDDEN = 6, 3, 4, 16


def _random_kernels(b: int, c: int, d: int) -> Kernels:
    return Kernels(
        P=torch.randn(b, c, d),
        K_c=torch.randn(b, d, d),
        K_b=torch.randn(b, 1, d),
        V=torch.randn(b, d, c),
        weights=torch.full((b, 1), 1.0),
    )


def _explicit_tau(feat: torch.Tensor, kern: Kernels) -> torch.Tensor:
    """(F.P.K_c + K_b).V element by element in float64, one sample at a time."""
    b, n, c = feat.shape
    d = kern.P.shape[-1]
    f = feat.double().tolist()
    P, Kc, Kb, V = (t.double().tolist() for t in (kern.P, kern.K_c, kern.K_b, kern.V))
    out = torch.zeros(b, n, c, dtype=torch.float64)
    for s in range(b):
        for row in range(n):
            proj = [sum(f[s][row][i] * P[s][i][k] for i in range(c)) for k in range(d)]
            core = [sum(proj[k] * Kc[s][k][e] for k in range(d)) + Kb[s][0][e] for e in range(d)]
            for j in range(c):
                out[s, row, j] = sum(core[e] * V[s][e][j] for e in range(d))
    return out


def test_dynamic_kernel_transform_matches_explicit_computation() -> None:
    torch.manual_seed(0)
    feat = torch.randn(2, 5, C)
    kern = _random_kernels(2, C, D)
    got = dynamic_kernel_transform(feat, kern)
    assert got.shape == (2, 5, C)
    torch.testing.assert_close(got.double(), _explicit_tau(feat, kern), atol=1e-4, rtol=1e-5)


def test_dynamic_kernel_transform_uses_each_samples_own_kernels() -> None:
    torch.manual_seed(1)
    feat = torch.randn(3, 4, C)
    kern = _random_kernels(3, C, D)
    batched = dynamic_kernel_transform(feat, kern)
    for s in range(3):
        single = Kernels(*(t[s : s + 1] for t in kern))
        torch.testing.assert_close(
            batched[s : s + 1], dynamic_kernel_transform(feat[s : s + 1], single)
        )


def test_dynamic_kernel_transform_is_position_wise() -> None:
    """Permuting positions permutes the output rows: any H x W (and any N) works."""
    torch.manual_seed(2)
    feat = torch.randn(1, 7, C)
    kern = _random_kernels(1, C, D)
    perm = torch.randperm(7)
    torch.testing.assert_close(
        dynamic_kernel_transform(feat[:, perm], kern), dynamic_kernel_transform(feat, kern)[:, perm]
    )


def _region_stats(b: int = 2, c: int = C):
    feat = torch.randn(b, c, 5, 5) * 2.0 + 1.0
    mask = (torch.rand(b, 1, 5, 5) > 0.5).float()
    return feat, mask, masked_stats(feat, mask)


def test_kernel_generator_shapes_and_mixing_weights() -> None:
    torch.manual_seed(3)
    gen = KernelGenerator(C, D, K, HIDDEN)
    _, _, stats = _region_stats(b=3)
    kern = gen(stats)
    assert kern.P.shape == (3, C, D)
    assert kern.K_c.shape == (3, D, D)
    assert kern.K_b.shape == (3, 1, D)
    assert kern.V.shape == (3, D, C)
    assert kern.weights.shape == (3, K)
    assert (kern.weights >= 0).all()
    torch.testing.assert_close(kern.weights.sum(dim=1), torch.ones(3))


def test_single_prototype_kernels_are_the_bank_itself() -> None:
    torch.manual_seed(4)
    gen = KernelGenerator(C, D, 1, HIDDEN)
    _, _, stats = _region_stats()
    kern = gen(stats)
    torch.testing.assert_close(kern.weights, torch.ones(2, 1))
    torch.testing.assert_close(kern.P, gen.P.detach().expand(2, C, D))
    torch.testing.assert_close(kern.K_c, gen.K_c.detach().expand(2, D, D))
    torch.testing.assert_close(kern.V, gen.V.detach().expand(2, D, C))


def test_kernels_depend_on_the_region_statistics() -> None:
    torch.manual_seed(5)
    gen = KernelGenerator(C, D, K, HIDDEN)
    _, _, stats = _region_stats()
    kern = gen(stats)
    assert not torch.allclose(kern.K_b[0], kern.K_b[1])
    assert not torch.equal(kern.weights[0], kern.weights[1])


def test_initial_tau_is_small_and_prototype_weights_follow_the_input() -> None:
    torch.manual_seed(6)
    gen = KernelGenerator(C, D, K, HIDDEN)
    feat, _, stats = _region_stats()
    z = standardize(feat, stats)  # tau acts on standardised features in the bi-transformation
    kern = gen(stats)
    # Two different regions get different mixes from the start (a 1e-3 last layer gave
    # uniform weights for every input, and nothing pushed them apart).
    assert (kern.weights[0] - kern.weights[1]).abs().sum().item() > 0.02
    rows = z.flatten(2).transpose(1, 2)
    tau = dynamic_kernel_transform(rows, kern)
    assert tau.abs().max().item() < 0.05 * rows.abs().max().item()
    assert tau.norm().item() < 0.02 * rows.norm().item()
    # K_c starts near the identity (so P.K_c.V keeps the projection's shape).
    eye = torch.eye(D).expand(K, D, D)
    assert (gen.K_c.detach() - eye).abs().max().item() < 0.1


def test_dynamic_kernel_transform_follows_feature_dtype() -> None:
    torch.manual_seed(7)
    feat = torch.randn(1, 3, C, dtype=torch.float64)
    kern = _random_kernels(1, C, D)  # float32 kernels are cast to the features' dtype
    out = dynamic_kernel_transform(feat, kern)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, _explicit_tau(feat, kern), atol=1e-4, rtol=1e-5)
