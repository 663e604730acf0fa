"""Improved precision and recall of generative models (Kynkaanniemi et al. 2019).

Each set of feature vectors estimates its manifold as the union of balls
around its points, each ball reaching the point's k-th nearest neighbour in
the same set (k = 3 in the paper). Then

  precision = share of generated points inside the real manifold  (quality),
  recall    = share of real points inside the generated manifold  (coverage).

Both sets should be of equal size (the k-NN radii shrink as a set grows);
`precision_recall` subsamples the larger one to the size of the smaller.
Distances are computed in row blocks, so memory stays O(block * n).
"""

from __future__ import annotations

import numpy as np

DEFAULT_K = 3
_BLOCK = 1024


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`[len(a), len(b)]` squared Euclidean distances, float64, never negative."""
    d = (np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * (a @ b.T))
    return np.maximum(d, 0.0)


def knn_radii(x: np.ndarray, k: int = DEFAULT_K) -> np.ndarray:
    """Squared distance `[n]` from each point of `x` `[n, d]` to its k-th nearest other point."""
    n = x.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, {n - 1}] for {n} points, got {k}")
    radii = np.empty(n)
    for start in range(0, n, _BLOCK):
        d = _squared_distances(x[start:start + _BLOCK], x)
        # Column 0 of the sorted row is the point itself (distance 0).
        radii[start:start + _BLOCK] = np.partition(d, k, axis=1)[:, k]
    return radii


def coverage_of(manifold: np.ndarray, radii: np.ndarray, queries: np.ndarray) -> float:
    """Share of `queries` `[m, d]` within the ball of at least one `manifold` point."""
    inside = 0
    for start in range(0, queries.shape[0], _BLOCK):
        d = _squared_distances(queries[start:start + _BLOCK], manifold)
        inside += int(np.sum(np.any(d <= radii[None, :], axis=1)))
    return inside / queries.shape[0]


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = DEFAULT_K,
                     seed: int = 0) -> dict:
    """Precision and recall of `fake` `[m, d]` against `real` `[n, d]` features.

    The larger set is subsampled (seeded, without replacement) to the size of
    the smaller one.

    Returns:
      {'precision', 'recall', 'k', 'num_points'} with `num_points` the size of
      each set used.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"need two feature sets [n, d] of one d, got {real.shape}, {fake.shape}")
    n = min(real.shape[0], fake.shape[0])
    rng = np.random.default_rng(seed)
    if real.shape[0] > n:
        real = real[rng.choice(real.shape[0], n, replace=False)]
    if fake.shape[0] > n:
        fake = fake[rng.choice(fake.shape[0], n, replace=False)]
    precision = coverage_of(real, knn_radii(real, k), fake)
    recall = coverage_of(fake, knn_radii(fake, k), real)
    return {"precision": precision, "recall": recall, "k": k, "num_points": n}
