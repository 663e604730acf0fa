"""Training strategies: how points are first split and whether they move.

The strategies share the whole loop; they differ only in what is here. The
boosting strategy (AdaGAN) adds components one at a time: its sets give the
component being added an explicit list of points drawn with the data weights
of `boosting.py`, and every other component an empty set, so the shared
M-step trains that component alone (the others take 0 steps).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from competitive_mixtures import assign


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
