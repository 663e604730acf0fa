"""Gaussian-kernel arithmetic shared by the kernel density-ratio estimator
(`ratio/kernel.py`) and the GRaM component (`models/gram.py`): pure functions
of point sets, no networks.

Kernel mean matching (Huang et al. 2007; Sugiyama et al. 2012): for points
x_1..x_N of P and y_1..y_n of Q, the ratio r = dQ/dP at the x_i that makes
P re-weighted by r match Q in the kernel's feature space,
(1/N) sum_i r(x_i) k(., x_i) = (1/n) sum_l k(., y_l), is with a ridge eps

    r = (N / n) (K_xx + N eps I)^-1 K_xy 1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gaussian_kernel(a: jax.Array, b: jax.Array, width: jax.Array) -> jax.Array:
    """`[A, D]`, `[B, D]` -> `[A, B]` exp(-||a - b||^2 / (2 width^2))."""
    sq = (jnp.sum(a * a, axis=1)[:, None] + jnp.sum(b * b, axis=1)[None, :]
          - 2.0 * a @ b.T)
    return jnp.exp(-jnp.maximum(sq, 0.0) / (2.0 * width * width))


def median_distance(points: jax.Array) -> jax.Array:
    """Median Euclidean distance between distinct points of `[M, D]` (M >= 2)."""
    m = points.shape[0]
    sq = (jnp.sum(points * points, axis=1)[:, None] + jnp.sum(points * points, axis=1)[None, :]
          - 2.0 * points @ points.T)
    upper = jnp.triu(jnp.ones((m, m), bool), k=1)
    return jnp.nanmedian(jnp.where(upper, jnp.sqrt(jnp.maximum(sq, 0.0)), jnp.nan))


def kmm_ratio(x: jax.Array, y: jax.Array, width: jax.Array, eps: float) -> jax.Array:
    """r = dQ/dP at the points `x` `[N, D]` of P, from points `y` `[n, D]` of Q: `[N]`.

    Solved by conjugate gradients to a relative residual of 1e-6 (the matrix
    is symmetric positive definite), differentiable in `x`, `y` and `width`.
    Conjugate gradients are plain XLA arithmetic: a LAPACK solve inside a
    training step sharded over 8 simulated CPU devices hung, and the
    gradient of a Cholesky solve was ~10x slower on CPU.
    """
    n = x.shape[0]
    gram = gaussian_kernel(x, x, width) + n * eps * jnp.eye(n, dtype=x.dtype)
    rhs = n * gaussian_kernel(x, y, width).mean(axis=1)
    return jax.scipy.sparse.linalg.cg(lambda v: gram @ v, rhs, tol=1e-6, maxiter=10 * n)[0]


def rms_distance(points: jax.Array) -> jax.Array:
    """Root mean squared Euclidean distance between the points of `[M, D]`, over all
    pairs of distinct points: a kernel width that needs no sort (cf. the median)."""
    m = points.shape[0]
    centred = points - points.mean(axis=0)
    # sum_{i,j} ||p_i - p_j||^2 = 2 m sum_i ||p_i - mean||^2.
    return jnp.sqrt(2.0 * m * jnp.sum(centred * centred) / (m * (m - 1)))


def mmd2(a: jax.Array, b: jax.Array, widths) -> jax.Array:
    """Biased (V-statistic) MMD^2 between `[A, D]` and `[B, D]` with the sum of
    Gaussian kernels of the given widths; 0 for identical sets."""
    total = 0.0
    for width in widths:
        total += (gaussian_kernel(a, a, width).mean() + gaussian_kernel(b, b, width).mean()
                  - 2.0 * gaussian_kernel(a, b, width).mean())
    return total
