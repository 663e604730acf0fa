"""Gaussian kernel density estimates and KDE log-likelihood."""

import math

import jax
import jax.numpy as jnp
import numpy as np

# Absolute kernel standard deviations searched by `select_bandwidth`.
DEFAULT_GRID = np.logspace(-2, 1, 16)


@jax.jit
def _log_density_chunk(points, samples, bandwidth):
    """Log-density of `[B, D]` points under the KDE of `[M, D]` samples; `[B]`."""
    # Explicit differences (rather than |a|^2 + |b|^2 - 2ab) stay accurate for
    # bandwidths far below the data scale; XLA fuses them into the reduction,
    # so only a [B, M] buffer is materialised.
    sq_dist = jnp.sum(
        jnp.square(points[:, None, :] - samples[None, :, :]), axis=-1)
    dim = points.shape[1]
    log_norm = (math.log(samples.shape[0])
                + 0.5 * dim * jnp.log(2 * jnp.pi * jnp.square(bandwidth)))
    return (jax.nn.logsumexp(-sq_dist / (2 * jnp.square(bandwidth)), axis=1)
            - log_norm)


def _flatten(x):
    x = np.asarray(x, np.float32)
    return x.reshape(x.shape[0], -1)


def kde_log_density(points, samples, bandwidth: float,
                    batch_size: int = 1024) -> np.ndarray:
    """Log-density of points under an isotropic Gaussian KDE.

    Args:
      points: `[Q, ...]` query points; trailing dimensions are flattened.
      samples: `[M, ...]` points the KDE is fitted on.
      bandwidth: kernel standard deviation.
      batch_size: number of query points per jitted chunk, which bounds the
        distance matrix to `[batch_size, M]`.

    Returns:
      float64 `[Q]` log-densities.
    """
    points = _flatten(points)
    samples = jnp.asarray(_flatten(samples))
    if points.shape[1] != samples.shape[1]:
        raise ValueError(
            f'Dimension mismatch: points {points.shape}, samples '
            f'{samples.shape}.')
    num_points = points.shape[0]
    batch_size = max(1, min(batch_size, num_points))
    # Padding the last chunk keeps one compiled shape for all chunks.
    num_chunks = -(-num_points // batch_size)
    padded = np.zeros((num_chunks * batch_size, points.shape[1]), np.float32)
    padded[:num_points] = points
    bandwidth = jnp.float32(bandwidth)
    out = [
        _log_density_chunk(padded[i * batch_size:(i + 1) * batch_size],
                           samples, bandwidth)
        for i in range(num_chunks)
    ]
    return np.asarray(jnp.concatenate(out), np.float64)[:num_points]


def select_bandwidth(fit_samples, val_samples, grid=DEFAULT_GRID,
                     batch_size: int = 1024) -> float:
    """Bandwidth in `grid` maximising the mean log-density of validation points.

    Args:
      fit_samples: `[M, ...]` points the KDE is fitted on.
      val_samples: `[V, ...]` validation points.
      grid: candidate absolute bandwidths.
      batch_size: see `kde_log_density`.

    Returns:
      The selected bandwidth.
    """
    scores = [
        np.mean(kde_log_density(val_samples, fit_samples, h, batch_size))
        for h in grid
    ]
    return float(np.asarray(grid)[int(np.nanargmax(scores))])


def split_samples(samples, seed: int = 0):
    """Shuffles `[M, ...]` samples and splits them into two halves."""
    samples = np.asarray(samples)
    perm = np.random.default_rng(seed).permutation(samples.shape[0])
    half = samples.shape[0] // 2
    return samples[perm[:half]], samples[perm[half:]]


def kde_log_likelihood(model_samples, heldout, grid=DEFAULT_GRID,
                       seed: int = 0, batch_size: int = 1024) -> dict:
    """Held-out log-likelihood of a sampler under a Gaussian KDE.

    Protocol: the model samples are shuffled with `seed` and split in halves.
    The bandwidth is the `grid` value maximising the mean log-density of the
    second half under the KDE of the first half; the held-out data are then
    scored under the KDE of the first half with that bandwidth.

    Args:
      model_samples: `[M, ...]` samples from the model.
      heldout: `[Q, ...]` held-out data.
      grid: candidate absolute bandwidths.
      seed: seed of the shuffle.
      batch_size: see `kde_log_density`.

    Returns:
      Dict with `log_likelihood` (mean over `heldout`), `bandwidth`,
      `num_samples` (M) and `bandwidth_grid`.
    """
    fit, val = split_samples(model_samples, seed)
    bandwidth = select_bandwidth(fit, val, grid, batch_size)
    log_density = kde_log_density(heldout, fit, bandwidth, batch_size)
    return {
        'log_likelihood': float(np.mean(log_density)),
        'bandwidth': bandwidth,
        'num_samples': int(np.asarray(model_samples).shape[0]),
        'bandwidth_grid': [float(h) for h in np.asarray(grid)],
    }
