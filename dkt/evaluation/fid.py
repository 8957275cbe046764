"""FID and KID between two sets of features (e.g. Inception-v3 pool3 activations).

* FID (Heusel et al. 2017): the Fréchet distance between Gaussians fitted to the two sets,
  ``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2)``. It is biased upwards for small sets
  (tens of images give large values even for identical distributions), so FIDs are only
  comparable between methods scored on the same number of images.
* KID (Bińkowski et al. 2018): the unbiased squared MMD with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets. Unbiased, so it is the
  figure to trust on the small test sets this project works with.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import linalg

__all__ = ["FeatureStats", "KidResult", "feature_stats", "fid", "frechet_distance", "kid"]


@dataclass(frozen=True)
class FeatureStats:
    """Mean and covariance of a feature set, and how many samples they rest on."""

    mu: np.ndarray
    sigma: np.ndarray
    count: int


def feature_stats(features: np.ndarray) -> FeatureStats:
    """Mean and (unbiased, ``N - 1``) covariance of (N, d) features; N >= 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need at least 2 feature vectors (N, d), got shape {f.shape}")
    return FeatureStats(f.mean(axis=0), np.cov(f, rowvar=False), len(f))


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    The usual numerical fixes: when the product's square root is not finite (singular
    covariances, always the case with fewer samples than dimensions) ``eps`` is added to
    both diagonals; a complex result whose imaginary part is round-off is reduced to its
    real part, and a large imaginary part is an error rather than a silently wrong number.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError("means and covariances have inconsistent shapes")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        # Singular products are the normal case for small sets; the checks below handle them.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            offset = np.eye(len(mu1)) * eps
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.abs(np.diagonal(covmean).imag).max()
        if imag > 1e-3 * max(1.0, np.abs(np.diagonal(covmean).real).max()):
            raise ValueError(f"matrix square root has a large imaginary component ({imag:.3g})")
        covmean = covmean.real
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean)
    return float(max(value, 0.0))


def fid(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID between two feature sets (N1, d) and (N2, d)."""
    a, b = feature_stats(features1), feature_stats(features2)
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)


@dataclass(frozen=True)
class KidResult:
    """KID mean and standard deviation over subsets, and what they rest on."""

    mean: float
    std: float
    subset_size: int
    subsets: int


def _polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size sets under k(a, b) = (a.b / d + 1)^3."""
    d = x.shape[1]
    m = len(x)
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.mean())


def kid(
    features1: np.ndarray,
    features2: np.ndarray,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> KidResult:
    """Kernel Inception Distance: unbiased polynomial-kernel MMD^2 averaged over subsets.

    Each subset draws ``min(subset_size, N1, N2)`` samples without replacement from each
    set (seeded), so small test sets use all their images in every subset and the spread
    over subsets shows how much the figure depends on which images were drawn.
    """
    x = np.asarray(features1, dtype=np.float64)
    y = np.asarray(features2, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected (N, d) and (M, d) features, got {x.shape} and {y.shape}")
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples in each set, got {len(x)} and {len(y)}")
    rng = np.random.default_rng(seed)
    values = np.array(
        [
            _polynomial_mmd2(
                x[rng.choice(len(x), m, replace=False)], y[rng.choice(len(y), m, replace=False)]
            )
            for _ in range(subsets)
        ]
    )
    std = float(values.std(ddof=1)) if subsets > 1 else math.nan
    return KidResult(float(values.mean()), std, m, subsets)
