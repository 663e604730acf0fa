"""Pure, jitted step functions for all K components at once, on 1 to N devices.

Each training function runs a chunk of steps inside one `jax.lax.scan`; the
host calls it once per chunk. Per step, the global batch `[K, B, ...]` is
chosen by index and the per-example noise drawn for the whole batch, both
split over the mesh's `data` axis; the update itself is a per-device program
(`jax.shard_map`) that averages gradients across devices. Because every
random number is drawn for the global batch, a run gives the same result on
one device and on many.

Components that need different numbers of steps share one compiled program:
a component past its own step count is masked (its parameters and optimizer
state pass through unchanged), and a step where every component is done is
skipped with `lax.cond`.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec as P
import optax

from competitive_mixtures import assign
from competitive_mixtures import points as points_lib
from competitive_mixtures import sharding
from competitive_mixtures import stacking
from competitive_mixtures.models.base import LinenModel, gradient_step
from competitive_mixtures.state import Stack

_BATCH = P(None, sharding.AXIS)


def _scan_chunk(step: Callable, carry: Stack, num_steps: jax.Array, offset: jax.Array,
                key: jax.Array, chunk: int, num_components: int, unroll: bool = False,
                draw: Callable | None = None):
    """Runs `step(carry, step_key) -> (carry, loss [K])` for steps offset..offset+chunk-1.

    Step s uses the key `fold_in(key, s)`, so results do not depend on how the
    steps are split into chunks. `num_steps` is `[K]` (or a scalar for all).
    With `draw(step_key) -> drawn`, the random numbers of every step of the
    chunk are drawn before its loop, all at once, and step s runs as
    `step(carry, drawn_s)`: the same numbers, but one random-number program
    per chunk instead of several small ones per step (on XLA:CPU each is a
    loop of its own, a large part of a small model's step).
    With `unroll` the chunk is compiled as straight-line code without the
    all-done skip: XLA:CPU runs convolutions inside loop and branch bodies
    several times slower than outside them.
    Returns the carry and the summed loss and number of steps taken, each `[K]`.
    """
    num_steps = jnp.broadcast_to(num_steps, (num_components,))
    step_keys = jax.vmap(lambda s: jax.random.fold_in(key, offset + s))(jnp.arange(chunk))
    inputs = jax.vmap(draw)(step_keys) if draw else step_keys

    def body(carry, xs):
        s, step_input = xs
        index = offset + s
        active = index < num_steps

        def run(carry):
            new, loss = step(carry, step_input)
            return stacking.select(active, new, carry), jnp.where(active, loss, 0.0)

        if unroll:
            carry, loss = run(carry)
        else:
            carry, loss = jax.lax.cond(active.any(), run,
                                       lambda c: (c, jnp.zeros((num_components,))), carry)
        return carry, (loss, active)

    xs = (jnp.arange(chunk), inputs)
    if unroll:
        # Python steps: lax.scan keeps a loop for a chunk of one step even unrolled.
        outputs = []
        for s in range(chunk):
            carry, output = body(carry, jax.tree.map(lambda leaf, s=s: leaf[s], xs))
            outputs.append(output)
        loss, active = jax.tree.map(lambda *leaves: jnp.stack(leaves), *outputs)
    else:
        carry, (loss, active) = jax.lax.scan(body, carry, xs)
    return carry, loss.sum(0), active.sum(0)


def _sharded(component_step: Callable, mesh: Mesh, num_batch_args: int,
             stack_mode: str = "vmap") -> Callable:
    """A component step over K (`stacking.stack_step`) as a per-device program:
    state replicated, batch args split on B (their axis 1)."""
    return jax.shard_map(stacking.stack_step(component_step, stack_mode), mesh=mesh,
                         in_specs=(P(),) + (_BATCH,) * num_batch_args, out_specs=(P(), P()))


def _constrain(x: jax.Array, mesh: Mesh) -> jax.Array:
    return jax.lax.with_sharding_constraint(x, sharding.batch_sharding(mesh))


def take_batch(x: points_lib.Data, index: jax.Array, mesh: Mesh) -> jax.Array:
    """The points `index` `[K, B, ...]` as a batch split on B."""
    if isinstance(x, points_lib.Points):
        return points_lib.take(x, index, split_axis=1)
    return x[_constrain(index, mesh)]


def make_m_step(model, optimizer, batch_size: int, chunk: int, mesh: Mesh,
                unroll: bool = False) -> Callable:
    """M-step: every component trains on batches from its own training set.

    A step gives each component `batch_size` points drawn from its set, or
    `batch_size` examples of `model.draws_per_example` points (a GAN whose
    critic takes several steps per generator step), and the noise its loss
    takes; `model.make_step` does the component's update.

    Returns a jitted
    `m_step(gen, x [N, ...], sets, num_steps [K], offset, key) -> (gen, loss_sum [K], steps [K])`
    that donates `gen`. `x` is `points.Points` (split over the devices) or an
    array replicated on every device.
    """
    if getattr(model, "whole_batch_statistics", False):
        # Losses that are not means over examples (kernel statistics of the
        # whole batch): the global-view step, partitioned by XLA from the
        # batch's sharding, rather than a per-device program.
        update = stacking.vmap_step(model.make_step(optimizer))
    else:
        update = _sharded(model.make_step(optimizer, axis_name=sharding.AXIS), mesh,
                          num_batch_args=2, stack_mode=getattr(model, "stack_mode", "vmap"))
    draws = model.draws_per_example  # None: one point per example.

    @functools.partial(jax.jit, donate_argnums=0)
    def m_step(gen: Stack, x: points_lib.Data, sets: assign.TrainingSets, num_steps: jax.Array,
               offset: jax.Array, key: jax.Array):
        k = sets.count.shape[0]

        def draw(step_key):
            index_key, noise_key = jax.random.split(step_key)
            index = assign.sample_training_points(sets, index_key, batch_size * (draws or 1))
            if draws:
                index = index.reshape(k, batch_size, draws)
            noise = jax.random.normal(noise_key, (k, batch_size) + model.noise_shape)
            return index, noise

        def step(gen, drawn):
            index, noise = drawn
            return update(gen, take_batch(x, index, mesh), _constrain(noise, mesh))

        return _scan_chunk(step, gen, num_steps, offset, key, chunk, k, unroll, draw)

    return m_step


def discriminator_loss(disc_model: LinenModel) -> Callable:
    """Binary cross-entropy of one discriminator on `batch = (real, fake)`: data -> 1,
    its generator's samples -> 0."""
    def loss(params, model_state, batch):
        real, fake = batch
        real_logits = disc_model.apply(params, model_state, real)
        fake_logits = disc_model.apply(params, model_state, fake)
        value = jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
        return value, model_state
    return loss


def make_disc_step(disc_model: LinenModel, gen_model: LinenModel,
                   optimizer: optax.GradientTransformation, batch_size: int,
                   chunk: int, mesh: Mesh, unroll: bool = False) -> Callable:
    """Discriminator fit: D_j sees points drawn uniformly from the WHOLE dataset as real.

    Returns a jitted
    `disc_step(disc, gen, x, num_steps, offset, key) -> (disc, loss_sum [K], steps [K])`
    that donates `disc`.
    """
    update = _sharded(gradient_step(discriminator_loss(disc_model), optimizer, sharding.AXIS),
                      mesh, num_batch_args=1)

    @functools.partial(jax.jit, donate_argnums=0)
    def disc_step(disc: Stack, gen: Stack, x: points_lib.Data, num_steps: jax.Array,
                  offset: jax.Array, key: jax.Array):
        k = jax.tree.leaves(gen.params)[0].shape[0]

        def step(disc, step_key):
            index_key, sample_key = jax.random.split(step_key)
            index = jax.random.randint(index_key, (k, batch_size), 0, x.shape[0])
            fake = stacking.sample(gen_model, gen, jax.random.split(sample_key, k), batch_size)
            return update(disc, (take_batch(x, index, mesh), _constrain(fake, mesh)))

        return _scan_chunk(step, disc, num_steps, offset, key, chunk, k, unroll)

    return disc_step


def make_scorer(model: LinenModel, exact: bool, mesh: Mesh,
                sequential: bool = False) -> Callable:
    """Log density ratios of one batch of points for all K components.

    With `exact=False` `model` is the discriminator and the ratio is `-logit`
    (assign eq. 1); with `exact=True` `model` is the generator and the score is
    its exact log-likelihood (the common log p_X(x_i) cancels in the argmax).
    Each device scores its slice of the batch with all K networks (one after
    another with `sequential`, see `stacking.logits`).

    Returns a jitted `score(stack, x [B, ...]) -> [B, K]`, B split over devices.
    """
    def local(stack: Stack, x: jax.Array) -> jax.Array:
        if exact:
            return stacking.log_likelihood(model, stack, x)
        return assign.log_ratio_from_logits(stacking.logits(model, stack, x, sequential))

    return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P(), P(sharding.AXIS)),
                                 out_specs=P(sharding.AXIS)))


