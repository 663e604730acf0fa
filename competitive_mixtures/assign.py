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

Nothing here knows about networks: functions take `[N, K]` arrays. Functions
with an `axis_name` also run inside a per-device program over a slice of the
N points (`jax.shard_map`), combining across devices exactly: the normaliser
by max-shift then sum, counts by sum, best points by a top-k of local top-ks.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp


def log_ratio_from_logits(logits: jax.Array) -> jax.Array:
    """Eq. (1): log dP_gj/dP_X at each point, `[N, K]` logits -> `[N, K]`."""
    return -logits


def normalise(log_ratio: jax.Array, axis_name: str | None = None) -> jax.Array:
    """Eq. (2): per-component normalisation over the dataset, `[N, K]` -> `[N, K]`.

    Each column becomes a log-distribution over the N points (it logsumexps to
    0). With `axis_name`, the N points are split over that axis.
    """
    if axis_name is None:
        return log_ratio - jax.nn.logsumexp(log_ratio, axis=0, keepdims=True)
    shift = jax.lax.pmax(jnp.max(log_ratio, axis=0, keepdims=True), axis_name)
    total = jax.lax.psum(jnp.sum(jnp.exp(log_ratio - shift), axis=0, keepdims=True), axis_name)
    return log_ratio - (shift + jnp.log(total))


def owners(log_p: jax.Array) -> jax.Array:
    """Eq. (3): `[N, K]` scores -> `[N]` int32 best component, ties to the lowest index."""
    return jnp.argmax(log_p, axis=1).astype(jnp.int32)


def counts(owner: jax.Array, num_components: int, axis_name: str | None = None,
           valid: jax.Array | None = None) -> jax.Array:
    """`[N]` owners -> `[K]` int32 number of points each component owns.

    Points where `valid` (`[N]` bool) is False are not counted.
    """
    count = jnp.bincount(owner, weights=None if valid is None else valid.astype(jnp.int32),
                         length=num_components).astype(jnp.int32)
    return count if axis_name is None else jax.lax.psum(count, axis_name)


def alphas(count: jax.Array) -> jax.Array:
    """Eq. (4): `[K]` counts -> `[K]` mixture weights, summing to 1."""
    return count.astype(jnp.float32) / jnp.sum(count)


def best_points(log_p: jax.Array, num: int, axis_name: str | None = None) -> jax.Array:
    """`[K, num]` int32 indices of each component's `num` highest-scoring points.

    Ties go to the lower index. With `axis_name` each device holds an equal,
    contiguous slice of the points in device order; indices are global.
    """
    values, index = jax.lax.top_k(log_p.T, num)
    if axis_name is None:
        return index.astype(jnp.int32)
    index = index + jax.lax.axis_index(axis_name) * log_p.shape[0]
    # Candidates from lower devices come first, so ties still go to lower indices.
    values = jax.lax.all_gather(values, axis_name, axis=1, tiled=True)
    index = jax.lax.all_gather(index, axis_name, axis=1, tiled=True)
    pick = jax.lax.top_k(values, num)[1]
    return jnp.take_along_axis(index, pick, axis=1).astype(jnp.int32)


@flax.struct.dataclass
class Assignment:
    """Result of one assignment pass.

    Attributes:
      owner: `[N]` int32 c_i.
      count: `[K]` int32 points owned.
      best: `[K, M]` int32 each component's M best points, M = max(min_points, 1).
      balanced: `[K]` bool, the component owns fewer than `min_points` points.
    """

    owner: jax.Array
    count: jax.Array
    best: jax.Array
    balanced: jax.Array

    @property
    def alpha(self) -> jax.Array:
        return alphas(self.count)


def assign(log_ratio: jax.Array, min_points: int, normalise_ratio: bool = True,
           axis_name: str | None = None, valid: jax.Array | None = None,
           active: jax.Array | None = None) -> Assignment:
    """Eqs. (2)-(5) from log density ratios `[N, K]`.

    With `normalise_ratio=False` the scores are used as they are: that is right
    for exact log-likelihoods of normalised model densities (the k-means model
    of Lemma 2), where eq. (2)'s dataset normaliser, an empirical stand-in for
    normalising an estimated ratio, would shift components unequally.
    `min_points` is static; 0 disables load balancing. `valid` (`[N]` bool)
    marks padding rows, which must hold -inf scores; they own nothing.
    `active` (`[K]` bool) marks the components taking part: the others win no
    point and are never balanced (their columns may hold anything finite).
    """
    k = log_ratio.shape[1]
    log_p = normalise(log_ratio, axis_name) if normalise_ratio else log_ratio
    if valid is not None:
        log_p = jnp.where(valid[:, None], log_p, -jnp.inf)
    if active is not None:
        # After the normaliser: a column of -inf would normalise to NaN.
        log_p = jnp.where(active[None, :], log_p, -jnp.inf)
    owner = owners(log_p)
    count = counts(owner, k, axis_name, valid)
    if min_points == 0:
        best = jnp.zeros((k, 1), jnp.int32)
    else:
        best = best_points(log_p, min_points, axis_name)
    balanced = count < min_points
    if active is not None:
        balanced &= active
    return Assignment(owner=owner, count=count, best=best, balanced=balanced)


def random_split(owner: jax.Array, num_components: int, min_points: int) -> Assignment:
    """An `Assignment` for given owners with no scores (pre-training: nothing balanced)."""
    return Assignment(owner=owner, count=counts(owner, num_components),
                      best=jnp.zeros((num_components, max(min_points, 1)), jnp.int32),
                      balanced=jnp.zeros((num_components,), bool))


@flax.struct.dataclass
class TrainingSets:
    """The points each component trains on in the next M-step.

    Component j trains on its owned points, `order[start[j] : start[j] + count[j]]`,
    or, when `balanced[j]`, on its listed points `best[j]`: its best-scoring
    points under load balancing (5), or a bag drawn with replacement.

    Attributes:
      order: `[N]` int32 point indices sorted by owner (stable).
      start: `[K]` int32 offset of each component's owned points in `order`.
      count: `[K]` int32 number of owned points.
      best: `[K, M]` int32 listed points.
      balanced: `[K]` bool, train on `best` instead of the owned points.
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


def training_sets(assignment: Assignment) -> TrainingSets:
    """Eq. (5): owned points, or the listed best points for balanced components."""
    count = assignment.count
    return TrainingSets(order=jnp.argsort(assignment.owner, stable=True).astype(jnp.int32),
                        start=(jnp.cumsum(count) - count).astype(jnp.int32), count=count,
                        best=assignment.best, balanced=assignment.balanced)


def sample_training_points(sets: TrainingSets, key: jax.Array, batch_size: int) -> jax.Array:
    """Uniform draws, with replacement, from each component's training set.

    Sampling with replacement lets components of any size, even smaller than a
    batch, draw a full batch in the same compiled step. A component with an
    empty set gets arbitrary valid indices; the M-step masks its update.

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
