"""Host loops that drive the compiled steps: chunks of training steps with progress,
and scores of all N points streamed in fixed-size batches.

They log, time, fetch and (on several processes) agree across hosts; the
steps they call are the pure, jitted functions of `steps.py`.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable

from absl import logging
import jax
import jax.numpy as jnp
from jax.experimental import multihost_utils
import numpy as np

from competitive_mixtures import points as points_lib
from competitive_mixtures import sharding
from competitive_mixtures.state import Progress, Stack
from competitive_mixtures.steps import GroupedStep, merge


def run_chunks(step_fn: Callable, carry: Any, num_steps: np.ndarray, chunk: int,
               key: jax.Array, *args, groups: int = 1, label: str | None = None,
               log_every_s: float = 60.0, resume: Progress | None = None,
               save: Callable[[Any, Progress], None] | None = None,
               save_every_s: float = 0.0) -> tuple[Any, np.ndarray]:
    """Calls a chunked step until every component has taken its `num_steps` `[K]`.

    `step_fn(carry, *args, num_steps, offset, key[, group]) -> (carry, loss_sum [K],
    taken [K])`; with `groups` > 1 every chunk is one call per group of
    components (`steps.make_m_step`'s `group`), and a `GroupedStep` gets its
    group's slice of the carry (sliced once here, stacked again for `save` and
    at the end). With `label`, logs the steps
    taken and an estimate of the time left every `log_every_s` seconds.
    With `save`, calls `save(carry, progress)` after the first chunk that ends
    `save_every_s` seconds or more after the last save (or the start), and
    `resume` (a progress saved so) carries on from there: step s always uses
    the key `fold_in(key, s)`, so the carry and the losses come out as those
    of an uninterrupted call. Returns the carry and the mean loss per
    component over the steps it took (NaN where it took none).
    """
    k = num_steps.shape[0]
    loss_sum, taken, first = np.zeros(k), np.zeros(k), 0
    if resume is not None:
        loss_sum, taken = np.array(resume.loss_sum, np.float64), np.array(resume.taken, np.float64)
        first = resume.offset
    num_steps_dev = jnp.asarray(num_steps, jnp.int32)
    size = k // groups
    grouped = isinstance(step_fn, GroupedStep)
    group_args = ([()] if groups == 1 and not grouped
                  else [(jnp.int32(g),) for g in range(groups)])
    if grouped:
        # Every group trains on its own slice of the carry and of the stacked args.
        parts = step_fn.split(carry)
        args_of = step_fn.split_args(args, groups)
        call = step_fn.part_step
    total, done_before = int(num_steps.sum()), taken.sum()
    start = last_log = last_save = time.perf_counter()
    last_offset = int(num_steps.max(initial=0))
    for offset in range(first, last_offset, chunk):
        sums = []
        for g, group in enumerate(group_args):
            if num_steps[g * size:(g + 1) * size].max() <= offset:
                continue  # Every component of the group is done.
            if grouped:
                parts[g], chunk_loss, chunk_taken = call(parts[g], *args_of[g], num_steps_dev,
                                                         jnp.int32(offset), key, *group)
            else:
                carry, chunk_loss, chunk_taken = step_fn(carry, *args, num_steps_dev,
                                                         jnp.int32(offset), key, *group)
            sums.append((chunk_loss, chunk_taken))
        # Fetching the sums once per chunk keeps the host in step with the device,
        # while the calls of a chunk's groups queue up without waiting for each other.
        for chunk_loss, chunk_taken in sums:
            loss_sum += np.asarray(chunk_loss)
            taken += np.asarray(chunk_taken)
        now = time.perf_counter()
        if label and now - last_log >= log_every_s and taken.sum() < total:
            last_log = now
            done = taken.sum()
            left = (now - start) * (total - done) / max(done - done_before, 1)
            logging.info("%s: %d of %d component-steps, about %.0f s left", label, done,
                         total, left)
        if save is not None and offset + chunk < last_offset and _all_agree(
                now - last_save >= save_every_s):
            save(merge(parts) if grouped else carry,
                 Progress(offset + chunk, loss_sum.copy(), taken.copy()))
            last_save = time.perf_counter()
    if grouped:
        carry = merge(parts)
    return carry, np.where(taken > 0, loss_sum / np.maximum(taken, 1), np.nan)


def _all_agree(flag: bool) -> bool:
    """Process 0's `flag` on every process, so all of them take collective actions
    (a checkpoint) at the same chunk; the flag itself on one process."""
    if jax.process_count() == 1:
        return flag
    return bool(multihost_utils.broadcast_one_to_all(np.bool_(flag)))


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
