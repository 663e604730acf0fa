"""What every density-ratio estimator provides, and the host loops they share.

An estimator turns K generators and the N data points into log density
ratios `[N, K]`, log dP_gj/dP_X (x_i) up to a per-component constant, which
`assign.assign` normalises over the dataset (assign eq. 2). Its trainable
part (networks, optimizer states; empty for the kernel estimator) lives in
`MixtureState.disc` as a `Stack`, so it is checkpointed with the run.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from competitive_mixtures import points as points_lib
from competitive_mixtures import sharding
from competitive_mixtures.state import Stack


class RatioEstimator(Protocol):
    """The interface `train.run_round` uses (see `ratio/__init__.py` for the kinds)."""

    kind: str

    def init(self, key: jax.Array, example: jax.Array) -> Stack:
        """The estimator's fresh trainable state; `example` is `[B, *data_shape]`."""

    def fit(self, disc: Stack, gen: Stack, x: jax.Array, key: jax.Array,
            init_key: jax.Array, active: np.ndarray) -> tuple[Stack, dict]:
        """Fits to data `x` `[N, ...]` vs samples of the generators `gen` whose
        `active` (`[K]` bool) entry is set; returns the state and a record
        (losses) for `metrics.jsonl`."""

    def log_ratios(self, disc: Stack, gen: Stack, x: jax.Array, key: jax.Array) -> jax.Array:
        """`[N, K]` float32 log dP_gj/dP_X at every data point."""


def example_batch(x: points_lib.Data, key: jax.Array, size: int = 256) -> jax.Array:
    """`[size, ...]` points drawn with replacement: the shape to initialise networks with."""
    return points_lib.take(x, jax.random.randint(key, (size,), 0, x.shape[0]))


def run_chunks(step_fn: Callable, carry: Any, num_steps: np.ndarray, chunk: int,
               key: jax.Array, *args, groups: int = 1) -> tuple[Any, np.ndarray]:
    """Calls a chunked step until every component has taken its `num_steps` `[K]`.

    `step_fn(carry, *args, num_steps, offset, key[, group]) -> (carry, loss_sum [K],
    taken [K])`; with `groups` > 1 every chunk is one call per group of
    components (`steps.make_m_step`'s `group`). Returns the carry and the mean
    loss per component over the steps it took (NaN where it took none).
    """
    k = num_steps.shape[0]
    loss_sum, taken = np.zeros(k), np.zeros(k)
    num_steps_dev = jnp.asarray(num_steps, jnp.int32)
    size = k // groups
    group_args = [()] if groups == 1 else [(jnp.int32(g),) for g in range(groups)]
    for offset in range(0, int(num_steps.max(initial=0)), chunk):
        for g, group in enumerate(group_args):
            if num_steps[g * size:(g + 1) * size].max() <= offset:
                continue  # Every component of the group is done.
            carry, chunk_loss, chunk_taken = step_fn(carry, *args, num_steps_dev,
                                                     jnp.int32(offset), key, *group)
            # Fetching the sums each call also keeps the host in step with the device.
            loss_sum += np.asarray(chunk_loss)
            taken += np.asarray(chunk_taken)
    return carry, np.where(taken > 0, loss_sum / np.maximum(taken, 1), np.nan)


def stream_scores(score: Callable, mesh, stack: Stack, x: points_lib.Data,
                  batch_size: int) -> jax.Array:
    """`score(stack, batch)` over all N points in fixed-size batches -> `[N, K]`.

    `x` may be `Points` (every device scores the rows it holds, nothing
    moves), or an array on the host (numpy) or on the devices: then each
    batch is split over the devices and padded to one compiled shape.
    """
    if isinstance(x, points_lib.Points):
        return _score_points(score, stack, x, batch_size)
    n = x.shape[0]
    devices = mesh.devices.size
    batch_size = -(-min(batch_size, n) // devices) * devices
    points = sharding.points_sharding(mesh)
    parts = []
    for begin in range(0, n, batch_size):
        batch = np.asarray(x[begin:begin + batch_size])
        valid = batch.shape[0]
        if valid < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - valid,) + batch.shape[1:],
                                                    batch.dtype)])
        parts.append(score(stack, sharding.put(batch, points))[:valid])
    return jnp.concatenate(parts)


def _score_points(score: Callable, stack: Stack, points: points_lib.Points,
                  batch_size: int) -> jax.Array:
    """`stream_scores` of `Points`: every call scores the next `batch_size / D` rows of
    every device's share, so each device reads only its own rows."""
    devices = points.mesh.devices.size
    rows = points.x.shape[0] // devices
    chunk = max(1, min(batch_size // devices, rows))
    scores = None
    for begin in range(0, rows, chunk):
        # The last chunk ends at the share's end (it may overlap the one before).
        scores = _score_chunk(score, stack, points.x, scores, min(begin, rows - chunk), chunk,
                              points.mesh)
    return scores[:points.n]


@functools.partial(jax.jit, static_argnums=(0, 5, 6), donate_argnums=3)
def _score_chunk(score: Callable, stack: Stack, x: jax.Array, scores: jax.Array | None,
                 begin: jax.Array, chunk: int, mesh) -> jax.Array:
    """Scores rows begin..begin+chunk-1 of every device's share into `scores` `[D * R, K]`."""
    devices = mesh.devices.size
    split = sharding.points_sharding(mesh)
    by_device = x.reshape((devices, -1) + x.shape[1:])
    batch = jax.lax.dynamic_slice_in_dim(by_device, begin, chunk, axis=1)
    batch = jax.lax.with_sharding_constraint(batch.reshape((-1,) + x.shape[1:]), split)
    new = score(stack, batch)
    if scores is None:
        scores = jnp.zeros((x.shape[0], new.shape[1]), new.dtype)
    scores = scores.reshape(devices, -1, new.shape[1])
    scores = jax.lax.dynamic_update_slice_in_dim(scores, new.reshape(devices, chunk, -1),
                                                 begin, axis=1)
    return jax.lax.with_sharding_constraint(scores.reshape(x.shape[0], -1), split)


def losses(values: np.ndarray) -> list[float | None]:
    """Per-component losses for JSON: None where a component took no step."""
    return [float(v) if np.isfinite(v) else None for v in values]
