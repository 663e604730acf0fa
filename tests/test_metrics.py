"""Tests for competitive_mixtures.metrics."""

import chex
import numpy as np
import pytest
from scipy import special
from sklearn import metrics as sk_metrics

from competitive_mixtures.data import synthetic
from competitive_mixtures.metrics import clustering
from competitive_mixtures.metrics import coverage
from competitive_mixtures.metrics import kde
from competitive_mixtures.metrics import modes


def _direct_kde_log_density(points, samples, bandwidth):
    points = points.reshape(len(points), -1).astype(np.float64)
    samples = samples.reshape(len(samples), -1).astype(np.float64)
    dim = points.shape[1]
    sq_dist = np.sum(np.square(points[:, None] - samples[None]), axis=-1)
    return (special.logsumexp(-sq_dist / (2 * bandwidth**2), axis=1)
            - np.log(len(samples))
            - 0.5 * dim * np.log(2 * np.pi * bandwidth**2))


@pytest.mark.parametrize('shape,bandwidth,batch_size', [
    ((2,), 0.3, 1024),
    ((2,), 0.05, 7),
    ((2, 3), 1.5, 4),
])
def test_kde_log_density_matches_direct(shape, bandwidth, batch_size):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(23,) + shape)
    samples = rng.normal(size=(41,) + shape)
    got = kde.kde_log_density(points, samples, bandwidth, batch_size)
    chex.assert_shape(got, (23,))
    np.testing.assert_allclose(
        got, _direct_kde_log_density(points, samples, bandwidth),
        rtol=1e-4, atol=1e-3)


def test_kde_log_density_small_bandwidth_far_from_origin():
    # Offsets are large relative to the bandwidth; the result must stay exact.
    rng = np.random.default_rng(1)
    samples = np.array([10.0, -8.0]) + 0.01 * rng.normal(size=(50, 2))
    points = np.array([10.0, -8.0]) + 0.01 * rng.normal(size=(20, 2))
    np.testing.assert_allclose(
        kde.kde_log_density(points, samples, 0.01),
        _direct_kde_log_density(points, samples, 0.01), atol=2e-2)


def test_kde_log_likelihood_approaches_true_gaussian():
    rng = np.random.default_rng(0)
    mean, std = np.array([1.0, -2.0]), np.array([1.0, 0.5])
    model_samples = mean + std * rng.normal(size=(6000, 2))
    heldout = mean + std * rng.normal(size=(2000, 2))
    # E[log N(x)] under N itself: -D/2 * (1 + log 2 pi) - sum log std.
    true_ll = -(1 + np.log(2 * np.pi)) - np.sum(np.log(std))
    result = kde.kde_log_likelihood(model_samples, heldout)
    assert abs(result['log_likelihood'] - true_ll) < 0.08
    assert result['num_samples'] == 6000
    assert result['bandwidth'] in result['bandwidth_grid']
    assert 0.05 < result['bandwidth'] < 0.8
    assert len(result['bandwidth_grid']) == len(kde.DEFAULT_GRID)

    # A mismatched model must score clearly worse.
    shifted = kde.kde_log_likelihood(model_samples + 2.0, heldout)
    assert shifted['log_likelihood'] < true_ll - 1.0


def test_select_bandwidth_tracks_data_scale():
    rng = np.random.default_rng(0)
    narrow = 0.02 * rng.normal(size=(1000, 2))
    wide = 2.0 * rng.normal(size=(1000, 2))
    h_narrow = kde.select_bandwidth(narrow[:500], narrow[500:])
    h_wide = kde.select_bandwidth(wide[:500], wide[500:])
    assert h_narrow < 0.02 < h_wide
    assert kde.select_bandwidth(wide[:500], wide[500:], grid=[0.7]) == 0.7


def test_coverage_same_distribution():
    data = synthetic.ring(num_points=4000, num_heldout=2000, seed=0)
    result = coverage.coverage(data.x, data.heldout_x)
    assert abs(result['coverage'] - 0.95) < 0.03
    assert result['bandwidth'] in kde.DEFAULT_GRID


def test_coverage_half_the_modes():
    data = synthetic.ring(num_points=8000, num_heldout=2000, seed=0)
    model_samples = data.x[data.label < 4]
    result = coverage.coverage(model_samples, data.heldout_x)
    assert result['coverage'] < 0.6
    assert abs(result['coverage'] - 0.475) < 0.05


