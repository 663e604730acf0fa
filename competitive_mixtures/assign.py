"""The assignment pass as pure array code: scores in, owners and training sets out.

Notation (paper, Sec. 3 and Algorithm 1): N points x_i, K components g_j,
discriminator D_j(x) = sigmoid(l_j(x)) trained to output 1 on data and 0 on
samples of g_j. At the optimum D_j = p_X / (p_X + p_gj), hence

    dP_gj / dP_X (x_i) = (1 - D_j(x_i)) / D_j(x_i) = exp(-l_ij).        (1)

Each component's ratio is normalised over the dataset, in log space,

    log P_j(x_i) = log_ratio_ij - logsumexp_i' log_ratio_i'j,            (2)

and every point goes to its best component, c_i = argmax_j log P_j(x_i) (3),
ties to the lowest j. alpha_j = #{i : c_i = j} / N (4). A component that wins
fewer than `min_points` points keeps training on the `min_points` points where
its log P_j is highest (load balancing, 5); its alpha stays its true share.

Nothing here knows about networks: functions take `[N, K]` arrays.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp


def log_ratio_from_logits(logits: jax.Array) -> jax.Array:
    """Eq. (1): log dP_gj/dP_X at each point, `[N, K]` logits -> `[N, K]`."""
    return -logits


def normalise(log_ratio: jax.Array) -> jax.Array:
    """Eq. (2): per-component normalisation over the dataset, `[N, K]` -> `[N, K]`.

    Each column becomes a log-distribution over the N points (it logsumexps to 0).
    """
    return log_ratio - jax.nn.logsumexp(log_ratio, axis=0, keepdims=True)


def owners(log_p: jax.Array) -> jax.Array:
    """Eq. (3): `[N, K]` scores -> `[N]` int32 best component, ties to the lowest index."""
    return jnp.argmax(log_p, axis=1).astype(jnp.int32)


def counts(owner: jax.Array, num_components: int) -> jax.Array:
    """`[N]` owners -> `[K]` int32 number of points each component owns."""
    return jnp.bincount(owner, length=num_components).astype(jnp.int32)


def alphas(count: jax.Array) -> jax.Array:
    """Eq. (4): `[K]` counts -> `[K]` mixture weights, summing to 1."""
    return count.astype(jnp.float32) / jnp.sum(count)


@flax.struct.dataclass
class TrainingSets:
    """The points each component trains on in the next M-step.

    Component j trains on its owned points, `order[start[j] : start[j] + count[j]]`,
    or, when `balanced[j]`, on its `min_points` best-scoring points `best[j]` (5).

    Attributes:
      order: `[N]` int32 point indices sorted by owner (stable).
      start: `[K]` int32 offset of each component's owned points in `order`.
      count: `[K]` int32 number of owned points.
      best: `[K, M]` int32 each component's M best points, M = max(min_points, 1).
      balanced: `[K]` bool, the component owns fewer than `min_points` points.
    """

    order: jax.Array
    start: jax.Array
    count: jax.Array
    best: jax.Array
    balanced: jax.Array

    @property
    def size(self) -> jax.Array:
        """`[K]` int32 number of points each component trains on."""
        return jnp.where(self.balanced, self.best.shape[1], self.count)


def training_sets(owner: jax.Array, log_p: jax.Array | None, min_points: int,
                  num_components: int) -> TrainingSets:
    """Eq. (5): owned points, or the `min_points` best for under-populated components.

    Args:
      owner: `[N]` int32 component of each point.
      log_p: `[N, K]` normalised scores, or None when there are none yet
        (random pre-training split: no balancing).
      min_points: static int, load-balancing threshold (0 disables it).
      num_components: K.
    """
    count = counts(owner, num_components)
    order = jnp.argsort(owner, stable=True).astype(jnp.int32)
    start = (jnp.cumsum(count) - count).astype(jnp.int32)
    if log_p is None or min_points == 0:
        best = jnp.zeros((num_components, 1), jnp.int32)
        balanced = jnp.zeros((num_components,), bool)
    else:
        best = jax.lax.top_k(log_p.T, min_points)[1].astype(jnp.int32)
        balanced = count < min_points
    return TrainingSets(order=order, start=start, count=count, best=best, balanced=balanced)


def sample_training_points(sets: TrainingSets, key: jax.Array, batch_size: int) -> jax.Array:
    """Uniform draws, with replacement, from each component's training set.

    Sampling with replacement lets components of any size, even smaller than a
    batch, draw a full batch in the same compiled step. A component with an
    empty set gets index 0; the M-step masks its update.

    Returns:
      `[K, B]` int32 point indices.
    """
    k = sets.count.shape[0]
    size = sets.size
    u = jax.random.uniform(key, (k, batch_size))
    pos = jnp.minimum((u * size[:, None]).astype(jnp.int32), jnp.maximum(size - 1, 0)[:, None])
    owned = sets.order[jnp.minimum(sets.start[:, None] + pos, sets.order.shape[0] - 1)]
    best = jnp.take_along_axis(sets.best, jnp.minimum(pos, sets.best.shape[1] - 1), axis=1)
    return jnp.where(sets.balanced[:, None], best, owned)


@flax.struct.dataclass
class Assignment:
    """Result of one assignment pass.

    Attributes:
      owner: `[N]` int32 c_i.
      count: `[K]` int32 points owned.
      alpha: `[K]` float32 mixture weights.
      sets: the training sets of the next M-step.
    """

    owner: jax.Array
    count: jax.Array
    alpha: jax.Array
    sets: TrainingSets


def assign(log_ratio: jax.Array, min_points: int, normalise_ratio: bool = True) -> Assignment:
    """Eqs. (2)-(5) from log density ratios `[N, K]`.

    With `normalise_ratio=False` the scores are used as they are: that is right
    for exact log-likelihoods of normalised model densities (the k-means model
    of Lemma 2), where eq. (2)'s dataset normaliser, an empirical stand-in for
    normalising an estimated ratio, would shift components unequally.
    """
    log_p = normalise(log_ratio) if normalise_ratio else log_ratio
    owner = owners(log_p)
    k = log_ratio.shape[1]
    sets = training_sets(owner, log_p, min_points, k)
    return Assignment(owner=owner, count=sets.count, alpha=alphas(sets.count), sets=sets)
