"""Where the components start: the first split of the points.

The competition is a hard-assignment procedure; with the degenerate model of
Lemma 2 it is k-means, and like k-means it ends in a local optimum that
depends on where the components start. Two starts:

  'uniform'  every component gets N/K points drawn uniformly at random (the
             paper's uniform pre-training): the K models start as near-equal
             models of the whole data, and the first assignment is decided by
             their small differences;
  'kmeans'   k-means++ seeding (D^2 sampling) and Lloyd iterations on the
             points (flattened), best of several seedings by inertia: every
             component starts on one compact region of the data.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def _sq_dist(x: jax.Array, centres: jax.Array) -> jax.Array:
    """`[N, D]`, `[K, D]` -> `[N, K]` squared Euclidean distances."""
    return (jnp.sum(x * x, axis=1, keepdims=True) - 2.0 * x @ centres.T
            + jnp.sum(centres * centres, axis=1)[None, :])


def kmeans_plus_plus(key: jax.Array, x: jax.Array, k: int) -> jax.Array:
    """`k` centres `[K, D]` chosen among the points by D^2 sampling (Arthur & Vassilvitskii)."""
    n = x.shape[0]
    first_key, rest_key = jax.random.split(key)
    first = jax.random.randint(first_key, (), 0, n)
    centres = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[first])
    nearest = jnp.sum((x - x[first]) ** 2, axis=1)

    def add(j, carry):
        centres, nearest = carry
        choice = jax.random.categorical(jax.random.fold_in(rest_key, j),
                                        jnp.log(jnp.maximum(nearest, 0.0)))
        centres = centres.at[j].set(x[choice])
        return centres, jnp.minimum(nearest, jnp.sum((x - x[choice]) ** 2, axis=1))

    centres, _ = jax.lax.fori_loop(1, k, add, (centres, nearest))
    return centres


def lloyd(x: jax.Array, centres: jax.Array, iterations: int,
          weight: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Lloyd's iterations from `centres` `[K, D]`; returns (owner `[N]` int32, inertia).

    `weight` (`[N]`, 0 or 1): only the points of weight 1 move the centres;
    every point still gets its nearest centre as owner.
    """
    k = centres.shape[0]
    ones = jnp.ones(x.shape[0], x.dtype) if weight is None else weight
    weighted = x if weight is None else x * weight[:, None]

    def step(_, centres):
        owner = jnp.argmin(_sq_dist(x, centres), axis=1)
        sums = jax.ops.segment_sum(weighted, owner, num_segments=k)
        counts = jax.ops.segment_sum(ones, owner, num_segments=k)
        return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1)[:, None], centres)

    centres = jax.lax.fori_loop(0, iterations, step, centres)
    dist = _sq_dist(x, centres)
    owner = jnp.argmin(dist, axis=1).astype(jnp.int32)
    return owner, jnp.sum(jnp.min(dist, axis=1))


@functools.partial(jax.jit, static_argnames=("k", "restarts", "iterations"))
def kmeans_owner(key: jax.Array, x: jax.Array, k: int, restarts: int = 4,
                 iterations: int = 30) -> jax.Array:
    """`[N]` int32 owners of k-means++ + Lloyd on `x` `[N, ...]`, the best of `restarts`."""
    scale = 1.0 / 255.0 if x.dtype == jnp.uint8 else 1.0
    x = x.reshape(x.shape[0], -1).astype(jnp.float32) * scale

    def one(key):
        return lloyd(x, kmeans_plus_plus(key, x, k), iterations)

    owner, inertia = jax.lax.map(one, jax.random.split(key, restarts))
    return owner[jnp.argmin(inertia)]


@functools.partial(jax.jit, static_argnames=("iterations",))
def split_in_two(key: jax.Array, x: jax.Array, mask: jax.Array,
                 iterations: int = 30) -> jax.Array:
    """2-means of the points where `mask` (`[N]` bool): `[N]` bool, True for the
    points of the second cluster (never outside `mask`).

    The first centre is a masked point drawn uniformly, the second by D^2
    sampling among the masked points; then Lloyd's iterations on them alone.
    Shapes do not depend on how many points are masked, so this compiles once.
    """
    scale = 1.0 / 255.0 if x.dtype == jnp.uint8 else 1.0
    x = x.reshape(x.shape[0], -1).astype(jnp.float32) * scale
    first_key, second_key = jax.random.split(key)
    first = jax.random.categorical(first_key, jnp.where(mask, 0.0, -jnp.inf))
    dist = jnp.sum((x - x[first]) ** 2, axis=1)
    second = jax.random.categorical(
        second_key, jnp.where(mask, jnp.log(jnp.maximum(dist, 1e-30)), -jnp.inf))
    side, _ = lloyd(x, jnp.stack([x[first], x[second]]), iterations,
                    mask.astype(jnp.float32))
    return mask & (side == 1)
