"""Pure, jitted step functions for all K components at once, on 1 to N devices.

Each training function runs a chunk of steps inside one `jax.lax.scan`; the
host calls it once per chunk. Per step, the global batch `[K, B, ...]` is
chosen by index and the per-example noise drawn for the whole batch, both
split over the mesh's `data` axis; the update itself is a per-device program
(`jax.shard_map`) that averages gradients across devices. Because every
random number is drawn for the global batch, a run gives the same result on
one device and on many.

The host drives them with `loops.run_chunks` (training) and
`loops.stream_scores` (scoring all N points in fixed-size batches).

Components that need different numbers of steps share one compiled program:
a component past its own step count is masked (its parameters and optimizer
state pass through unchanged), and a step where every component is done is
skipped with `lax.cond`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec as P

from competitive_mixtures import assign
from competitive_mixtures import points as points_lib
from competitive_mixtures import sharding
from competitive_mixtures import stacking
from competitive_mixtures.models.base import LinenModel
from competitive_mixtures.models.conv import binarize_images
from competitive_mixtures.state import Stack

_BATCH = P(None, sharding.AXIS)


def scan_chunk(step: Callable, carry: Stack, num_steps: jax.Array, offset: jax.Array,
                key: jax.Array, chunk: int, num_components: int, unroll: bool = False,
                draw: Callable | None = None, members: jax.Array | None = None):
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
    `members` (`[K]` bool) restricts the chunk to some components (a group,
    see `component_group`); the others take no step. Then `step(carry,
    step_input, active [K])` keeps the components that are not `active` as
    they are itself, so that only its group's slice of the carry is touched.
    Returns the carry and the summed loss and number of steps taken, each `[K]`.
    """
    num_steps = jnp.broadcast_to(num_steps, (num_components,))
    if members is not None:
        num_steps = jnp.where(members, num_steps, 0)
    step_keys = jax.vmap(lambda s: jax.random.fold_in(key, offset + s))(jnp.arange(chunk))
    inputs = jax.vmap(draw)(step_keys) if draw else step_keys

    def body(carry, xs):
        s, step_input = xs
        index = offset + s
        active = index < num_steps

        def run(carry):
            if members is not None:  # The step masks its group's components itself.
                new, loss = step(carry, step_input, active)
                return new, jnp.where(active, loss, 0.0)
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
    state replicated, batch args split on B (their axis 1).

    `component_step` averages over `sharding.step_axis(mesh)`; on one device
    that is None, it has no collectives, and the replication check, which
    would add some, is off.
    """
    return jax.shard_map(stacking.stack_step(component_step, stack_mode), mesh=mesh,
                         in_specs=(P(),) + (_BATCH,) * num_batch_args, out_specs=(P(), P()),
                         check_vma=sharding.step_axis(mesh) is not None)


def group_size(num_components: int, largest: int) -> int:
    """Components per call of a sequential step: the largest divisor of K that is at
    most `largest` (0: all K in one call)."""
    if largest <= 0 or largest >= num_components:
        return num_components
    return max(d for d in range(1, largest + 1) if num_components % d == 0)


def calls(mode: str, num_components: int, steps_per_chunk: int, unroll: bool,
          stack_group: int) -> tuple[int, bool, int]:
    """(steps per call, unrolled, components per call) of a stacked step in `mode`;
    0 components per call: all K in one call.

    A sequential step holds one copy of the component's step per component of
    the call, so it runs one step per call, on groups of at most
    `stack_group` components, to keep its compilation short.
    """
    if mode == "sequential":
        size = group_size(num_components, stack_group)
        return 1, True, size if size < num_components else 0
    return steps_per_chunk, unroll, 0


def component_group(tree, group: jax.Array | None, size: int):
    """The components [group * size, (group + 1) * size) of a stacked pytree (`[K, ...]`
    leaves); all of it when `group` is None."""
    if group is None:
        return tree
    return jax.tree.map(lambda leaf: jax.lax.dynamic_slice_in_dim(leaf, group * size, size), tree)


def _put_group(tree, part, group: jax.Array | None, size: int):
    """`tree` with its components of `group` replaced by `part` (see `component_group`)."""
    if group is None:
        return part
    return jax.tree.map(
        lambda leaf, new: jax.lax.dynamic_update_slice_in_dim(leaf, new, group * size, 0),
        tree, part)


def _members(num_components: int, group: jax.Array | None, size: int) -> jax.Array | None:
    return None if group is None else jnp.arange(num_components) // size == group


def _group_update(update: Callable, part: Stack, group: jax.Array | None, size: int, k: int,
                  active: jax.Array | None, *batch_args) -> tuple[Stack, jax.Array]:
    """`update` (a stacked step) on one group's components `part`; `[K]` losses, 0 elsewhere.

    `part` is the whole stack when `group` is None. With `active` (`[K]` bool)
    the group's inactive components keep their state.
    """
    new, loss = update(part, *batch_args)
    if active is not None:
        new = stacking.select(component_group(active, group, size), new, part)
    if group is None:
        return new, loss
    return new, _put_group(jnp.zeros((k,), loss.dtype), loss, group, size)


@dataclasses.dataclass(frozen=True)
class GroupedStep:
    """A chunked step whose every call trains one group of `size` of the K components.

    `part_step(part, *args, num_steps [K], offset, key, group) -> (part, loss_sum
    [K], taken [K])` takes and returns only the group's slice of the stacked
    carry (and donates it); the args at `stacked_args` are stacked over K too
    and are passed as the group's slice. `run_chunks` slices the carry into
    its groups once, before the first call, and stacks them again after the
    last: on XLA:CPU a conv step that picked its components out of the whole
    stack inside the compiled program ran at 0.6-0.8x of a loop of
    one-component steps. A call of the step itself takes the whole stack,
    for callers that make one call.
    """

    part_step: Callable
    size: int
    stacked_args: tuple[int, ...] = ()

    def split(self, tree) -> list:
        """The groups' slices of a stacked pytree, in group order."""
        return list(_split(tree, self.size))

    def split_args(self, args: tuple, groups: int) -> list[tuple]:
        """Every group's args, the stacked ones (at `stacked_args`) sliced."""
        parts = {i: self.split(args[i]) for i in self.stacked_args}
        return [tuple(parts[i][g] if i in parts else a for i, a in enumerate(args))
                for g in range(groups)]

    def __call__(self, carry, *args_and_calls):
        *args, num_steps, offset, key, group = args_and_calls
        parts = self.split(carry)
        g = int(group)
        parts[g], loss, taken = self.part_step(
            parts[g], *self.split_args(tuple(args), len(parts))[g], num_steps, offset, key, group)
        return merge(parts), loss, taken

    def lower(self, carry, *args_and_calls):
        """The compiled program of one call (group 0), for cost analysis."""
        *args, num_steps, offset, key, group = args_and_calls
        parts = self.split(carry)
        return self.part_step.lower(parts[0], *self.split_args(tuple(args), len(parts))[0],
                                    num_steps, offset, key, group)


