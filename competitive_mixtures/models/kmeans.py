"""The degenerate generative model of the paper's Lemma 2: one centroid.

p(x) = N(x; mu, I), so the loss 0.5 ||x - mu||^2 is the negative
log-likelihood up to a constant, and assigning points by exact likelihood is
nearest-centroid assignment: competitive training becomes k-means.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp


class Centroid(nn.Module):
    """A unit-variance Gaussian around a learned centre, for vector data `[B, D]`."""

    data_dim: int

    def setup(self):
        # The first M-step moves every centroid to the mean of its points.
        self.mu = self.param("mu", nn.initializers.zeros, (self.data_dim,))

    def loss_noise_shape(self) -> tuple[int, ...]:
        return ()

    def __call__(self, x: jax.Array, noise: jax.Array, train: bool = True) -> jax.Array:
        del noise  # The loss is deterministic.
        return 0.5 * jnp.mean(jnp.sum((x - self.mu) ** 2, axis=-1))

    def log_likelihood(self, x: jax.Array) -> jax.Array:
        sq = jnp.sum((x - self.mu) ** 2, axis=-1)
        return -0.5 * sq - 0.5 * self.data_dim * math.log(2 * math.pi)

    def sample(self, n: int) -> jax.Array:
        mu = self.mu
        return mu + jax.random.normal(self.make_rng("noise"), (n, self.data_dim))


def fit_centroids(x: jax.Array, owner: jax.Array, best: jax.Array, balanced: jax.Array,
                  previous: jax.Array) -> jax.Array:
    """The exact M-step of k-means: each centroid becomes the mean of its training set.

    Args:
      x: `[N, D]` data.
      owner: `[N]` int, the component owning each point.
      best: `[K, M]` indices of each component's best-scoring points.
      balanced: `[K]` bool, component trains on `best` instead of its owned points.
      previous: `[K, D]` current centroids; kept for a component with no points.
    Returns:
      `[K, D]` centroids.
    """
    k = previous.shape[0]
    sums = jax.ops.segment_sum(x, owner, num_segments=k)
    counts = jax.ops.segment_sum(jnp.ones_like(owner, x.dtype), owner, num_segments=k)
    owned_mean = sums / jnp.maximum(counts, 1)[:, None]
    best_mean = x[best].mean(axis=1)
    mu = jnp.where(balanced[:, None], best_mean, owned_mean)
    return jnp.where(((counts > 0) | balanced)[:, None], mu, previous)