def test_coverage_fixed_bandwidth_and_quantile():
    data = synthetic.grid(num_points=4000, num_heldout=2000, seed=0)
    result = coverage.coverage(data.x, data.heldout_x, bandwidth=0.05,
                               quantile=0.2)
    assert result['bandwidth'] == 0.05
    assert abs(result['coverage'] - 0.8) < 0.04


def test_mode_metrics_constructed():
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    samples = np.array(
        [[0.5, 0.0]] * 5        # Mode 0, high quality.
        + [[10.0, 2.9]] * 3     # Mode 1, high quality.
        + [[10.0, 3.5]] * 2     # Mode 1, too far.
        + [[0.0, 4.0]] * 2)     # Mode 0, too far.
    result = modes.mode_metrics(samples, centres, std=1.0)
    assert result['num_modes'] == 3
    assert result['modes_covered'] == 2
    assert result['high_quality_share'] == pytest.approx(8 / 12)
    np.testing.assert_array_equal(result['mode_counts'], [5, 3, 0])
    assert modes.mode_metrics(samples, centres, 1.0,
                              min_count=4)['modes_covered'] == 1
    wide = modes.mode_metrics(samples, centres, 1.0, num_sigmas=4.5)
    assert wide['high_quality_share'] == 1.0
    assert wide['modes_covered'] == 2


def test_mode_metrics_on_true_grid_samples():
    data = synthetic.grid(num_points=100000, num_heldout=10, seed=0)
    result = modes.mode_metrics(data.x, data.centres, data.mode_std)
    assert result['modes_covered'] == 25
    # P(|x| <= 3 sigma) for a 2-D isotropic Gaussian is 1 - exp(-4.5).
    assert result['high_quality_share'] == pytest.approx(1 - np.exp(-4.5),
                                                         abs=0.002)
    collapsed = modes.mode_metrics(data.x[data.label < 10], data.centres,
                                   data.mode_std)
    assert collapsed['modes_covered'] == 10


def test_nearest_centre_batches_agree():
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(1001, 2))
    centres = rng.normal(size=(7, 2))
    idx_a, dist_a = modes.nearest_centre(samples, centres, batch_size=64)
    idx_b, dist_b = modes.nearest_centre(samples, centres, batch_size=5000)
    np.testing.assert_array_equal(idx_a, idx_b)
    np.testing.assert_allclose(dist_a, dist_b)
    brute = np.linalg.norm(samples[:, None] - centres[None], axis=-1)
    np.testing.assert_array_equal(idx_a, brute.argmin(axis=1))


def test_contingency():
    assignment = np.array([0, 0, 0, 1, 1, 1, 2])
    label = np.array([0, 0, 1, 1, 1, 1, -1])
    counts = clustering.contingency(assignment, label, num_components=3,
                                    num_classes=2)
    np.testing.assert_array_equal(counts, [[2, 1], [0, 3], [0, 0]])
    assert np.issubdtype(counts.dtype, np.integer)


def test_clustering_scores_perfect_and_permuted():
    label = np.repeat(np.arange(4), 5)
    perfect = clustering.clustering_scores(label, label, num_components=4)
    permuted = clustering.clustering_scores((label + 2) % 4, label,
                                            num_components=4)
    for scores in (perfect, permuted):
        assert scores['purity'] == pytest.approx(1.0)
        assert scores['nmi'] == pytest.approx(1.0)
        assert scores['ari'] == pytest.approx(1.0)


def test_clustering_scores_hand_case():
    assignment = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    label = np.array([0, 0, 1, 1, 1, 1, -1, -1])
    scores = clustering.clustering_scores(assignment, label, num_components=2)
    assert scores['purity'] == pytest.approx(5 / 6)
    known = label >= 0
    assert scores['nmi'] == pytest.approx(
        sk_metrics.normalized_mutual_info_score(label[known],
                                                assignment[known]))
    assert scores['ari'] == pytest.approx(
        sk_metrics.adjusted_rand_score(label[known], assignment[known]))
    assert scores['nmi'] < 1.0 and scores['ari'] < 1.0


def test_clustering_scores_single_component_and_random():
    label = np.repeat(np.arange(3), 100)
    single = clustering.clustering_scores(np.zeros(300, np.int64), label, 1)
    assert single['purity'] == pytest.approx(1 / 3)
    assert single['ari'] == pytest.approx(0.0)
    random = clustering.clustering_scores(
        np.random.default_rng(0).integers(0, 3, 300), label, 3)
    assert abs(random['ari']) < 0.05
    assert random['purity'] < 0.5
