"""Stacked K components equal K independent ones; the masked, chunked M-step."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from competitive_mixtures import assign, config as config_lib, models, sharding, stacking, steps
from competitive_mixtures.models import conv
from competitive_mixtures.models import discriminator as disc_models
from competitive_mixtures.models.base import LinenModel
from competitive_mixtures.ratio import discriminator as disc_lib

K = 3
B = 16
DATA_SHAPE = (2,)


def _unstack(tree, j):
    """Component j of a stacked tree, as numpy (no device ops)."""
    return jax.tree.map(lambda leaf: np.asarray(leaf)[j], tree)


def _kernel(tree):
    """The first stacked weight matrix `[K, in, out]` of a parameter tree."""
    return next(leaf for leaf in jax.tree.leaves(tree) if leaf.ndim == 3)


def _copy(tree):
    return jax.tree.map(lambda leaf: np.array(leaf), tree)


@pytest.fixture(scope="module")
def setup():
    config = config_lib.base_config()
    gen_model = models.generator(config, DATA_SHAPE)
    disc_model = disc_models.make(config, DATA_SHAPE)
    optimizer = optax.adam(config.model.learning_rate, b1=config.model.b1, b2=config.model.b2)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(B,) + DATA_SHAPE), jnp.float32)
    batch = jnp.asarray(rng.normal(size=(K, B) + DATA_SHAPE), jnp.float32)
    noise = jnp.asarray(rng.normal(size=(K, B) + gen_model.noise_shape), jnp.float32)
    fake = jnp.asarray(rng.normal(size=(K, B) + DATA_SHAPE) + 3.0, jnp.float32)
    keys = jax.random.split(jax.random.PRNGKey(1), K)
    return dict(config=config, gen_model=gen_model, disc_model=disc_model,
                optimizer=optimizer, x=x, batch=batch, noise=noise, fake=fake, keys=keys)


def _init(model, setup, x=None):
    """Jitted stacking.init from the fixture's keys and an example batch."""
    optimizer = setup["optimizer"]
    x = setup["x"] if x is None else x
    return jax.jit(lambda keys, x: stacking.init(model, optimizer, keys, x))(setup["keys"], x)


def _models(setup):
    """(model, one-component loss_fn, stacked batch args) for the VAE and the discriminator."""
    return {
        "vae": (setup["gen_model"], setup["gen_model"].loss, (setup["batch"], setup["noise"])),
        "disc": (setup["disc_model"], disc_lib.discriminator_loss(setup["disc_model"]),
                 ((setup["batch"], setup["fake"]),)),
    }


@pytest.mark.parametrize("name", ["vae", "disc"])
def test_init_equals_separate_inits(setup, name):
    """stacking.init gives K parameter sets equal to K separate model.init calls."""
    model, _, _ = _models(setup)[name]
    stack = _init(model, setup)
    leaves = jax.tree.leaves(stack.params)
    assert leaves and all(leaf.shape[0] == K for leaf in leaves)
    init_one = jax.jit(model.init)
    for j in range(K):
        params, model_state = init_one(setup["keys"][j], setup["x"])
        chex.assert_trees_all_close(_unstack(stack.params, j), params, rtol=1e-6)
        chex.assert_trees_all_equal_structs(_unstack(stack.model_state, j), model_state)
        chex.assert_trees_all_close(_unstack(stack.opt_state, j),
                                    setup["optimizer"].init(params), rtol=1e-6)
    # The K components differ from each other.
    kernel = _kernel(stack.params)
    assert not np.allclose(kernel[0], kernel[1])


