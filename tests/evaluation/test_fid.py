"""Tests for ``dkt.evaluation.fid`` on Gaussians whose distances are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from dkt.evaluation.fid import feature_stats, fid, frechet_distance, kid


def test_frechet_distance_closed_forms() -> None:
    d = 5
    mu = np.zeros(d)
    eye = np.eye(d)
    assert frechet_distance(mu, eye, mu, eye) == pytest.approx(0.0, abs=1e-9)
    shift = np.arange(d, dtype=float)
    assert frechet_distance(mu, eye, shift, eye) == pytest.approx(shift @ shift)
    # N(0, I) vs N(0, 4I): d * (1 + 4 - 2 * 2) = d
    assert frechet_distance(mu, eye, mu, 4 * eye) == pytest.approx(float(d))


def test_fid_of_samples_from_one_gaussian_is_near_zero() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 4))
    b = rng.normal(size=(20000, 4))
    assert fid(a, b) < 0.01


def test_fid_of_shifted_samples_is_squared_mean_distance() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20000, 4))
    delta = np.array([1.0, -2.0, 0.5, 0.0])
    b = rng.normal(size=(20000, 4)) + delta
    assert fid(a, b) == pytest.approx(delta @ delta, rel=0.03)


def test_fid_survives_singular_covariances() -> None:
    # Fewer samples than dimensions, as with a handful of images and 2048-d features.
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(6, 32)), rng.normal(size=(7, 32)) + 1.0
    value = fid(a, b)
    assert np.isfinite(value) and value > 0


def test_feature_stats_needs_two_samples() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        feature_stats(np.zeros((1, 3)))
    stats = feature_stats(np.array([[0.0, 0.0], [2.0, 2.0]]))
    assert stats.count == 2
    np.testing.assert_allclose(stats.mu, [1.0, 1.0])


def _brute_force_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1.0) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_with_one_full_subset_is_the_unbiased_mmd() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 3)) + 0.5
    result = kid(x, y, subsets=3, subset_size=8)
    assert result.subset_size == 8
    assert result.mean == pytest.approx(_brute_force_mmd2(x, y))
    assert result.std == pytest.approx(0.0, abs=1e-12)  # every subset is the whole set


def test_kid_same_distribution_near_zero_shift_positive() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    same = kid(a, b, subsets=20, subset_size=200)
    shifted = kid(a, b + 1.0, subsets=20, subset_size=200)
    assert abs(same.mean) < 3 * same.std + 0.01
    assert shifted.mean > 10 * max(abs(same.mean), 1e-3)
    assert kid(a, b + 2.0, subsets=20, subset_size=200).mean > shifted.mean


def test_kid_small_sets_use_min_size_and_refuse_one_sample() -> None:
    rng = np.random.default_rng(5)
    result = kid(rng.normal(size=(5, 4)), rng.normal(size=(30, 4)), subsets=4)
    assert result.subset_size == 5 and result.subsets == 4
    with pytest.raises(ValueError, match="at least 2"):
        kid(np.zeros((1, 4)), np.zeros((5, 4)))
