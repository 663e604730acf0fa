"""The immutable training state: one pytree holding all K components."""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.struct
import jax
import numpy as np

from competitive_mixtures import assign

PyTree = Any


@flax.struct.dataclass
class Stack:
    """K networks of one kind; every leaf has a leading K axis.

    Attributes:
      params: parameters, `[K, ...]` leaves.
      model_state: non-parameter collections (e.g. batch statistics), `[K, ...]`.
      opt_state: the optax state of each component, `[K, ...]`.
    """

    params: PyTree
    model_state: PyTree
    opt_state: PyTree


@flax.struct.dataclass
class Search:
    """The bookkeeping of the search for K (`auto_k.py`); inert when `auto_k` is off.

    Attributes:
      low_rounds: `[K]` int32 consecutive rounds each component's share stayed
        below `auto_k.prune_share`.
      tried: `[2, K]` bool, a split (row 0) or a removal (row 1) of the
        component was tried and undone since the last kept move.
      trial: `[5]` int32 the move on trial: kind (0 none, 1 split, 2 removal),
        the component added or removed, the split's parent (-1 otherwise), the
        round at whose end it is decided, and the slot holding the parent as
        it was before the split (-1 if none was free).
      baseline: float32 scalar, the held-out criterion when the trial started.
      start_point: `[V]` float32 each held-out point's log-likelihood bound
        when the trial started (V = `auto_k.validation_points`; the rows past
        the held-out points used are 0).
      start_best: `[V]` int32 each held-out point's best component then.
      direction: int32 scalar, the kind of the last kept move (tried first next).
    """

    low_rounds: jax.Array
    tried: jax.Array
    trial: jax.Array
    baseline: jax.Array
    start_point: jax.Array
    start_best: jax.Array
    direction: jax.Array


@flax.struct.dataclass
class MixtureState:
    """Everything a run needs to continue exactly where it stopped.

    Attributes:
      round: int32 scalar, the next round to run (round 0 is pre-training).
      gen: the K generators.
      disc: the ratio estimator's networks (the K discriminators), a tuple of
        M such stacks with `disc.ensemble = M`.
      owner: `[N]` int32 the component owning each point.
      alpha: `[K]` float32 mixture weights.
      sets: the training sets of the next M-step.
      rng: the run's base PRNG key; every round folds in its index.
      active: `[K]` bool, the components taking part (all of them unless
        `auto_k` changes K; an inactive one owns nothing and takes no step).
      search: the search for K (`auto_k.py`).
    """

    round: jax.Array
    gen: Stack
    disc: Stack | tuple[Stack, ...]
    owner: jax.Array
    alpha: jax.Array
    sets: assign.TrainingSets
    rng: jax.Array
    active: jax.Array
    search: Search


@dataclasses.dataclass(frozen=True)
class Progress:
    """How far `loops.run_chunks` got in an M-step: the next chunk's first step and the
    loss sums so far (saved with a mid-M-step checkpoint)."""
    offset: int
    loss_sum: np.ndarray  # [K]
    taken: np.ndarray  # [K]