@pytest.mark.parametrize("name", ["vae", "disc"])
def test_loss_grad_and_update_equal_separate(setup, name):
    """vmapped loss/grad and one update_fn step equal K separate computations."""
    model, loss_fn, args = _models(setup)[name]
    optimizer = setup["optimizer"]
    stack = _init(model, setup)

    value_and_grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    (loss, _), grads = jax.jit(jax.vmap(value_and_grad))(stack.params, stack.model_state,
                                                         *args)
    chex.assert_shape(loss, (K,))
    update = jax.jit(stacking.update_fn(loss_fn, optimizer))
    new_stack, step_loss = update(stack, *args)

    @jax.jit
    def adam_step(grads, opt_state, params):
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    for j in range(K):
        params = _unstack(stack.params, j)
        state = _unstack(stack.model_state, j)
        args_j = [_unstack(a, j) for a in args]
        (loss_j, _), grads_j = value_and_grad(params, state, *args_j)
        np.testing.assert_allclose(loss[j], loss_j, rtol=1e-5)
        np.testing.assert_allclose(step_loss[j], loss_j, rtol=1e-5)
        chex.assert_trees_all_close(_unstack(grads, j), grads_j, rtol=1e-5, atol=1e-6)
        new_params, opt_state = adam_step(grads_j, _unstack(stack.opt_state, j), params)
        chex.assert_trees_all_close(_unstack(new_stack.params, j), new_params, rtol=1e-5,
                                    atol=1e-6)
        chex.assert_trees_all_close(_unstack(new_stack.opt_state, j), opt_state, rtol=1e-5,
                                    atol=1e-7)


