"""Training strategies: how points are first split and whether they move.

The strategies share the whole loop; they differ only in what is here.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Strategy:
    """Attributes:
      name: the config value.
      reassigns: run discriminators and the assignment pass every round.
    """

    name: str
    reassigns: bool

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

    def alpha(self, count: jax.Array) -> jax.Array:
        """`[K]` mixture weights from owned counts: shares for competition, uniform for bags."""
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
}


def get(name: str) -> Strategy:
    return STRATEGIES[name]