@functools.partial(jax.jit, static_argnums=1)
def _split(tree, size: int) -> tuple:
    k = jax.tree.leaves(tree)[0].shape[0]
    if k % size:
        raise ValueError(f"groups of {size} do not divide K = {k}")
    return tuple(jax.tree.map(lambda leaf, g=g: leaf[g * size:(g + 1) * size], tree)
                 for g in range(k // size))


@jax.jit
def merge(parts) -> Any:
    """One stacked pytree from its groups' slices (`GroupedStep.split`)."""
    return jax.tree.map(lambda *leaves: jnp.concatenate(leaves), *parts)


def _constrain(x: jax.Array, mesh: Mesh) -> jax.Array:
    return jax.lax.with_sharding_constraint(x, sharding.batch_sharding(mesh))


def take_batch(x: points_lib.Data, index: jax.Array, mesh: Mesh) -> jax.Array:
    """The points `index` `[K, B, ...]` as a batch split on B."""
    if isinstance(x, points_lib.Points):
        return points_lib.take(x, index, split_axis=1)
    return x[_constrain(index, mesh)]


def make_m_step(model, optimizer, batch_size: int, chunk: int, mesh: Mesh,
                unroll: bool = False, group: int = 0) -> Callable:
    """M-step: every component trains on batches from its own training set.

    A step gives each component `batch_size` points drawn from its set, or
    `batch_size` examples of `model.draws_per_example` points (a GAN whose
    critic takes several steps per generator step), and the noise its loss
    takes; `model.make_step` does the component's update.

    Returns a jitted
    `m_step(gen, x [N, ...], sets, num_steps [K], offset, key)
    -> (gen, loss_sum [K], steps [K])` that donates `gen`. `x` is
    `points.Points` (split over the devices) or an array replicated on every
    device. With `group` > 0 it returns a `GroupedStep` whose calls train
    the `group` components of their int32 group argument, on their own slice
    of `gen` (one compiled program for every group; the random numbers of a
    component do not depend on grouping).
    """
    if getattr(model, "whole_batch_statistics", False):
        # Losses that are not means over examples (kernel statistics of the
        # whole batch): the global-view step, partitioned by XLA from the
        # batch's sharding, rather than a per-device program.
        update = stacking.vmap_step(model.make_step(optimizer))
    else:
        update = _sharded(model.make_step(optimizer, axis_name=sharding.step_axis(mesh)), mesh,
                          num_batch_args=2, stack_mode=model.stack_mode)
    draws = model.draws_per_example  # None: one point per example.

    @functools.partial(jax.jit, donate_argnums=0)
    def m_step(gen: Stack, x: points_lib.Data, sets: assign.TrainingSets, num_steps: jax.Array,
               offset: jax.Array, key: jax.Array, group_index: jax.Array | None = None):
        # `gen` is the components of group `group_index` only, when grouped.
        k = sets.count.shape[0]
        size = group_size(k, group)

        def draw(step_key):
            index_key, noise_key = jax.random.split(step_key)
            index = assign.sample_training_points(sets, index_key, batch_size * (draws or 1))
            if draws:
                index = index.reshape(k, batch_size, draws)
            noise = jax.random.normal(noise_key, (k, batch_size) + model.noise_shape)
            return index, noise

        def step(gen, drawn, active=None):
            index, noise = component_group(drawn, group_index, size)
            return _group_update(update, gen, group_index, size, k, active,
                                 take_batch(x, index, mesh), _constrain(noise, mesh))

        return scan_chunk(step, gen, num_steps, offset, key, chunk, k, unroll, draw,
                           _members(k, group_index, size))

    return GroupedStep(m_step, group) if group else m_step


def make_scorer(model: LinenModel, exact: bool, mesh: Mesh, mode: str = "vmap",
                binarize: bool = False) -> Callable:
    """Log density ratios of one batch of points for all K components.

    With `exact=False` `model` is the discriminator and the ratio is `-logit`
    (assign eq. 1); with `exact=True` `model` is the generator and the score is
    its exact log-likelihood (the common log p_X(x_i) cancels in the argmax).
    Each device scores its slice of the batch with all K networks, as `mode`
    says ('vmap', 'sequential' or 'map', see `stacking.logits`).

    With `binarize` the discriminators score each image binarised at grey level
    0.5, the most likely of its binarisations (see `make_disc_step`).

    Returns a jitted `score(stack, x [B, ...]) -> [B, K]`, B split over devices.
    """
    def score(stack: Stack, x: jax.Array) -> jax.Array:
        if binarize:
            x = binarize_images(None, x)
        if exact:
            return stacking.log_likelihood(model, stack, x)
        return assign.log_ratio_from_logits(stacking.logits(model, stack, x, mode))

    return jax.jit(jax.shard_map(score, mesh=mesh, in_specs=(P(), P(sharding.AXIS)),
                                 out_specs=P(sharding.AXIS)))


def make_assigner(mesh: Mesh, min_points: int, normalise_ratio: bool) -> Callable:
    """The assignment pass's arithmetic on scores `[N, K]` split over devices.

    N need not divide by the device count: the scores are padded with rows of
    -inf that own nothing. Returns a jitted
    `assigner(log_ratio, active=None) -> (assign.Assignment, assign.TrainingSets)`
    whose results equal those of `assign.assign` on one device; `active`
    (`[K]` bool, all when None) is an argument, so a change of the active
    components compiles nothing.
    """
    def local(log_ratio: jax.Array, valid: jax.Array, active: jax.Array) -> assign.Assignment:
        return assign.assign(log_ratio, min_points, normalise_ratio, sharding.AXIS, valid,
                             active)

    per_device = jax.shard_map(
        local, mesh=mesh, in_specs=(P(sharding.AXIS), P(sharding.AXIS), P()),
        out_specs=assign.Assignment(owner=P(sharding.AXIS), count=P(), best=P(), balanced=P()),
        # `best` comes from an all_gather, identical on every device by construction.
        check_vma=False)
    devices = mesh.devices.size

    @jax.jit
    def assigner(log_ratio: jax.Array, active: jax.Array | None = None):
        n, k = log_ratio.shape
        pad = -n % devices
        padded = jnp.pad(log_ratio, ((0, pad), (0, 0)), constant_values=-jnp.inf)
        active = jnp.ones((k,), bool) if active is None else active
        result = per_device(padded, jnp.arange(n + pad) < n, active)
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
