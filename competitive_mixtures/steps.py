"""Pure, jitted step functions for all K components at once.

Each training function runs a chunk of steps inside one `jax.lax.scan`; the
host calls it once per chunk. Batches are gathered by index from the dataset
array inside the step. Components that need different numbers of steps share
one compiled program: a component past its own step count is masked (its
parameters and optimizer state pass through unchanged), and a step where every
component is done is skipped with `lax.cond`.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from competitive_mixtures import assign, stacking
from competitive_mixtures.models.base import LinenModel
from competitive_mixtures.state import Stack


def _scan_chunk(step: Callable, carry: Stack, num_steps: jax.Array, offset: jax.Array,
                key: jax.Array, chunk: int, num_components: int):
    """Runs `step(carry, step_key) -> (carry, loss [K])` for steps offset..offset+chunk-1.

    Step s uses the key `fold_in(key, s)`, so results do not depend on how the
    steps are split into chunks. `num_steps` is `[K]` (or a scalar for all).
    Returns the carry and the summed loss and number of steps taken, each `[K]`.
    """
    num_steps = jnp.broadcast_to(num_steps, (num_components,))

    def body(carry, s):
        index = offset + s
        active = index < num_steps

        def run(carry):
            new, loss = step(carry, jax.random.fold_in(key, index))
            return stacking.select(active, new, carry), jnp.where(active, loss, 0.0)

        carry, loss = jax.lax.cond(active.any(), run,
                                   lambda c: (c, jnp.zeros((num_components,))), carry)
        return carry, (loss, active)

    carry, (loss, active) = jax.lax.scan(body, carry, jnp.arange(chunk))
    return carry, loss.sum(0), active.sum(0)


def make_m_step(model: LinenModel, optimizer: optax.GradientTransformation,
                batch_size: int, chunk: int) -> Callable:
    """M-step: every component trains on batches from its own training set.

    Returns a jitted
    `m_step(gen, x [N, ...], sets, num_steps [K], offset, key) -> (gen, loss_sum [K], steps [K])`
    that donates `gen`.
    """
    update = stacking.update_fn(model.loss, optimizer)

    @functools.partial(jax.jit, donate_argnums=0)
    def m_step(gen: Stack, x: jax.Array, sets: assign.TrainingSets, num_steps: jax.Array,
               offset: jax.Array, key: jax.Array):
        k = sets.count.shape[0]

        def step(gen, step_key):
            index_key, loss_key = jax.random.split(step_key)
            batch = x[assign.sample_training_points(sets, index_key, batch_size)]
            return update(gen, batch, jax.random.split(loss_key, k))

        return _scan_chunk(step, gen, num_steps, offset, key, chunk, k)

    return m_step


def discriminator_loss(disc_model: LinenModel, gen_model: LinenModel):
    """Binary cross-entropy of one discriminator: data -> 1, its generator's samples -> 0."""
    def loss(d_params, d_state, real, key, g_params, g_state):
        fake = gen_model.sample(g_params, g_state, key, real.shape[0])
        real_logits = disc_model.apply(d_params, d_state, real)
        fake_logits = disc_model.apply(d_params, d_state, fake)
        value = jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
        return value, d_state
    return loss


def make_disc_step(disc_model: LinenModel, gen_model: LinenModel,
                   optimizer: optax.GradientTransformation, batch_size: int,
                   chunk: int) -> Callable:
    """Discriminator fit: D_j sees points drawn uniformly from the WHOLE dataset as real.

    Returns a jitted
    `disc_step(disc, gen, x, num_steps, offset, key) -> (disc, loss_sum [K], steps [K])`
    that donates `disc`.
    """
    update = stacking.update_fn(discriminator_loss(disc_model, gen_model), optimizer)

    @functools.partial(jax.jit, donate_argnums=0)
    def disc_step(disc: Stack, gen: Stack, x: jax.Array, num_steps: jax.Array,
                  offset: jax.Array, key: jax.Array):
        k = jax.tree.leaves(gen.params)[0].shape[0]

        def step(disc, step_key):
            index_key, sample_key = jax.random.split(step_key)
            index = jax.random.randint(index_key, (k, batch_size), 0, x.shape[0])
            return update(disc, x[index], jax.random.split(sample_key, k),
                          gen.params, gen.model_state)

        return _scan_chunk(step, disc, num_steps, offset, key, chunk, k)

    return disc_step


def make_scorer(model: LinenModel, exact: bool) -> Callable:
    """Log density ratios of one batch of points for all K components.

    With `exact=False` `model` is the discriminator and the ratio is `-logit`
    (assign eq. 1); with `exact=True` `model` is the generator and the score is
    its exact log-likelihood (the common log p_X(x_i) cancels in the argmax).

    Returns a jitted `score(stack, x [B, ...]) -> [B, K]`.
    """
    @jax.jit
    def score(stack: Stack, x: jax.Array) -> jax.Array:
        if exact:
            return stacking.log_likelihood(model, stack, x)
        return assign.log_ratio_from_logits(stacking.logits(model, stack, x))
    return score


@functools.partial(jax.jit, static_argnames=("model", "num_samples"))
def sample_mixture(model: LinenModel, gen: Stack, alpha: jax.Array, key: jax.Array,
                   num_samples: int) -> tuple[jax.Array, jax.Array]:
    """Samples of the mixture: j ~ Categorical(alpha), then x ~ g_j.

    Returns `x` `[n, *data_shape]` and `component` `[n]` int32.
    """
    component_key, sample_key = jax.random.split(key)
    k = alpha.shape[0]
    component = jax.random.categorical(component_key, jnp.log(alpha), shape=(num_samples,))
    every = stacking.sample(model, gen, jax.random.split(sample_key, k), num_samples)
    return every[component, jnp.arange(num_samples)], component.astype(jnp.int32)
