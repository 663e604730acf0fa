"""What every density-ratio estimator provides, and the host loops they share.

An estimator turns K generators and the N data points into log density
ratios `[N, K]`, log dP_gj/dP_X (x_i) up to a per-component constant, which
`assign.assign` normalises over the dataset (assign eq. 2). Its trainable
part (networks, optimizer states; empty for the kernel estimator) lives in
`MixtureState.disc` as a `Stack`, so it is checkpointed with the run.
Estimators fit with `loops.run_chunks` and score with `loops.stream_scores`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Protocol

import jax
from jax.sharding import Mesh
import jax.numpy as jnp
import ml_collections
import numpy as np

from competitive_mixtures import assign
from competitive_mixtures import points as points_lib
from competitive_mixtures import loops
from competitive_mixtures.state import Stack


class RatioEstimator(Protocol):
    """The interface `train.run_round` uses (see `ratio/__init__.py` for the kinds)."""

    kind: str
    # Whether the scores are log ratios to normalise over the dataset (assign eq. 2),
    # or log-likelihoods that the argmax takes as they are.
    normalise: bool

    def init(self, key: jax.Array, example: jax.Array) -> Stack:
        """The estimator's fresh trainable state; `example` is `[B, *data_shape]`."""

    def fit(self, disc: Stack, gen: Stack, x: jax.Array, key: jax.Array,
            init_key: jax.Array, active: np.ndarray) -> tuple[Stack, dict]:
        """Fits to data `x` `[N, ...]` vs samples of the generators `gen` whose
        `active` (`[K]` bool) entry is set; returns the state and a record
        (losses) for `metrics.jsonl`."""

    def log_ratios(self, disc: Stack, gen: Stack, x: jax.Array, key: jax.Array) -> jax.Array:
        """`[N, K]` float32 log dP_gj/dP_X at every data point."""


class Assigner(Protocol):
    """The assignment pass on scores `[N, K]` (`steps.make_assigner`)."""

    def __call__(self, log_ratio: jax.Array,
                 active: jax.Array | None = None) -> tuple[assign.Assignment,
                                                           assign.TrainingSets]:
        ...


class RoundPrograms(Protocol):
    """What the end of a round (`strategies`, `auto_k`) calls of a run's compiled
    programs (`programs.Programs` has it)."""

    # The density-ratio estimator of the assignment pass.
    ratio: RatioEstimator
    assigner: Assigner
    # With `auto_k`: every component's log-likelihood bound (ELBO or exact scores,
    # `log_ratios(None, gen, x, key)` -> `[B, K]`); None otherwise.
    likelihood: RatioEstimator | None
    # The k-means model of Lemma 2 (exact log-likelihoods, one draw).
    exact: bool


@dataclasses.dataclass(frozen=True)
class Estimator:
    """The fields every estimator has: its config (`ratio`, `disc`, `assign`) and the
    device mesh it scores on."""

    config: ml_collections.ConfigDict
    mesh: Mesh
    normalise = True


class Untrained(Estimator):
    """What the estimators that train nothing (kernel, ELBO, exact) share: no
    network, optimizer or fit step, an empty `Stack` as state, a fit that
    returns it unchanged."""

    model = None
    optimizer = None
    step = None

    def init(self, key: jax.Array, example: jax.Array) -> Stack:
        del key, example
        return Stack(params={}, model_state={}, opt_state=())

    def fit(self, disc: Stack, gen: Stack, x: jax.Array, key: jax.Array,
            init_key: jax.Array, active: np.ndarray) -> tuple[Stack, dict]:
        del gen, x, key, init_key, active
        return disc, {}


