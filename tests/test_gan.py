"""GAN components: spectral norm, gradient penalty, stacked vs separate steps, a tiny run."""

import dataclasses
import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from competitive_mixtures import config as config_lib, models, stacking, train
from competitive_mixtures import restore
from competitive_mixtures.models import gan
from conftest import load_config

K = 3
B = 8


def _top_singular_value(kernel) -> float:
    matrix = np.asarray(kernel).reshape(-1, kernel.shape[-1])
    return float(np.linalg.svd(matrix, compute_uv=False)[0])


@pytest.mark.parametrize("critic, x", [
    (gan.MLPCritic(hidden=(16, 16)), jnp.ones((4, 5))),
    (gan.ConvCritic(filters=8, kernel=3), jnp.ones((2, 28, 28, 1))),
])
def test_spectral_norm_bounds_top_singular_value(critic, x):
    """After enough power iterations each normalised kernel has top singular value ~1."""
    variables = critic.init(jax.random.PRNGKey(0), x, train=False)
    stats = variables["batch_stats"]
    # Scaled so that no kernel starts near a unit singular value.
    params = jax.tree.map(lambda p: 3.0 * p, variables["params"])
    raw = [_top_singular_value(leaf) for leaf in jax.tree.leaves(params) if leaf.ndim >= 2]
    assert min(raw) > 2.0

    @jax.jit
    def power_step(stats):
        _, mutated = critic.apply({"params": params, "batch_stats": stats}, x, train=True,
                                  mutable=["batch_stats"])
        return mutated["batch_stats"]

    for _ in range(50):
        stats = power_step(stats)
    sigmas = {path: leaf for path, leaf in jax.tree_util.tree_flatten_with_path(stats)[0]
              if path[-1].key.endswith("sigma")}
    kernels = [leaf for leaf in jax.tree.leaves(params) if leaf.ndim >= 2]
    assert len(sigmas) == len(kernels)
    for sigma, kernel in zip(sigmas.values(), kernels):
        # Flax orders both by layer name; the estimate matches the SVD.
        np.testing.assert_allclose(float(sigma), _top_singular_value(kernel), rtol=1e-3)
        assert abs(_top_singular_value(np.asarray(kernel) / float(sigma)) - 1.0) < 1e-3


def test_gradient_penalty_matches_hand_computation():
    """Linear critic: grad = w everywhere; quadratic critic: grad = 2 x_hat."""
    rng = np.random.default_rng(0)
    real = rng.normal(size=(4, 3)).astype(np.float32)
    fake = rng.normal(size=(4, 3)).astype(np.float32)
    eps = np.array([0.0, 0.25, 0.5, 1.0], np.float32)
    w = np.array([0.3, -1.2, 2.0], np.float32)

    linear = gan.gradient_penalty(lambda v: v @ w + 1.0, real, fake, eps)
    np.testing.assert_allclose(float(linear), (np.linalg.norm(w) - 1.0) ** 2, rtol=1e-5)

    quadratic = gan.gradient_penalty(lambda v: jnp.sum(v ** 2, axis=1), real, fake, eps)
    x_hat = eps[:, None] * real + (1 - eps[:, None]) * fake
    expected = np.mean((np.linalg.norm(2 * x_hat, axis=1) - 1.0) ** 2)
    np.testing.assert_allclose(float(quadratic), expected, rtol=1e-5)


def _gan_config(loss: str, images: bool = False, generator_ema: float = 0.0):
    c = config_lib.base_config()
    c.gan.generator_ema = generator_ema
    c.model.family = "gan"
    c.model.hidden = (16, 16)
    c.model.latent = 4
    c.gan.critic_hidden = (16, 16)
    c.gan.filters = 8
    c.gan.loss = loss
    c.gan.critic_steps = 2 if loss == "wgan_gp" else 1
    return c


def _batch(model, data_shape, seed=0):
    rng = np.random.default_rng(seed)
    draws = model.draws_per_example
    x = rng.normal(size=(K, B, draws) + data_shape).astype(np.float32)
    if len(data_shape) == 3:
        x = rng.integers(0, 256, size=(K, B, draws) + data_shape).astype(np.uint8)
    noise = rng.normal(size=(K, B) + model.noise_shape).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(noise)


@pytest.mark.parametrize("loss, data_shape, generator_ema", [
    ("ns", (2,), 0.0), ("wgan_gp", (2,), 0.0), ("ns", (16, 16, 1), 0.0), ("ns", (2,), 0.9)])
def test_stacked_gan_step_equals_separate_steps(loss, data_shape, generator_ema):
    """One vmapped M-step of K GANs equals K single-component steps (critic + generator)."""
    config = _gan_config(loss, generator_ema=generator_ema)
    model = models.generator(config, data_shape)
    if len(data_shape) == 3:  # Batch-norm statistics of one device, outside a mesh.
        model = dataclasses.replace(model, generator=model.generator.clone(axis_name=None))
    optimizer = models.generator_optimizer(config)
    example = jnp.zeros((B,) + data_shape, jnp.float32)
    keys = jax.random.split(jax.random.PRNGKey(1), K)
    stack = stacking.init(model, optimizer, keys, example)
    x, noise = _batch(model, data_shape)

    stacked, losses = jax.jit(stacking.vmap_step(model.make_step(optimizer)))(stack, x, noise)
    one = jax.jit(model.make_step(optimizer))
    for j in range(K):
        pick = lambda tree: jax.tree.map(lambda leaf: leaf[j], tree)
        params, model_state, opt_state, loss_j = one(
            pick(stack.params), pick(stack.model_state), pick(stack.opt_state), x[j], noise[j])
        chex.assert_trees_all_close(pick(stacked.params), params, atol=1e-5, rtol=1e-5)
        chex.assert_trees_all_close(pick(stacked.model_state), model_state, atol=1e-5,
                                    rtol=1e-5)
        np.testing.assert_allclose(losses[j], loss_j, rtol=1e-5)
    # Both networks moved, and components stayed apart.
    for part in ("generator", "critic"):
        before = jax.tree.leaves(stack.params[part])[0]
        after = jax.tree.leaves(stacked.params[part])[0]
        assert not np.allclose(before, after)
    chex.assert_tree_all_finite(stacked.params)


