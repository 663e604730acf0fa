"""Lemma 2: competitive training of single-centroid models is Lloyd's k-means."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from competitive_mixtures import assign, config as config_lib, data as data_lib, models
from competitive_mixtures import stacking, train
from competitive_mixtures.models import kmeans
from competitive_mixtures.state import Stack


def _lloyd_round(x, owner, mu):
    """One numpy Lloyd round: M-step (empty cluster keeps its centroid), then E-step."""
    k = mu.shape[0]
    new_mu = mu.copy()
    for j in range(k):
        if np.any(owner == j):
            new_mu[j] = x[owner == j].mean(axis=0)
    sq = ((x[:, None, :] - new_mu[None]) ** 2).sum(-1)
    return np.argmin(sq, axis=1), new_mu  # argmin: ties to the lowest index.


def _config(k):
    c = config_lib.base_config()
    c.model.family = "kmeans"
    c.ratio.kind = "exact"
    c.strategy = "competitive"
    c.num_components = k
    c.balance.min_points = 0
    c.data.name = "gaussians"
    c.data.modes = 3
    c.data.num_points = 900
    c.data.num_heldout = 10
    c.assign.batch_size = 256  # Several scoring batches, the last one padded.
    return c


@pytest.mark.parametrize("k", [3, 4])
def test_competitive_kmeans_equals_lloyd(k):
    """From the package's initial split, run_round and Lloyd agree after every round."""
    config = _config(k)
    config_lib.validate(config)
    dataset = data_lib.load(config)
    programs = train.make_programs(config, dataset.data_shape)
    assert programs.exact
    x = jnp.asarray(dataset.x, jnp.float32)
    state = train.init_state(config, programs, x)

    x64 = np.asarray(dataset.x, np.float64)
    owner = np.asarray(state.owner)
    mu = np.asarray(state.gen.params["mu"], np.float64)
    assert mu.shape == (k, 2)
    np.testing.assert_array_equal(np.bincount(owner, minlength=k),
                                  np.full(k, 900 // k))  # The random round-robin split.
    initial_owner = owner.copy()
    for r in range(6):
        state, record = train.run_round(config, programs, state, x)
        before = owner
        owner, mu = _lloyd_round(x64, owner, mu)
        assert record["moved"] == pytest.approx(np.mean(owner != before), abs=1e-12)
        assert record["round"] == r and int(state.round) == r + 1
        np.testing.assert_array_equal(np.asarray(state.owner), owner, err_msg=f"round {r}")
        np.testing.assert_allclose(np.asarray(state.gen.params["mu"]), mu, rtol=1e-5,
                                   atol=1e-5, err_msg=f"round {r}")
        np.testing.assert_array_equal(record["counts"], np.bincount(owner, minlength=k))
        np.testing.assert_allclose(record["alphas"], np.bincount(owner, minlength=k) / 900,
                                   rtol=1e-6)
    # The comparison is not vacuous: points moved away from the random split.
    assert np.mean(owner != initial_owner) > 0.3


def test_centroid_model():
    """Centroid: one parameter mu; loss and log-likelihood are the unit Gaussian's."""
    model = models.generator(_config(1), (2,))
    x = jnp.array([[1.0, 2.0], [3.0, -1.0]])
    params, model_state = model.init(jax.random.PRNGKey(0), x)
    assert jax.tree.map(jnp.shape, params) == {"mu": (2,)}
    params = {"mu": jnp.array([1.0, 1.0])}
    loss, _ = model.loss(params, model_state, x, jnp.zeros((2,)))
    np.testing.assert_allclose(loss, 0.5 * (1.0 + 8.0) / 2, rtol=1e-6)
    np.testing.assert_allclose(model.log_likelihood(params, model_state, x),
                               [-0.5 - np.log(2 * np.pi), -4.0 - np.log(2 * np.pi)], rtol=1e-6)


def test_fit_centroids_keeps_empty_cluster_centroid():
    """An empty, unbalanced cluster keeps its previous centroid; a balanced one uses best."""
    x = jnp.array([[0.0, 0.0], [2.0, 0.0], [10.0, 4.0], [12.0, 6.0]])
    owner = jnp.array([0, 0, 2, 2], jnp.int32)
    previous = jnp.array([[1.0, 1.0], [-5.0, 7.0], [0.0, 0.0]])
    best = jnp.array([[0, 1], [1, 2], [2, 3]], jnp.int32)
    mu = kmeans.fit_centroids(x, owner, best, jnp.array([False, False, False]), previous)
    np.testing.assert_allclose(mu, [[1.0, 0.0], [-5.0, 7.0], [11.0, 5.0]])
    mu = kmeans.fit_centroids(x, owner, best, jnp.array([False, True, False]), previous)
    np.testing.assert_allclose(mu[1], [6.0, 2.0])


def test_normalised_ratio_can_differ_from_lloyd():
    """With eq. (2)'s normalisation a far centroid wins a point nearer to the other one."""
    gen_model = models.generator(_config(2), (2,))
    stack = Stack(params={"mu": jnp.array([[0.0, 0.0], [20.0, 0.0]])}, model_state={},
                  opt_state=None)
    x = jnp.array([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0], [9.0, 0.0]])
    scores = stacking.log_likelihood(gen_model, stack, x)
    np.testing.assert_allclose(scores[:, 0] - scores[:, 1], [200.0, 190.0, 180.0, 20.0],
                               rtol=1e-5)
    exact = assign.assign(scores, 0, normalise_ratio=False)
    normalised = assign.assign(scores, 0, normalise_ratio=True)
    np.testing.assert_array_equal(exact.owner, [0, 0, 0, 0])  # Lloyd: nearest centroid.
    np.testing.assert_array_equal(normalised.owner, [0, 0, 0, 1])