def test_select_picks_per_component(setup):
    """select(mask, a, b) takes component j from a where mask[j], else from b."""
    a = {"w": jnp.zeros((K, 2, 3)), "b": jnp.zeros((K,))}
    b = {"w": jnp.ones((K, 2, 3)), "b": jnp.ones((K,))}
    got = stacking.select(jnp.array([True, False, True]), a, b)
    np.testing.assert_array_equal(got["w"][:, 0, 0], [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(got["w"][1], np.ones((2, 3)))
    np.testing.assert_array_equal(got["b"], [0.0, 1.0, 0.0])


def test_all_finite_flags_nan_component(setup):
    """A NaN anywhere in component 1 flags only component 1; integer leaves are ignored."""
    stack = _init(setup["gen_model"], setup)
    np.testing.assert_array_equal(stacking.all_finite(stack.params), [True, True, True])
    np.testing.assert_array_equal(stacking.all_finite(stack.opt_state), [True, True, True])
    leaves, treedef = jax.tree.flatten(stack.params)
    leaves[-1] = leaves[-1].at[1].set(leaves[-1][1] * jnp.nan)
    broken = jax.tree.unflatten(treedef, leaves)
    np.testing.assert_array_equal(stacking.all_finite(broken), [True, False, True])
    inf = jax.tree.map(lambda leaf: leaf.at[2, 0].set(jnp.inf), stack.params)
    np.testing.assert_array_equal(stacking.all_finite(inf), [True, True, False])


_TRACES = []


@dataclasses.dataclass(frozen=True)
class _CountingModel(LinenModel):
    """LinenModel that records each trace of its loss."""

    def loss(self, params, model_state, x, noise):
        _TRACES.append(1)
        return super().loss(params, model_state, x, noise)


def _m_step_inputs(setup, n=60):
    model = _CountingModel(setup["gen_model"].module)
    x = jnp.asarray(np.random.default_rng(5).normal(size=(n,) + DATA_SHAPE), jnp.float32)
    owner = jnp.arange(n, dtype=jnp.int32) % K
    sets = assign.training_sets(assign.random_split(owner, K, 0))
    return model, x, sets


def test_m_step_masks_components_and_does_not_retrace(setup):
    """num_steps [0, 3, 5]: component 0 untouched; new step counts/offsets reuse one trace."""
    model, x, sets = _m_step_inputs(setup)
    optimizer = setup["optimizer"]
    mesh = sharding.make_mesh()
    m_step = steps.make_m_step(model, optimizer, batch_size=8, chunk=4, mesh=mesh)
    # Replicated on the mesh, as m_step returns it: a fresh single-device state
    # would be traced once more on its second call (a sharding change, not a value one).
    gen0 = jax.device_put(_init(model, setup, x[:8]), sharding.replicated(mesh))
    initial = _copy(gen0)
    num_steps = jnp.array([0, 3, 5], jnp.int32)
    key = jax.random.PRNGKey(7)

    del _TRACES[:]
    gen, loss_sum, taken = m_step(gen0, x, sets, num_steps, jnp.int32(0), key)
    traces = len(_TRACES)
    assert traces >= 1
    np.testing.assert_array_equal(taken, [0, 3, 4])
    gen, loss_sum2, taken2 = m_step(gen, x, sets, num_steps, jnp.int32(4), key)
    np.testing.assert_array_equal(taken2, [0, 0, 1])
    assert float(loss_sum[0]) == 0.0 and float(loss_sum2[0]) == 0.0
    assert np.all(np.isfinite(np.asarray(loss_sum))) and float(loss_sum[1]) > 0

    # Component 0 took no step: parameters and optimizer state are exactly as initialised.
    chex.assert_trees_all_equal(_unstack(gen.params, 0), _unstack(initial.params, 0))
    chex.assert_trees_all_equal(_unstack(gen.opt_state, 0), _unstack(initial.opt_state, 0))
    adam_count = np.asarray(gen.opt_state[0].count)
    np.testing.assert_array_equal(adam_count, [0, 3, 5])
    for j in (1, 2):
        assert not np.allclose(_kernel(gen.params)[j], _kernel(initial.params)[j])

    # Other step counts and offsets: still one trace.
    for steps_, offset in (([2, 0, 1], 0), ([7, 7, 7], 4), ([0, 0, 0], 8), ([1, 9, 0], 12)):
        gen, _, taken = m_step(gen, x, sets, jnp.array(steps_, jnp.int32), jnp.int32(offset),
                               jax.random.PRNGKey(offset))
        expected = np.clip(np.array(steps_) - offset, 0, 4)
        np.testing.assert_array_equal(taken, expected)
    assert len(_TRACES) == traces


def test_m_step_result_does_not_depend_on_chunking(setup):
    """Two chunks of 4 steps equal one chunk of 8 (step s uses fold_in(key, s))."""
    model, x, sets = _m_step_inputs(setup)
    optimizer = setup["optimizer"]
    num_steps = jnp.array([0, 3, 5], jnp.int32)
    key = jax.random.PRNGKey(7)

    gen = _init(model, setup, x[:8])
    small = steps.make_m_step(model, optimizer, batch_size=8, chunk=4,
                                mesh=sharding.make_mesh())
    gen, _, _ = small(gen, x, sets, num_steps, jnp.int32(0), key)
    gen, _, _ = small(gen, x, sets, num_steps, jnp.int32(4), key)

    big = steps.make_m_step(model, optimizer, batch_size=8, chunk=8,
                             mesh=sharding.make_mesh())
    gen_big, _, taken = big(_init(model, setup, x[:8]), x, sets,
                            num_steps, jnp.int32(0), key)
    np.testing.assert_array_equal(taken, [0, 3, 5])
    chex.assert_trees_all_close(gen.params, gen_big.params, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["sequential", "map"])
def test_sequential_logits_equal_vmapped(mode):
    """Scoring the K discriminators one after another gives the vmapped logits."""
    model = LinenModel(disc_models.ConvDiscriminator(channels=(4, 8), kernel=3))
    x = jnp.asarray(np.random.default_rng(0).integers(0, 256, (6, 16, 16, 1), np.uint8))
    stack = stacking.init(model, optax.sgd(0.1), jax.random.split(jax.random.PRNGKey(0), 3), x)
    vmapped = stacking.logits(model, stack, x)
    other = jax.jit(lambda s, v: stacking.logits(model, s, v, mode))(stack, x)
    chex.assert_shape(other, (6, 3))
    chex.assert_trees_all_close(other, vmapped, rtol=1e-5, atol=1e-6)


def test_sequential_samples_equal_vmapped():
    """Sampling the K generators one after another gives the vmapped samples."""
    model = LinenModel(conv.ConvVAE(encoder_channels=(2, 4), decoder_channels=(4, 2), kernel=3,
                                    latent=2, image_shape=(8, 8, 1)))
    x = jnp.zeros((4, 8, 8, 1), jnp.uint8)
    stack = stacking.init(model, optax.sgd(0.1), jax.random.split(jax.random.PRNGKey(0), 3), x)
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    vmapped = stacking.sample(model, stack, keys, 5, sequential=False)
    sequential = jax.jit(lambda s, k: stacking.sample(model, s, k, 5, sequential=True))(stack, keys)
    chex.assert_shape(sequential, (3, 5, 8, 8, 1))
    chex.assert_trees_all_close(sequential, vmapped, rtol=1e-5, atol=1e-6)
