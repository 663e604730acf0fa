"""experiments/latent_fit.py: reconstructions and samples from fitted latent codes.

Its run on a finished digits run is checked in test_image_run.py, on that run.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from competitive_mixtures import stacking
from competitive_mixtures.experiments import latent_fit
from competitive_mixtures.models.base import LinenModel
from competitive_mixtures.models.conv import ConvVAE

LATENT = 3


@pytest.fixture(scope="module")
def two_vaes():
    """(model, a stack of two differently initialised small conv VAEs, uint8 digits [8, ...])."""
    model = LinenModel(ConvVAE(encoder_channels=(4, 8), decoder_channels=(8, 4), kernel=4,
                               latent=LATENT, image_shape=(28, 28, 1)))
    x = jax.random.randint(jax.random.key(0), (8, 28, 28, 1), 0, 256).astype(jnp.uint8)
    gen = stacking.init(model, optax.adam(1e-3), jax.random.split(jax.random.key(1), 2), x)
    return model, gen, np.asarray(x)


def _by_hand(model, gen, j, x):
    """Component j alone: latent means, ELBO at them, and their decoded images."""
    params, state = stacking.component(gen.params, j), stacking.component(gen.model_state, j)
    mean = model.latent_mean(params, state, x)
    elbo = model.elbo(params, state, x, jnp.zeros_like(mean))
    return np.asarray(mean), np.asarray(elbo), np.asarray(model.decode_mean(params, state, mean))


def test_decode_mean_is_the_samplers_image(two_vaes):
    model, gen, _ = two_vaes
    params, state = stacking.component(gen.params, 0), stacking.component(gen.model_state, 0)
    variables = {"params": params, **state}
    key = jax.random.key(3)
    sampled = model.module.apply(variables, 5, rngs={"noise": key}, method="sample")
    # The sampler's code: the first half of its 'noise' stream's split.
    decoded = model.module.apply(
        variables, 5, rngs={"noise": key},
        method=lambda m, n: m.decode_mean(
            jax.random.normal(jax.random.split(m.make_rng("noise"))[0], (n, m.latent))))
    np.testing.assert_allclose(decoded, sampled, rtol=1e-6)


def test_reconstructions_come_from_the_component_with_the_best_elbo(two_vaes):
    model, gen, x = two_vaes
    hand = [_by_hand(model, gen, j, x) for j in range(2)]
    best = np.argmax(np.stack([h[1] for h in hand]), axis=0)
    expected = np.stack([hand[j][2][i] for i, j in enumerate(best)])
    np.testing.assert_allclose(latent_fit.reconstructions(model, gen, np.array([0.5, 0.5]), x),
                               expected, atol=1e-5)
    # A component without weight decodes nothing; the two components differ.
    only = [latent_fit.reconstructions(model, gen, np.eye(2)[j], x) for j in range(2)]
    for j in range(2):
        np.testing.assert_allclose(only[j], hand[j][2], atol=1e-5)
    assert np.abs(only[0] - only[1]).max() > 1e-2


# Two Gaussians fitted to copies of one point find one cluster, and say so.
@pytest.mark.filterwarnings("ignore:Number of distinct clusters")
def test_fitted_codes_of_copies_of_one_digit_decode_to_its_reconstruction(two_vaes):
    """A component that owns four copies of one image has all its latent means in
    one place: its fitted codes decode to that image's reconstruction, and its
    prior codes do not."""
    model, gen, x = two_vaes
    train = np.concatenate([np.repeat(x[:1], 4, axis=0), np.repeat(x[1:2], 4, axis=0)])
    owner = np.repeat([0, 1], 4)
    images, counts = latent_fit.generated(model, gen, np.array([0.5, 0.5]), owner, train,
                                          [1, 2], num_samples=30, seed=0)
    assert counts.sum() == 30 and counts.min() > 0
    assert set(images) == {"prior", "fitted 1", "fitted 2"}
    own = np.concatenate([np.repeat(_by_hand(model, gen, j, x[j:j + 1])[2], counts[j], axis=0)
                          for j in range(2)])
    for name in ("fitted 1", "fitted 2"):
        assert images[name].shape == (30, 28, 28, 1)
        np.testing.assert_allclose(images[name], own, atol=2e-3)
    assert np.abs(images["prior"] - own).max() > 1e-2
    # A component that draws images needs points to fit its codes to.
    with pytest.raises(ValueError, match="owns 1 training points"):
        latent_fit.generated(model, gen, np.array([0.5, 0.5]), np.array([0] * 7 + [1]), train,
                             [1], num_samples=30, seed=0)
