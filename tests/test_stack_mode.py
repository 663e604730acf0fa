"""The M-step with the K components run one after another equals the vmapped one."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from competitive_mixtures import assign, config as config_lib, models, sharding, stacking, steps
from competitive_mixtures.models import conv
from competitive_mixtures.models.base import LinenModel

K = 2
N = 40
IMAGE_SHAPE = (8, 8, 1)


def _conv_vae(stack_mode: str) -> LinenModel:
    """A tiny conv VAE with batch norm (statistics averaged over the mesh axis)."""
    return LinenModel(conv.ConvVAE(encoder_channels=(2, 4), decoder_channels=(4, 2), kernel=3,
                                   latent=2, image_shape=IMAGE_SHAPE, axis_name=sharding.AXIS),
                      stack_mode=stack_mode)


def _run(model: LinenModel, unroll: bool):
    """Three steps of every component (one masked for component 0) from one initial stack."""
    optimizer = optax.adam(0.01)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.integers(0, 256, size=(N,) + IMAGE_SHAPE), jnp.uint8)
    sets = assign.training_sets(assign.random_split(jnp.arange(N, dtype=jnp.int32) % K, K, 0))
    gen = stacking.init(dataclasses.replace(model, module=model.module.clone(axis_name=None)),
                        optimizer, jax.random.split(jax.random.PRNGKey(1), K), x[:8])
    m_step = steps.make_m_step(model, optimizer, batch_size=8, chunk=3,
                               mesh=sharding.make_mesh(), unroll=unroll)
    return m_step(gen, x, sets, jnp.array([2, 3], jnp.int32), jnp.int32(0),
                  jax.random.PRNGKey(2))


def test_sequential_m_step_equals_vmapped():
    gen_v, loss_v, taken_v = _run(_conv_vae("vmap"), unroll=False)
    gen_s, loss_s, taken_s = _run(_conv_vae("sequential"), unroll=False)
    np.testing.assert_array_equal(taken_s, taken_v)
    np.testing.assert_array_equal(taken_s, [2, 3])
    chex.assert_trees_all_close(loss_s, loss_v, rtol=1e-5)
    # Parameters, batch-norm statistics and Adam state.
    chex.assert_trees_all_close(gen_s, gen_v, rtol=1e-4, atol=1e-5)


def test_stack_step_rejects_unknown_mode():
    with pytest.raises(ValueError, match="stack mode"):
        stacking.stack_step(lambda *args: args, "loop")


def test_config_stack_mode_reaches_the_model_and_is_validated():
    config = config_lib.base_config()
    config.stack_mode = "sequential"
    config_lib.validate(config)
    assert models.generator(config, (2,)).stack_mode == "sequential"
    config.stack_mode = "loop"
    with pytest.raises(config_lib.ConfigError, match="stack_mode"):
        config_lib.validate(config)
    config.stack_mode = "sequential"
    config.model.family = "gan"
    with pytest.raises(config_lib.ConfigError, match="stack_mode"):
        config_lib.validate(config)
