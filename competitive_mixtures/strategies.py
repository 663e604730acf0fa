"""Training strategies: how points are first split and how they move after each M-step.

The strategies share the whole loop; they differ only in what is here:
the initial split, the mixture weights, and the end of a round
(`Strategy.end_round`: the competition's assignment pass, or boosting's
component-adding). The
boosting strategy (AdaGAN) adds components one at a time: its sets give the
component being added an explicit list of points drawn with the data weights
of `boosting.py`, and every other component an empty set, so the shared
M-step trains that component alone (the others take 0 steps).
"""

from __future__ import annotations

import dataclasses
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from competitive_mixtures import assign
from competitive_mixtures import auto_k
from competitive_mixtures import boosting
from competitive_mixtures.ratio.base import RoundPrograms


class RoundKeys(NamedTuple):
    """The random keys of a round's end: the estimator's fit, its re-initialisation,
    and its scores (with boosting's draws)."""

    fit: jax.Array
    init: jax.Array
    ratio: jax.Array


@dataclasses.dataclass(frozen=True)
class Strategy:
    """Attributes:
      name: the config value.
      reassigns: run discriminators and the assignment pass every round.
    """

    name: str
    reassigns: bool
    # Components are added one at a time on re-weighted data (AdaGAN).
    boosts: bool = False

    def initial_owner(self, key: jax.Array, num_points: int, num_components: int) -> jax.Array:
        """`[N]` int32 owners before the first round.

        A random permutation dealt round-robin: every component gets N/K points
        (+-1) chosen uniformly at random, the paper's pre-training split.
        """
        if num_components == 1:
            return jnp.zeros((num_points,), jnp.int32)
        perm = jax.random.permutation(key, num_points)
        return jnp.zeros((num_points,), jnp.int32).at[perm].set(
            jnp.arange(num_points, dtype=jnp.int32) % num_components)

    def initial_sets(self, key: jax.Array, num_points: int, num_components: int,
                     min_points: int, bootstrap: bool = False,
                     owner: jax.Array | None = None) -> tuple[jax.Array, assign.TrainingSets]:
        """Owners `[N]` and training sets before the first round.

        With `bootstrap` (bagging only) every component trains on its own draw of
        N // K points with replacement, held as an explicit index list; the
        owners are then the disjoint split and carry no meaning as a clustering.
        """
        if self.boosts:
            # The first component trains on the data as they are.
            owner = jnp.zeros((num_points,), jnp.int32)
            return owner, boosting_sets(jnp.arange(num_points, dtype=jnp.int32), 0,
                                        num_components)
        split_key, draw_key = jax.random.split(key)
        if owner is None:
            owner = self.initial_owner(split_key, num_points, num_components)
        split = assign.random_split(owner, num_components, min_points)
        if bootstrap:
            draws = jax.random.randint(draw_key, (num_components, num_points // num_components),
                                       0, num_points, dtype=jnp.int32)
            split = split.replace(best=draws, balanced=jnp.ones((num_components,), bool))
        return owner, assign.training_sets(split)

    def alpha(self, count: jax.Array) -> jax.Array:
        """`[K]` mixture weights from owned counts: shares for competition, uniform for
        bags; for boosting the first component alone (the others have not been added)."""
        if self.boosts:
            return jax.nn.one_hot(0, count.shape[0], dtype=jnp.float32)
        if self.reassigns:
            return count / jnp.sum(count)
        return jnp.full(count.shape, 1.0 / count.shape[0])

    def end_round(self, config: ml_collections.ConfigDict, programs: RoundPrograms, state, gen, x,
                  keys: RoundKeys, record: dict, validation=None) -> dict:
        """What follows the M-step of round `state.round`: the state's fields that
        change (always disc, owner, alpha and sets; gen, active and search when
        `auto_k` moves a component).

        Competitive: the assignment pass (`reassign`). Boosting: at the end of a
        stage, the component just trained joins the mixture (`add_component`).
        Bagging, single and boosting within a stage: nothing moves.
        `validation`: the held-out points of `auto_k`'s criterion.
        """
        if self.reassigns:
            return reassign(config, programs, state, gen, x, keys, record, validation)
        if self.boosts and boosting.stage_ends(int(state.round), config.num_rounds,
                                               config.num_components):
            disc, owner, alpha, sets = add_component(config, programs, state, gen, x, keys,
                                                     record)
            return {"disc": disc, "owner": owner, "alpha": alpha, "sets": sets}
        return {"disc": state.disc, "owner": state.owner, "alpha": state.alpha,
                "sets": state.sets}


def reassign(config: ml_collections.ConfigDict, programs: RoundPrograms, state, gen, x,
             keys: RoundKeys, record: dict, validation=None) -> dict:
    """The competition (Algorithm 1, steps 2-3): the ratio estimator is fitted to the
    data vs every active component, and every point goes to its best active
    component (`assign.assign`, with load balancing); with `auto_k` the search
    for K moves components first (`auto_k.step`). Returns the state's new
    fields; `record` gets the fit's losses and the seconds of both steps."""
    tick = time.perf_counter()
    disc, fitted = programs.ratio.fit(state.disc, gen, x, keys.fit, keys.init,
                                      np.asarray(state.active))
    record.update(fitted)
    jax.block_until_ready(disc)
    record["seconds_disc"] = time.perf_counter() - tick

    tick = time.perf_counter()
    scores = programs.ratio.log_ratios(disc, gen, x, keys.ratio)
    if config.auto_k.enabled:
        fields = auto_k.step(config, programs, state, gen, disc, scores, x, validation,
                             jax.random.fold_in(keys.ratio, 1), record)
    else:
        result, sets = programs.assigner(scores, state.active)
        fields = {"disc": disc, "owner": result.owner, "alpha": result.alpha, "sets": sets}
    jax.block_until_ready(fields["owner"])
    record["seconds_assign"] = time.perf_counter() - tick
    return fields


def add_component(config: ml_collections.ConfigDict, programs: RoundPrograms, state, gen, x,
                  keys: RoundKeys, record: dict):
    """The end of a boosting stage (AdaGAN): the component just trained joins the mixture.

    alpha <- (1 - beta_t) alpha + beta_t e_t; the ratio estimator is fitted to
    the data vs the mixture's components; each point's owner becomes its most
    responsible component; unless this was the last component, the next one's
    training set is drawn with the AdaGAN weights (`boosting.py`). Returns
    (disc, owner, alpha, sets); `record` gets the stage's figures.
    """
    r, k, n = int(state.round), config.num_components, x.shape[0]
    c = config.boosting
    stage = boosting.stage(r, config.num_rounds, k)
    alpha = boosting.add_component(state.alpha, stage, boosting.beta(c.beta_schedule, stage,
                                                                      c.beta))
    tick = time.perf_counter()
    disc, fitted = programs.ratio.fit(state.disc, gen, x, keys.fit, keys.init,
                                      np.asarray(alpha) > 0)
    record.update(fitted)
    jax.block_until_ready(disc)
    record["seconds_disc"] = time.perf_counter() - tick

    tick = time.perf_counter()
    score_key, draw_key = jax.random.split(keys.ratio)
    log_ratio = programs.ratio.log_ratios(disc, gen, x, score_key)
    owner = boosting.owners(log_ratio, alpha)
    sets = state.sets
    summary = {"stage": stage}
    if stage + 1 < k:
        beta_next = boosting.beta(c.beta_schedule, stage + 1, c.beta)
        weights = boosting.next_weights(log_ratio, alpha, beta_next, c.weights)
        sets = boosting_sets(boosting.draw_training_points(draw_key, weights, n),
                             stage + 1, k)
        summary.update(beta_next=beta_next, zero_weight_share=float(jnp.mean(weights == 0)),
                       max_weight_times_n=float(jnp.max(weights)) * n)
    jax.block_until_ready(sets)
    record["seconds_assign"] = time.perf_counter() - tick
    record["boosting"] = summary
    return disc, owner, alpha, sets


STRATEGIES = {
    # The paper's method: owners move to the component that explains them best.
    "competitive": Strategy("competitive", reassigns=True),
    # A bag: a fixed random disjoint split into K parts, never reassigned.
    "bagging": Strategy("bagging", reassigns=False),
    # One component on all data (num_components must be 1).
    "single": Strategy("single", reassigns=False),
    # AdaGAN: components added one after another on re-weighted data.
    "boosting": Strategy("boosting", reassigns=False, boosts=True),
}


def boosting_sets(points: jax.Array, component: int, num_components: int) -> assign.TrainingSets:
    """Training sets in which only `component` trains, on the listed `points` `[N]`.

    Nothing is owned (every count is 0), so every other component's set is
    empty and the M-step masks it.
    """
    n = points.shape[0]
    listed = jnp.zeros((num_components, n), jnp.int32).at[component].set(points)
    return assign.TrainingSets(
        order=jnp.arange(n, dtype=jnp.int32), start=jnp.zeros((num_components,), jnp.int32),
        count=jnp.zeros((num_components,), jnp.int32), best=listed,
        balanced=jnp.arange(num_components) == component)


def get(name: str) -> Strategy:
    return STRATEGIES[name]
