"""Kernel mean matching: density ratios at the data points from a kernel solve.

For component j with samples y_1..y_n (n = `ratio.kernel.samples`) and the N
data points x_i, the ratio r_j(x_i) = dP_gj/dP_X (x_i) makes the data,
re-weighted by r_j, match the samples in the kernel's feature space:
(1/N) sum_i r_j(x_i) k(., x_i) = (1/n) sum_l k(., y_l). With a ridge eps,

    r_j = (N / n) (K_dd + N eps I)^-1 K_dm 1,                              (1)

K_dd = [k(x_i, x_i')] (N x N), K_dm = [k(x_i, y_l)] (N x n). The kernel is
Gaussian, k(a, b) = exp(-||a - b||^2 / (2 sigma^2)), sigma = `width` times the
median distance between data points (median heuristic on at most 1,000
points); eps = `ratio.kernel.eps` (default 1e-3, so the ridge is N eps = 4.1
at N = 4,096). K_dd does not depend on j: one Cholesky factor serves all K.

Up to `ratio.kernel.exact_max` points (default 4,096) eq. (1) is solved
exactly. Beyond, K_dd is replaced by its Nystrom approximation on m random
data points (`ratio.kernel.landmarks`, default 1,024): K_dd ~ Phi Phi^T with
Phi = K_dl U S^-1/2 from the eigendecomposition U S U^T of the landmarks' own
kernel matrix (eigenvalues below 1e-6 of the largest dropped), and by the
Woodbury identity

    (Phi Phi^T + N eps I)^-1 v = (v - Phi (N eps I + Phi^T Phi)^-1 Phi^T v) / (N eps),

O(N m^2) time and O(N m) memory instead of O(N^3) and O(N^2).
`approximation_error` measures this against the exact solve on a subset.

The unconstrained solve can return ratios <= 0 where a component has no
mass; logs are taken of max(r, RATIO_FLOOR). The kernel arithmetic is that of
`kernels.py`.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from competitive_mixtures import kernels
from competitive_mixtures import points as points_lib
from competitive_mixtures import sampling
from competitive_mixtures.ratio import base
from competitive_mixtures.state import Stack

# Ratios are floored here before the log (the data-average of a ratio is 1).
RATIO_FLOOR = 1e-6
# Points used by the median heuristic.
MEDIAN_POINTS = 1000
# Relative eigenvalue cut-off of the Nystrom landmark matrix.
EIGEN_CUTOFF = 1e-6
# Kernel values computed per block: rows x columns.
BLOCK_VALUES = 2**24


def flatten(x: jax.Array) -> jax.Array:
    """`[N, ...]` points as float32 vectors `[N, D]`; uint8 images scaled to [0, 1]."""
    flat = x.reshape(x.shape[0], -1)
    if flat.dtype == jnp.uint8:
        return flat.astype(jnp.float32) / 255.0
    return flat.astype(jnp.float32)


def _row_blocks(fn, x: jax.Array, columns: int) -> jax.Array:
    """`fn` on row blocks of `x` `[N, ...]` sized so a block has <= BLOCK_VALUES values."""
    n = x.shape[0]
    block = max(1, min(n, BLOCK_VALUES // max(columns, 1)))
    pad = -n % block
    padded = jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)]) if pad else x
    out = jax.lax.map(fn, padded.reshape((-1, block) + x.shape[1:]))
    return out.reshape((-1,) + out.shape[2:])[:n]


def sample_means(x: jax.Array, samples: jax.Array, width: jax.Array) -> jax.Array:
    """(1/n) K_dm 1 of every component: `[N, D]`, `[K, n, D]` -> `[N, K]`."""
    k, n, d = samples.shape
    flat = samples.reshape(k * n, d)
    return _row_blocks(
        lambda xb: kernels.gaussian_kernel(xb, flat, width).reshape(-1, k, n).mean(-1), x, k * n)


def exact_ratio(x: jax.Array, samples: jax.Array, width: jax.Array, eps: float) -> jax.Array:
    """Eq. (1) solved exactly: `[N, D]` data, `[K, n, D]` samples -> `[N, K]` ratios."""
    n = x.shape[0]
    gram = kernels.gaussian_kernel(x, x, width) + n * eps * jnp.eye(n, dtype=x.dtype)
    factor = jax.scipy.linalg.cho_factor(gram, lower=True)
    return jax.scipy.linalg.cho_solve(factor, n * sample_means(x, samples, width))


def nystrom_ratio(x: jax.Array, samples: jax.Array, landmarks: jax.Array, width: jax.Array,
                  eps: float) -> jax.Array:
    """Eq. (1) with K_dd ~ Phi Phi^T on `landmarks` `[m, D]` (Woodbury solve) -> `[N, K]`."""
    n, m = x.shape[0], landmarks.shape[0]
    values, vectors = jnp.linalg.eigh(kernels.gaussian_kernel(landmarks, landmarks, width))
    keep = values > EIGEN_CUTOFF * values[-1]
    projection = vectors * jnp.where(keep, jax.lax.rsqrt(jnp.where(keep, values, 1.0)), 0.0)
    phi = _row_blocks(lambda xb: kernels.gaussian_kernel(xb, landmarks, width) @ projection,
                      x, m)
    ridge = n * eps
    rhs = n * sample_means(x, samples, width)
    inner = ridge * jnp.eye(m, dtype=x.dtype) + phi.T @ phi
    factor = jax.scipy.linalg.cho_factor(inner, lower=True)
    return (rhs - phi @ jax.scipy.linalg.cho_solve(factor, phi.T @ rhs)) / ridge


@functools.partial(jax.jit, static_argnames=("eps", "width_scale", "exact_max", "landmarks"))
def log_ratios(x: jax.Array, samples: jax.Array, key: jax.Array, eps: float,
               width_scale: float, exact_max: int, landmarks: int) -> jax.Array:
    """Log ratios `[N, K]` of the data `x` `[N, ...]` for each component's `samples`
    `[K, n, ...]`: exact when N <= `exact_max`, Nystrom on `landmarks` points beyond."""
    x = flatten(x)
    samples = flatten(samples.reshape((-1,) + samples.shape[2:])).reshape(
        samples.shape[:2] + (-1,))
    n = x.shape[0]
    median_key, landmark_key = jax.random.split(key)
    subset = x[jax.random.choice(median_key, n, (min(n, MEDIAN_POINTS),), replace=False)]
    width = width_scale * kernels.median_distance(subset)
    if n <= exact_max:
        ratio = exact_ratio(x, samples, width, eps)
    else:
        chosen = jax.random.choice(landmark_key, n, (min(n, landmarks),), replace=False)
        ratio = nystrom_ratio(x, samples, x[chosen], width, eps)
    return jnp.log(jnp.maximum(ratio, RATIO_FLOOR))


def approximation_error(x: jax.Array, samples: jax.Array, key: jax.Array, eps: float,
                        width_scale: float, landmarks: int) -> dict:
    """The Nystrom solve against the exact one on the same points `x` `[n, ...]`.

    Returns the relative L2 error of the ratios (over all points and
    components), the mean absolute error of the log ratios where the exact
    ratio exceeds 0.01, and the share of points whose best component agrees.
    """
    exact = np.asarray(log_ratios(x, samples, key, eps, width_scale, x.shape[0], landmarks))
    approx = np.asarray(log_ratios(x, samples, key, eps, width_scale, 0, landmarks))
    r_exact, r_approx = np.exp(exact), np.exp(approx)
    mass = r_exact > 0.01
    return {
        "points": int(x.shape[0]), "landmarks": int(min(landmarks, x.shape[0])),
        "relative_l2": float(np.linalg.norm(r_approx - r_exact) / np.linalg.norm(r_exact)),
        "log_mae": float(np.abs(approx - exact)[mass].mean()),
        "argmax_agreement": float(np.mean(exact.argmax(1) == approx.argmax(1))),
    }


@dataclasses.dataclass(frozen=True)
class KernelRatio(base.Untrained):
    """Eq. (1) for every component from fresh samples at each assignment pass.

    Nothing is trained: the state is an empty `Stack`.
    """

    gen_model: object
    kind: str = "kernel"
    # No batch scorer: the ratios come from one solve over all points.
    score = None

    def log_ratios(self, disc: Stack, gen: Stack, x: jax.Array, key: jax.Array) -> jax.Array:
        del disc
        c = self.config.ratio.kernel
        sample_key, solve_key = jax.random.split(key)
        samples = sampling.per_component(self.gen_model, gen, sample_key, c.samples)
        return log_ratios(points_lib.full(x), samples, solve_key, eps=float(c.eps),
                          width_scale=float(c.width), exact_max=int(c.exact_max),
                          landmarks=int(c.landmarks))


def make(config: ml_collections.ConfigDict, gen_model, data_shape: tuple[int, ...],
         mesh, stack_mode: str = "vmap") -> KernelRatio:
    del data_shape
    return KernelRatio(config=config, gen_model=gen_model, mesh=mesh)
