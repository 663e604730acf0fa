"""The immutable training state: one pytree holding all K components."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax

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
class MixtureState:
    """Everything a run needs to continue exactly where it stopped.

    Attributes:
      round: int32 scalar, the next round to run (round 0 is pre-training).
      gen: the K generators.
      disc: the K assignment discriminators.
      owner: `[N]` int32 the component owning each point.
      alpha: `[K]` float32 mixture weights.
      sets: the training sets of the next M-step.
      rng: the run's base PRNG key; every round folds in its index.
    """

    round: jax.Array
    gen: Stack
    disc: Stack
    owner: jax.Array
    alpha: jax.Array
    sets: assign.TrainingSets
    rng: jax.Array
