"""Frechet distance, its statistics cache, and precision / recall on constructed sets."""

import numpy as np
import pytest
import scipy.linalg

from competitive_mixtures.metrics import fid
from competitive_mixtures.metrics import precision_recall as pr


def _random_spd(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_closed_form_2d():
    # For 2x2 PSD M, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)); M = S1 S2 has
    # nonnegative eigenvalues, so the same identity gives tr (S1 S2)^(1/2).
    s1 = np.array([[2.0, 0.6], [0.6, 1.0]])
    s2 = np.array([[0.5, -0.2], [-0.2, 3.0]])
    mu1, mu2 = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    m = s1 @ s2
    tr_sqrt = np.sqrt(np.trace(m) + 2 * np.sqrt(np.linalg.det(m)))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    got = fid.frechet_distance(fid.FeatureStats(mu1, s1, 0), fid.FeatureStats(mu2, s2, 0))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # Diagonal (commuting) covariances: sum of (sqrt(a) - sqrt(b))^2.
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    got = fid.frechet_distance(fid.FeatureStats(np.zeros(3), np.diag(a), 0),
                               fid.FeatureStats(np.ones(3), np.diag(b), 0))
    np.testing.assert_allclose(got, 3.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2), rtol=1e-12)


def test_trace_sqrt_matches_scipy_sqrtm_and_survives_singular_covariances():
    rng = np.random.default_rng(0)
    s1, s2 = _random_spd(rng, 20), _random_spd(rng, 20)
    reference = np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
    np.testing.assert_allclose(fid.trace_sqrt_product(s1, s2), reference, rtol=1e-9)
    # Fewer points than dimensions: rank-deficient covariances, still finite,
    # and a set compared with itself is at distance 0 up to the square roots
    # of rounding-level eigenvalues (~1e-8 each) of the null space.
    x = rng.standard_normal((10, 50))
    stats = fid.feature_stats(x)
    assert np.linalg.matrix_rank(stats.sigma) == 9
    assert abs(fid.frechet_distance(stats, stats)) < 1e-6 * 2 * np.trace(stats.sigma)


def test_frechet_distance_of_samples():
    rng = np.random.default_rng(1)
    d, n = 8, 200_000
    cov = _random_spd(rng, d)
    chol = np.linalg.cholesky(cov)
    x = rng.standard_normal((n, d)) @ chol.T
    y = rng.standard_normal((n, d)) @ chol.T
    same = fid.frechet_distance(fid.feature_stats(x), fid.feature_stats(y))
    # Its bias is about 2 d^2 / n-ish small; against a shift of 0.3 in one coordinate (0.09):
    assert abs(same) < 2e-3
    shifted = fid.frechet_distance(fid.feature_stats(x), fid.feature_stats(y + np.eye(d)[0] * 0.3))
    np.testing.assert_allclose(shifted, 0.09, atol=3e-3)


def test_fallback_offset_when_trace_is_not_finite(monkeypatch):
    calls = []
    real = fid.trace_sqrt_product

    def flaky(s1, s2):
        calls.append(np.trace(s1))
        if len(calls) == 1:
            raise np.linalg.LinAlgError("did not converge")
        return real(s1, s2)

    monkeypatch.setattr(fid, "trace_sqrt_product", flaky)
    s = np.diag([1.0, 2.0])
    got = fid.frechet_distance(fid.FeatureStats(np.zeros(2), s, 0),
                               fid.FeatureStats(np.zeros(2), s, 0), eps=1e-3)
    # The second try takes S + eps I (trace 3 + 2 eps); only the square-root
    # term is offset: d = 2 tr S - 2 (tr S + 2 eps) = -4 eps.
    np.testing.assert_allclose(calls, [3.0, 3.002])
    np.testing.assert_allclose(got, -4e-3, atol=1e-12)


def test_stats_cache_round_trip(tmp_path):
    x = np.random.default_rng(2).standard_normal((30, 4))
    stats = fid.feature_stats(x)
    path = str(tmp_path / "ref.npz")
    assert fid.load_stats(path) is None
    fid.save_stats(path, stats, "abc", features=x)
    loaded = fid.load_stats(path, "abc")
    np.testing.assert_array_equal(loaded.mu, stats.mu)
    np.testing.assert_array_equal(loaded.sigma, stats.sigma)
    assert loaded.n == 30
    assert fid.load_stats(path, "other") is None
    # A plain (mu, sigma) file, as other FID tools write them, loads with n = 0.
    np.savez(tmp_path / "plain.npz", mu=stats.mu, sigma=stats.sigma)
    assert fid.load_stats(str(tmp_path / "plain.npz")).n == 0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="n >= 2"):
        fid.feature_stats(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="NaN"):
        fid.feature_stats(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="dimensions"):
        fid.frechet_distance(fid.feature_stats(np.eye(3)), fid.feature_stats(np.eye(4)))
    with pytest.raises(ValueError, match="k must be"):
        pr.knn_radii(np.zeros((3, 2)), k=3)


def test_knn_radii_by_hand():
    x = np.array([[0.0], [1.0], [3.0], [7.0], [15.0]])
    # 3rd nearest other point: 0 -> 7, 1 -> 6 (|1-0|, |1-3|, |1-7|), 3 -> 4, 7 -> 7, 15 -> 14.
    np.testing.assert_allclose(pr.knn_radii(x, 3), np.array([7.0, 6.0, 4.0, 7.0, 14.0]) ** 2)
    np.testing.assert_allclose(pr.knn_radii(x, 1), np.array([1.0, 1.0, 2.0, 4.0, 8.0]) ** 2)


def test_precision_recall_of_constructed_sets():
    grid = np.stack(np.meshgrid(np.arange(10.0), np.arange(10.0)), -1).reshape(-1, 2)
    # Identical sets: every point lies in its own ball.
    same = pr.precision_recall(grid, grid.copy())
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["num_points"] == 100
    # Far away: nothing of one set lies in the other's manifold.
    far = pr.precision_recall(grid, grid + 1000.0)
    assert far["precision"] == 0.0 and far["recall"] == 0.0
    # Half of the fake points sit on rows 0-4 of the real grid, half far away:
    # precision is exactly 1/2.
    fake = np.concatenate([grid[:50], grid[50:] + 1000.0])
    half = pr.precision_recall(grid, fake)
    assert half["precision"] == 0.5
    # Real rows 0-4 lie on fake points. The fake points of row 4 have k=3
    # radii 1 (sqrt(2) at the two ends), so they reach real row 5 (distance 1)
    # but not row 6 (distance 2): recall is 60/100.
    assert half["recall"] == 0.6


def test_precision_recall_subsamples_the_larger_set():
    rng = np.random.default_rng(3)
    real = rng.standard_normal((200, 3))
    fake = rng.standard_normal((1000, 3))
    result = pr.precision_recall(real, fake, seed=0)
    assert result["num_points"] == 200
    # Same distribution: both near 1 (the k=3 balls of 200 points cover most).
    assert result["precision"] > 0.6 and result["recall"] > 0.6