def test_generator_average_follows_the_live_generator_and_is_what_samples():
    """g_bar <- d g_bar + (1 - d) g after each step, from the initial weights; samples
    come from g_bar; without averaging there is no average and samples are g's."""
    decay = 0.9
    model = models.generator(_gan_config("ns", generator_ema=decay), (2,))
    optimizer = models.generator_optimizer(_gan_config("ns"))
    x, noise = _batch(model, (2,))
    params, model_state = model.init(jax.random.PRNGKey(0), jnp.zeros((B, 2)))
    chex.assert_trees_all_equal(model_state["generator_ema"], params["generator"])
    step = jax.jit(model.make_step(optimizer))
    expected = params["generator"]
    opt_state = optimizer.init(params)
    for j in range(3):
        params, model_state, opt_state, _ = step(params, model_state, opt_state, x[j], noise[j])
        expected = jax.tree.map(lambda a, w: decay * a + (1 - decay) * w, expected,
                                params["generator"])
    chex.assert_trees_all_close(model_state["generator_ema"], expected, rtol=1e-6, atol=1e-7)
    key = jax.random.PRNGKey(5)
    z = jax.random.normal(key, (16, model.latent))
    average = model.generator.apply({"params": expected}, z, train=False)
    live = model.generator.apply({"params": params["generator"]}, z, train=False)
    samples = model.sample(params, model_state, key, 16)
    np.testing.assert_allclose(samples, average, rtol=1e-5, atol=1e-6)
    assert not np.allclose(samples, live, atol=1e-4)

    plain = models.generator(_gan_config("ns"), (2,))
    params, model_state = plain.init(jax.random.PRNGKey(0), jnp.zeros((B, 2)))
    assert "generator_ema" not in model_state
    np.testing.assert_allclose(plain.sample(params, model_state, key, 16),
                               plain.generator.apply({"params": params["generator"]}, z,
                                                     train=False), rtol=1e-6)


@pytest.mark.parametrize("image_shape, filters", [((28, 28, 1), 4), ((64, 64, 3), 8)])
def test_conv_gan_shapes(image_shape, filters):
    """DCGAN nets at both image sizes: samples in [0, 1] of the image shape, one logit each."""
    generator = gan.ConvGenerator(filters=filters, image_shape=image_shape)
    critic = gan.ConvCritic(filters=filters)
    z = jnp.ones((2, 4))
    gen_vars = generator.init(jax.random.PRNGKey(0), z, train=False)
    images = generator.apply(gen_vars, z, train=False)
    chex.assert_shape(images, (2,) + image_shape)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    crit_vars = critic.init(jax.random.PRNGKey(1), images, train=False)
    chex.assert_shape(critic.apply(crit_vars, images, train=False), (2,))
    widths = [leaf.shape[-1] for leaf in jax.tree.leaves(crit_vars["params"])
              if leaf.ndim == 4]
    assert max(widths) == filters


def test_bad_gan_config_is_rejected():
    c = load_config("gan_ring", "tiny")
    c.gan.loss = "hinge"
    with pytest.raises(config_lib.ConfigError, match="gan.loss"):
        config_lib.validate(c)
    c = load_config("gan_ring", "tiny")
    c.gan.filters = 48
    with pytest.raises(config_lib.ConfigError, match="gan.filters"):
        config_lib.validate(c)
    c = load_config("gan_ring", "tiny")
    c.gan.generator_ema = 1.0
    with pytest.raises(config_lib.ConfigError, match="gan.generator_ema"):
        config_lib.validate(c)


def test_tiny_competitive_gan_run_on_ring(tmp_path):
    """Competitive GANs on ring-8 end to end: files, counts, mode metrics, sampling,
    the averaged generators checkpointed and restored."""
    config = load_config("gan_ring", "tiny")
    config.gan.generator_ema = 0.99
    summary = train.train_and_evaluate(config, str(tmp_path))
    assert sum(summary["counts"]) == config.data.num_points
    # The components own whole modes of the ring (measured NMI 0.96 on the 2-core CPU;
    # random owners score near 0); the tiny run is too short to sample them well.
    assert summary["clustering"]["nmi"] > 0.9, summary["clustering"]
    assert 0 <= summary["modes"]["high_quality_share"] <= 1
    assert np.isfinite(summary["kde"]["log_likelihood"])
    for name in ("summary.json", "assignments.npz", "figures/owners_and_samples.png"):
        assert os.path.exists(tmp_path / name), name
    with open(tmp_path / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f]
    assert len(records) == config.num_rounds + 1
    assert all(np.isfinite(v) for r in records for v in r["gen_loss"] if v is not None)
    # Resuming a finished run restores the GAN state (two optimizers, critic
    # power-iteration vectors, averaged generators) and trains nothing more.
    again = train.train_and_evaluate(config, str(tmp_path))
    assert again["counts"] == summary["counts"]
    assert again["modes"] == summary["modes"]
    _, _, state = restore.restore_run(str(tmp_path))
    average, live = state.gen.model_state["generator_ema"], state.gen.params["generator"]
    chex.assert_trees_all_equal_shapes(average, live)
    assert jax.tree.leaves(average)[0].shape[0] == config.num_components
    assert not np.allclose(jax.tree.leaves(average)[0], jax.tree.leaves(live)[0])
