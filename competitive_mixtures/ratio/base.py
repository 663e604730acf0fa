"""What every density-ratio estimator provides, and the host loops they share.

An estimator turns K generators and the N data points into log density
ratios `[N, K]`, log dP_gj/dP_X (x_i) up to a per-component constant, which
`assign.assign` normalises over the dataset (assign eq. 2). Its trainable
part (networks, optimizer states; empty for the kernel estimator) lives in
`MixtureState.disc` as a `Stack`, so it is checkpointed with the run.
Estimators fit with `steps.run_chunks` and score with `steps.stream_scores`.
"""

from __future__ import annotations

from typing import Protocol

import jax
import numpy as np

from competitive_mixtures import points as points_lib
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


def losses(values: np.ndarray) -> list[float | None]:
    """Per-component losses for JSON: None where a component took no step."""
    return [float(v) if np.isfinite(v) else None for v in values]
