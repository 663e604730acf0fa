"""Tests for competitive_mixtures.assign on small hand-computed cases."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

from competitive_mixtures import assign


def test_log_ratio_from_logits_is_negated_logits():
    """Eq. (1): log dP_g/dP_X = -logit."""
    logits = jnp.array([[0.0, 1.5], [-2.0, 3.0], [0.25, -0.75]])
    got = assign.log_ratio_from_logits(logits)
    chex.assert_shape(got, (3, 2))
    np.testing.assert_array_equal(got, -np.asarray(logits))


def test_normalise_columns_logsumexp_to_zero():
    """Each column becomes a log-distribution over points and matches numpy."""
    log_ratio = np.array([[0.0, 2.0, -1.0],
                          [1.0, -3.0, 5.0],
                          [2.0, 0.5, 0.0],
                          [-4.0, 1.0, 100.0]], np.float32)
    got = assign.normalise(jnp.asarray(log_ratio))
    chex.assert_shape(got, (4, 3))
    chex.assert_type(got, jnp.float32)
    expected = log_ratio - special.logsumexp(log_ratio.astype(np.float64), axis=0,
                                             keepdims=True)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(special.logsumexp(np.asarray(got, np.float64), axis=0),
                               np.zeros(3), atol=1e-6)
    # Hand value: column 0 is log softmax of (0, 1, 2, -4).
    first = -np.log(1 + np.e + np.e**2 + np.exp(-4.0))
    np.testing.assert_allclose(got[0, 0], first, rtol=1e-6)


def test_owners_ties_go_to_lowest_index():
    """argmax with ties resolved to the smallest component index."""
    log_p = jnp.array([[1.0, 1.0, 0.0],
                       [0.0, 2.0, 2.0],
                       [3.0, 3.0, 3.0],
                       [-1.0, -2.0, 0.5]])
    got = assign.owners(log_p)
    chex.assert_shape(got, (4,))
    chex.assert_type(got, jnp.int32)
    np.testing.assert_array_equal(got, [0, 1, 0, 2])


def test_counts_and_alphas():
    """Counts per component, alphas sum to 1, an empty component gets alpha 0."""
    owner = jnp.array([0, 2, 2, 0, 2, 3], jnp.int32)
    count = assign.counts(owner, 4)
    chex.assert_shape(count, (4,))
    chex.assert_type(count, jnp.int32)
    np.testing.assert_array_equal(count, [2, 0, 3, 1])
    alpha = assign.alphas(count)
    chex.assert_type(alpha, jnp.float32)
    np.testing.assert_allclose(alpha, [2 / 6, 0.0, 3 / 6, 1 / 6], rtol=1e-6)
    np.testing.assert_allclose(jnp.sum(alpha), 1.0, rtol=1e-6)
    assert float(alpha[1]) == 0.0


# 10 points, 3 components. Component 0 wins 6 points, component 1 wins 3,
# component 2 wins only point 9. All scores in a column are distinct.
_LOG_P = np.array([
    [5.0, 1.0, 0.9],
    [4.0, 2.0, 0.8],
    [6.0, 0.5, 0.7],
    [3.0, 1.0, 2.9],
    [7.0, 0.0, 0.6],
    [8.0, 0.1, 0.5],
    [0.0, 3.0, 2.5],
    [0.1, 4.0, 2.6],
    [0.2, 5.0, 2.7],
    [0.0, 0.1, 9.0],
], np.float32)


def test_training_sets_load_balancing():
    """A component under min_points trains on its min_points best points."""
    log_p = jnp.asarray(_LOG_P)
    owner = assign.owners(log_p)
    np.testing.assert_array_equal(owner, [0, 0, 0, 0, 0, 0, 1, 1, 1, 2])
    sets = assign.training_sets(assign.assign(log_p, min_points=4, normalise_ratio=False))
    chex.assert_shape(sets.order, (10,))
    chex.assert_shape(sets.best, (3, 4))
    chex.assert_type([sets.order, sets.start, sets.count, sets.best], jnp.int32)
    chex.assert_type(sets.balanced, jnp.bool_)
    np.testing.assert_array_equal(sets.count, [6, 3, 1])
    np.testing.assert_array_equal(sets.start, [0, 6, 9])
    np.testing.assert_array_equal(sets.order, np.argsort(np.asarray(owner), kind="stable"))
    np.testing.assert_array_equal(sets.balanced, [False, True, True])
    np.testing.assert_array_equal(sets.size, [6, 4, 4])
    # Best rows: the 4 highest log_p of each column, best first.
    np.testing.assert_array_equal(sets.best[1], [8, 7, 6, 1])
    np.testing.assert_array_equal(sets.best[2], [9, 3, 8, 7])
    for j in range(3):
        np.testing.assert_array_equal(sets.best[j], np.argsort(-_LOG_P[:, j])[:4])
    # Normalising shifts each column by a constant: the best points stay the same.
    normed = assign.training_sets(assign.assign(log_p, min_points=4))
    np.testing.assert_array_equal(normed.best, sets.best)


def test_best_points_ties_go_to_lower_index():
    """Equal scores: the lower point index is listed first."""
    log_p = jnp.array([[1.0], [2.0], [2.0], [0.0], [2.0]])
    np.testing.assert_array_equal(assign.best_points(log_p, 3), [[1, 2, 4]])
    np.testing.assert_array_equal(assign.best_points(log_p, 4), [[1, 2, 4, 0]])


def test_random_split_never_balances():
    """The pre-training split has no scores: nothing is balanced, best has M=max(min_points,1)."""
    owner = jnp.array([1, 1, 0, 1], jnp.int32)
    for min_points, m in ((3, 3), (0, 1)):
        split = assign.random_split(owner, 3, min_points)
        chex.assert_shape(split.best, (3, m))
        sets = assign.training_sets(split)
        np.testing.assert_array_equal(sets.balanced, [False, False, False])
        np.testing.assert_array_equal(sets.size, [1, 3, 0])
        np.testing.assert_allclose(split.alpha, [0.25, 0.75, 0.0])


def test_assign_balanced_alpha_is_true_share():
    """assign.assign: balancing changes the training set, not alpha."""
    result = assign.assign(jnp.asarray(_LOG_P), min_points=4, normalise_ratio=False)
    np.testing.assert_array_equal(result.owner, [0, 0, 0, 0, 0, 0, 1, 1, 1, 2])
    np.testing.assert_array_equal(result.count, [6, 3, 1])
    chex.assert_type(result.alpha, jnp.float32)
    np.testing.assert_allclose(result.alpha, [0.6, 0.3, 0.1], rtol=1e-6)
    np.testing.assert_array_equal(result.balanced, [False, True, True])
    np.testing.assert_array_equal(result.best[2], [9, 3, 8, 7])
    none = assign.assign(jnp.asarray(_LOG_P), min_points=0)
    np.testing.assert_array_equal(none.balanced, [False, False, False])


def test_assign_padding_rows_own_nothing():
    """Rows marked invalid (padding, -inf scores) are neither counted nor listed as best."""
    log_p = jnp.concatenate([jnp.asarray(_LOG_P), jnp.full((2, 3), -jnp.inf)])
    valid = jnp.arange(12) < 10
    for normalise_ratio in (False, True):
        result = assign.assign(log_p, 4, normalise_ratio, valid=valid)
        unpadded = assign.assign(jnp.asarray(_LOG_P), 4, normalise_ratio)
        assert int(np.sum(result.count)) == 10
        np.testing.assert_array_equal(result.count, unpadded.count)
        np.testing.assert_array_equal(result.owner[:10], unpadded.owner)
        np.testing.assert_array_equal(result.best, unpadded.best)


def test_assign_normalise_ratio_false_uses_raw_scores():
    """Raw and normalised scores give different owners on this case."""
    # Column 1 is far below column 0 everywhere, so after normalisation its
    # best point (3) becomes its own while raw scores give everything to 0.
    raw = jnp.array([[0.0, -200.0],
                     [-0.125, -190.0],
                     [-0.5, -180.5],
                     [-40.5, -60.5]])
    plain = assign.assign(raw, min_points=0, normalise_ratio=False)
    normed = assign.assign(raw, min_points=0, normalise_ratio=True)
    np.testing.assert_array_equal(plain.owner, [0, 0, 0, 0])
    np.testing.assert_array_equal(plain.owner, np.argmax(np.asarray(raw), axis=1))
    np.testing.assert_array_equal(normed.owner, [0, 0, 0, 1])
    np.testing.assert_array_equal(
        normed.owner, np.argmax(np.asarray(assign.normalise(raw)), axis=1))
    np.testing.assert_allclose(plain.alpha, [1.0, 0.0])
    np.testing.assert_allclose(normed.alpha, [0.75, 0.25])


def test_sample_training_points_stays_in_and_covers_training_sets():
    """Indices come only from each training set, and every member is drawn."""
    sets = assign.training_sets(assign.assign(jnp.asarray(_LOG_P), min_points=4,
                                              normalise_ratio=False))
    index = assign.sample_training_points(sets, jax.random.PRNGKey(0), 4000)
    chex.assert_shape(index, (3, 4000))
    chex.assert_type(index, jnp.int32)
    index = np.asarray(index)
    expected = [set(range(6)), {8, 7, 6, 1}, {9, 3, 8, 7}]
    for j in range(3):
        assert set(index[j].tolist()) == expected[j], j
    # Uniform draws: each of component 0's 6 points gets about 1/6 of them.
    freq = np.bincount(index[0], minlength=6) / 4000
    np.testing.assert_allclose(freq, np.full(6, 1 / 6), atol=0.03)


def test_sample_training_points_component_smaller_than_batch():
    """A one-point owned set fills a whole batch with that point."""
    owner = jnp.array([0, 0, 0, 1, 0, 0, 0, 0], jnp.int32)
    sets = assign.training_sets(assign.random_split(owner, 2, 0))
    index = np.asarray(assign.sample_training_points(sets, jax.random.PRNGKey(3), 16))
    chex.assert_shape(index, (2, 16))
    np.testing.assert_array_equal(index[1], np.full(16, 3))
    assert set(index[0].tolist()) <= {0, 1, 2, 4, 5, 6, 7}