@dataclasses.dataclass(frozen=True)
class Likelihoods(Untrained):
    """The estimators that score by each component's own log-likelihood (ELBO,
    exact): a jitted batch scorer `score(score_args(gen, key), x [B, ...]) -> [B, K]`
    for `loops.stream_scores`, and no dataset normaliser (the common log p_X(x_i)
    of the ratio cancels in the argmax)."""

    score: Callable
    normalise = False

    def score_args(self, gen: Stack, key: jax.Array) -> Any:
        """What the scorer takes besides the points."""
        raise NotImplementedError

    def log_ratios(self, disc: Stack, gen: Stack, x: jax.Array, key: jax.Array) -> jax.Array:
        del disc
        return loops.stream_scores(self.score, self.mesh, self.score_args(gen, key), x,
                                   self.config.assign.batch_size)


@dataclasses.dataclass(frozen=True)
class Trained(Estimator):
    """The fit / log_ratios skeleton of the estimators with networks (the binary
    discriminators, the classifiers): `model` (one network) and its `optimizer`,
    `step` (a chunked fit step for `loops.run_chunks`) and `score` (a batch scorer
    for `loops.stream_scores`). A subclass has `init`, and says how its fit runs
    (`fit_plan`) and what it logs (`fit_record`)."""

    model: Any
    optimizer: Any
    step: Callable
    score: Callable

    def fit_plan(self, x: points_lib.Data, active: np.ndarray) -> tuple[np.ndarray, int, int,
                                                                         tuple]:
        """(steps per component `[K']`, steps per call, calls per step, extra step args)."""
        raise NotImplementedError

    def fit_record(self, loss: np.ndarray) -> dict:
        """The fit's entries of the round's metrics record, from its mean losses."""
        raise NotImplementedError

    def fit(self, disc: Stack, gen: Stack, x: points_lib.Data, key: jax.Array,
            init_key: jax.Array, active: np.ndarray) -> tuple[Stack, dict]:
        """`disc.epochs` passes over the data, re-initialised first if the config says so."""
        if self.config.disc.reinit_each_round:
            disc = keep_features(self.init(init_key, example_batch(x, init_key)), disc)
        num_steps, chunk, groups, extra = self.fit_plan(x, active)
        disc, loss = loops.run_chunks(self.step, disc, num_steps, chunk, key, gen, x, *extra,
                                      groups=groups, label="density-ratio fit")
        return disc, self.fit_record(loss)

    def log_ratios(self, disc: Stack, gen: Stack, x: points_lib.Data,
                   key: jax.Array) -> jax.Array:
        del gen, key  # The networks hold all they need.
        return loops.stream_scores(self.score, self.mesh, disc, x, self.config.assign.batch_size)


def keep_features(new: Stack | tuple, old: Stack | tuple) -> Stack | tuple:
    """`new` (freshly initialised networks) with the fixed `features` of `old`, where
    the networks have them (`disc.features='latent'`): a re-initialisation
    keeps the encoder the discriminators read. The features are copied, so that a
    fit, which donates its networks, leaves `old` whole. Takes an ensemble's
    tuples too."""
    if isinstance(new, tuple):
        return tuple(keep_features(n, o) for n, o in zip(new, old))
    if "features" not in new.params:
        return new
    return with_features(new, lambda tree: jax.tree.map(jnp.copy, tree["features"]),
                         old.params, old.model_state)


def with_features(disc: Stack, take, params, model_state) -> Stack:
    """`disc` with its `features` subtree, in `params` and in every collection of its
    model state, replaced by `take(params)` and `take(model_state[collection])`."""
    return disc.replace(
        params={**disc.params, "features": take(params)},
        model_state={name: {**tree, "features": take(model_state[name])}
                     for name, tree in disc.model_state.items()})


def example_batch(x: points_lib.Data, key: jax.Array, size: int = 256) -> jax.Array:
    """`[size, ...]` points drawn with replacement: the shape to initialise networks with."""
    return points_lib.take(x, jax.random.randint(key, (size,), 0, x.shape[0]))


def losses(values: np.ndarray) -> list[float | None]:
    """Per-component losses for JSON: None where a component took no step."""
    return [float(v) if np.isfinite(v) else None for v in values]
