"""Samples of a trained mixture, drawn in fixed-size compiled blocks."""

from __future__ import annotations

import functools
import os
import time

from absl import logging
import jax
import numpy as np

from competitive_mixtures import errors
from competitive_mixtures import stacking
from competitive_mixtures import steps


# Mixture samples drawn per compiled call (every component draws this many).
SAMPLE_BLOCK = 4096
# Images per component in the sample grids.
GRID_COLUMNS = 10


@functools.partial(jax.jit, static_argnames=("model", "num"))
def per_component(model, gen, key: jax.Array, num: int) -> jax.Array:
    """`[K, num, *data_shape]`: `num` samples of every component, component j drawn
    with the j-th key of `jax.random.split(key, K)`."""
    k = jax.tree.leaves(gen.params)[0].shape[0]
    return stacking.sample(model, gen, jax.random.split(key, k), num)


def draw_samples(model, gen, alpha, key: jax.Array, num_samples: int,
                 block: int = SAMPLE_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """`num_samples` mixture samples in fixed-size blocks (one compiled shape).

    Returns `x` `[n, *data_shape]` float32 and `component` `[n]` int32.
    Raises SampleBudgetError when the samples would not fit in half of the
    machine's free memory; logs progress when drawing takes long.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    k = alpha.shape[0]
    values_per_sample = int(np.prod(jax.eval_shape(
        lambda: steps.sample_mixture(model, gen, alpha, key, 1))[0].shape))
    _check_sample_memory(num_samples, values_per_sample)
    # Every component draws a whole block per call. Keep the samples of one
    # call under 2M values (8 MB): a conv decoder's activations are tens of
    # times its output, and K=10 digit VAEs decoding 4096 images each failed
    # to allocate (19 GB resident) on CPU.
    block = max(1, min(block, num_samples, 2**21 // (k * values_per_sample)))
    xs, components = [], []
    calls = -(-num_samples // block)
    start = last_log = time.perf_counter()
    for i in range(calls):
        x, component = steps.sample_mixture(model, gen, alpha, jax.random.fold_in(key, i), block)
        xs.append(np.asarray(x, np.float32))
        components.append(np.asarray(component, np.int32))
        now = time.perf_counter()
        if now - last_log > 10 and i + 1 < calls:
            last_log = now
            logging.info("drew %d of %d samples (%.0f s, about %.0f s left)", (i + 1) * block,
                         num_samples, now - start, (now - start) * (calls - i - 1) / (i + 1))
    return np.concatenate(xs)[:num_samples], np.concatenate(components)[:num_samples]


class SampleBudgetError(errors.UserError):
    """More samples asked for than the machine's memory holds."""


def _check_sample_memory(num_samples: int, values_per_sample: int) -> None:
    needed = num_samples * values_per_sample * 4
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if needed > free // 2:
        raise SampleBudgetError(
            f"{num_samples} samples of {values_per_sample} float32 values need "
            f"{needed / 2**30:.1f} GiB, more than half of the {free / 2**30:.1f} GiB free; "
            "ask for fewer samples")
