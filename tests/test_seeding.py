"""k-means++ seeding of the first split (competitive_mixtures/seeding.py)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from competitive_mixtures import seeding, strategies


def _blobs(k=5, per=200, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-20, 20, (k, 2))
    label = np.repeat(np.arange(k), per)
    return (centres[label] + rng.normal(size=(k * per, 2))).astype(np.float32), label


def test_kmeans_owner_finds_separated_blobs():
    x, label = _blobs()
    owner = seeding.kmeans_owner(jax.random.PRNGKey(0), jnp.asarray(x), 5)
    chex.assert_shape(owner, (len(x),))
    assert owner.dtype == jnp.int32
    assert normalized_mutual_info_score(label, np.asarray(owner)) > 0.99


def test_kmeans_plus_plus_picks_data_points_far_apart():
    x, label = _blobs(k=4, per=100, seed=1)
    centres = np.asarray(seeding.kmeans_plus_plus(jax.random.PRNGKey(3), jnp.asarray(x), 4))
    for c in centres:
        assert np.any(np.all(x == c, axis=1))  # every centre is one of the points
    # D^2 sampling on far-apart blobs puts one centre in each.
    blob_of_centre = [label[np.flatnonzero(np.all(x == c, axis=1))[0]] for c in centres]
    assert sorted(blob_of_centre) == [0, 1, 2, 3]


def test_lloyd_matches_a_hand_computed_step():
    x = jnp.asarray([[0.0], [1.0], [10.0], [11.0]])
    owner, inertia = seeding.lloyd(x, jnp.asarray([[0.0], [1.0]]), iterations=5)
    np.testing.assert_array_equal(np.asarray(owner), [0, 0, 1, 1])
    np.testing.assert_allclose(float(inertia), 4 * 0.25)


def test_uint8_images_are_scaled_not_wrapped():
    """Images are clustered as floats in [0, 1]: dark and bright images separate."""
    dark = np.zeros((20, 4, 4, 1), np.uint8)
    bright = np.full((20, 4, 4, 1), 250, np.uint8)
    owner = np.asarray(seeding.kmeans_owner(jax.random.PRNGKey(0),
                                            jnp.asarray(np.concatenate([dark, bright])), 2))
    assert len(set(owner[:20])) == 1 and len(set(owner[20:])) == 1 and owner[0] != owner[-1]


def test_initial_sets_take_the_seeded_owners():
    owner = jnp.asarray([0, 1, 1, 2, 2, 2], jnp.int32)
    strategy = strategies.get("competitive")
    got, sets = strategy.initial_sets(jax.random.PRNGKey(0), 6, 3, 1, owner=owner)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(owner))
    np.testing.assert_array_equal(np.asarray(sets.count), [1, 2, 3])
