"""The M-step with the K components run one after another equals the vmapped one."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from competitive_mixtures import assign, config as config_lib, loops, models, sharding
from competitive_mixtures import stacking, steps, train
from competitive_mixtures.metrics import elbo
from competitive_mixtures.models import conv, vae
from competitive_mixtures.models import discriminator as disc_models
from competitive_mixtures.models.base import LinenModel
from competitive_mixtures.ratio import discriminator as disc_lib
from conftest import load_config

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


def test_sequential_disc_step_equals_vmapped():
    """The discriminator fit (K updates and K generators' samples) in both forms."""
    gen_model = _conv_vae("vmap")
    disc_model = LinenModel(disc_models.ConvDiscriminator(channels=(4, 8), kernel=3))
    optimizer = optax.adam(0.01)
    x = jnp.asarray(np.random.default_rng(0).integers(0, 256, size=(N,) + IMAGE_SHAPE),
                    jnp.uint8)
    gen = stacking.init(dataclasses.replace(gen_model, module=gen_model.module.clone(
        axis_name=None)), optimizer, jax.random.split(jax.random.PRNGKey(1), K), x[:8])
    disc = stacking.init(disc_model, optimizer, jax.random.split(jax.random.PRNGKey(3), K),
                         x[:8])
    out = {}
    for mode in ("vmap", "sequential"):
        step = disc_lib.make_disc_step(disc_model, gen_model, optimizer, batch_size=8, chunk=1,
                                    mesh=sharding.make_mesh(), unroll=True, stack_mode=mode)
        d = jax.tree.map(jnp.copy, disc)
        for offset in range(3):
            d, loss, taken = step(d, gen, x, jnp.array([3, 2], jnp.int32), jnp.int32(offset),
                                  jax.random.PRNGKey(4))
        out[mode] = d
    chex.assert_trees_all_close(out["sequential"], out["vmap"], rtol=1e-4, atol=1e-5)

    # One discriminator per call, each on its own slices of the stacks (the CPU form of
    # conv steps): the same fit, and each call touches only its group's networks.
    step = disc_lib.make_disc_step(disc_model, gen_model, optimizer, batch_size=8, chunk=1,
                                mesh=sharding.make_mesh(), unroll=True,
                                stack_mode="sequential", group=1)
    assert isinstance(step, steps.GroupedStep) and step.stacked_args == (0,)
    grouped, loss = loops.run_chunks(step, jax.tree.map(jnp.copy, disc), np.array([3, 2]), 1,
                                     jax.random.PRNGKey(4), gen, x, groups=K)
    chex.assert_trees_all_close(grouped, out["sequential"], rtol=1e-5, atol=1e-6)
    part, loss, taken = step.part_step(step.split(jax.tree.map(jnp.copy, disc))[1],
                                       step.split(gen)[1], x, jnp.array([3, 2], jnp.int32),
                                       jnp.int32(0), jax.random.PRNGKey(4), jnp.int32(1))
    np.testing.assert_array_equal(taken, [0, 1])
    assert loss[0] == 0 and loss[1] > 0
    assert jax.tree.leaves(part.params)[0].shape[0] == 1


def test_heldout_elbo_in_the_sequential_form_equals_the_vmapped_one():
    """The held-out ELBO of conv VAEs, scored side by side on CPU, as vmapped."""
    x = jnp.asarray(np.random.default_rng(0).integers(0, 256, size=(N,) + IMAGE_SHAPE),
                    jnp.uint8)
    model = _conv_vae("vmap")
    gen = stacking.init(dataclasses.replace(model, module=model.module.clone(axis_name=None)),
                        optax.adam(0.01), jax.random.split(jax.random.PRNGKey(1), K), x[:8])
    out = {}
    for mode in ("vmap", "sequential"):
        local = dataclasses.replace(_conv_vae(mode), module=model.module.clone(axis_name=None))
        out[mode] = elbo.heldout_elbo(local, gen, np.array([0.3, 0.7]), np.asarray(x),
                                      jax.random.PRNGKey(2), batch_size=16)
    assert out["sequential"]["mixture"] == pytest.approx(out["vmap"]["mixture"], rel=1e-5)
    np.testing.assert_allclose(out["sequential"]["components"], out["vmap"]["components"],
                               rtol=1e-5)


@pytest.mark.parametrize("mode", ["sequential", "vmap"])
def test_grouped_calls_equal_one_call(mode):
    """Training K=4 components two at a time (one compiled program for both groups) equals
    training all four in each call: the same random numbers reach each component."""
    k, n = 4, 48
    model = LinenModel(vae.MLPVAE(hidden=(8,), latent=2, data_dim=2), stack_mode=mode)
    optimizer = optax.adam(0.01)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(n, 2)), jnp.float32)
    sets = assign.training_sets(assign.random_split(jnp.arange(n, dtype=jnp.int32) % k, k, 0))
    gen = stacking.init(model, optimizer, jax.random.split(jax.random.PRNGKey(1), k), x[:8])
    num_steps = np.array([3, 1, 2, 0])
    out = {}
    for group in (0, 2):
        step = steps.make_m_step(model, optimizer, batch_size=8, chunk=1,
                                 mesh=sharding.make_mesh(), unroll=True, group=group)
        out[group] = loops.run_chunks(step, jax.tree.map(jnp.copy, gen), num_steps, 1,
                                           jax.random.PRNGKey(2), x, sets,
                                           groups=k // steps.group_size(k, group))
    chex.assert_trees_all_close(out[2][0], out[0][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[2][1], out[0][1], rtol=1e-5)
    assert np.isnan(out[2][1][3])  # Component 3 took no step.

    # Grouped, a run saved after a chunk and resumed from the saved (whole) stack ends
    # where the uninterrupted one does.
    step = steps.make_m_step(model, optimizer, batch_size=8, chunk=1,
                             mesh=sharding.make_mesh(), unroll=True, group=2)
    assert isinstance(step, steps.GroupedStep)
    saved = []
    loops.run_chunks(step, jax.tree.map(jnp.copy, gen), num_steps, 1, jax.random.PRNGKey(2), x,
                     sets, groups=2, save=lambda carry, progress: saved.append((carry, progress)))
    carry, progress = saved[0]
    assert progress.offset == 1
    chex.assert_tree_shape_prefix(carry.params, (k,))
    resumed = loops.run_chunks(step, carry, num_steps, 1, jax.random.PRNGKey(2), x, sets,
                               groups=2, resume=progress)
    chex.assert_trees_all_close(resumed[0], out[2][0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(resumed[1], out[2][1], rtol=1e-6)
    assert steps.group_size(15, 5) == 5 and steps.group_size(7, 5) == 1
    assert steps.group_size(10, 0) == 10 and steps.group_size(3, 5) == 3


def test_auto_mode_is_sequential_for_convolutions_on_cpu():
    assert jax.default_backend() == "cpu"
    assert sharding.resolve_stack_mode("auto", convolutional=True) == "sequential"
    assert sharding.resolve_stack_mode("auto", convolutional=False) == "vmap"
    assert sharding.resolve_stack_mode("vmap", convolutional=True) == "vmap"
    with pytest.raises(ValueError, match="stack mode"):
        sharding.resolve_stack_mode("loop", convolutional=True)


def test_stack_step_rejects_unknown_mode():
    with pytest.raises(ValueError, match="stack mode"):
        stacking.stack_step(lambda *args: args, "loop")


def test_config_stack_mode_reaches_the_model_and_is_validated():
    config = config_lib.base_config()
    assert models.generator(config, (2,)).stack_mode == "vmap"  # 'auto' for an MLP VAE
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


def test_vae_encoder_log_variance_cannot_overflow():
    """An encoder that outputs a huge log-variance (as one diverging under Adam does)
    gives a finite ELBO: its log-variance is clipped like the decoder's."""
    module = vae.MLPVAE(hidden=(8,), latent=2, data_dim=2)
    x = jnp.ones((4, 2))
    params = module.init(jax.random.PRNGKey(0), x, jnp.zeros((4, 2)), method="elbo")
    last = sorted(k for k in params["params"]["encoder"])[-1]
    bias = params["params"]["encoder"][last]["bias"]
    params["params"]["encoder"][last]["bias"] = bias.at[2:].set(500.0)  # exp(250) overflows.
    elbo = module.apply(params, x, jnp.ones((4, 2)), method="elbo")
    assert np.all(np.isfinite(np.asarray(elbo)))


def _compiled_steps(config) -> str:
    """The compiled text of one call of the M-step and of the discriminator step."""
    programs = train.make_programs(config, (28, 28, 1))
    k = config.num_components
    x = jnp.zeros((64, 28, 28, 1), jnp.uint8)
    state = train.init_state(config, programs, x)
    zeros, key = jnp.zeros(k, jnp.int32), jax.random.PRNGKey(0)
    group = (jnp.int32(0),) if programs.m_groups > 1 else ()
    m_step = programs.m_step.lower(state.gen, x, state.sets, zeros, jnp.int32(0), key, *group)
    group = (jnp.int32(0),) if programs.ratio.groups > 1 else ()
    disc_step = programs.disc_step.lower(state.disc, state.gen, x, zeros, jnp.int32(0), key,
                                         *group)
    return m_step.compile().as_text() + disc_step.compile().as_text()


def test_one_device_steps_have_no_collectives(monkeypatch):
    """On one device the conv steps are built without the mesh axis: no all-reduce is
    compiled into them (XLA:CPU would keep one over the single device)."""
    config = load_config("mnist", "offline,small")
    config.num_components = 2
    assert sharding.step_axis(sharding.make_mesh()) is None
    assert "all-reduce" not in _compiled_steps(config)
    # Built over the mesh axis (as on several devices), the same steps average over it.
    monkeypatch.setattr(sharding, "step_axis", lambda mesh: sharding.AXIS)
    assert "all-reduce" in _compiled_steps(config)