def make_assigner(mesh: Mesh, min_points: int, normalise_ratio: bool) -> Callable:
    """The assignment pass's arithmetic on scores `[N, K]` split over devices.

    N need not divide by the device count: the scores are padded with rows of
    -inf that own nothing. Returns a jitted
    `assigner(log_ratio) -> (assign.Assignment, assign.TrainingSets)` whose
    results equal those of `assign.assign` on one device.
    """
    def local(log_ratio: jax.Array, valid: jax.Array) -> assign.Assignment:
        return assign.assign(log_ratio, min_points, normalise_ratio, sharding.AXIS, valid)

    per_device = jax.shard_map(
        local, mesh=mesh, in_specs=(P(sharding.AXIS), P(sharding.AXIS)),
        out_specs=assign.Assignment(owner=P(sharding.AXIS), count=P(), best=P(), balanced=P()),
        # `best` comes from an all_gather, identical on every device by construction.
        check_vma=False)
    devices = mesh.devices.size

    @jax.jit
    def assigner(log_ratio: jax.Array):
        n = log_ratio.shape[0]
        pad = -n % devices
        padded = jnp.pad(log_ratio, ((0, pad), (0, 0)), constant_values=-jnp.inf)
        result = per_device(padded, jnp.arange(n + pad) < n)
        result = result.replace(owner=result.owner[:n])
        return result, assign.training_sets(result)

    return assigner


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
