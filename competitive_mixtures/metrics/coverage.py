"""Coverage metric C of AdaGAN (Tolstikhin et al., 2017)."""

import numpy as np

from competitive_mixtures.metrics import kde


def coverage(model_samples, data, bandwidth: float | None = None,
             quantile: float = 0.05, grid=kde.DEFAULT_GRID, seed: int = 0,
             batch_size: int = 1024) -> dict:
    """Share of the data lying where the model puts most of its mass.

    The model samples are shuffled with `seed` and split in halves. A Gaussian
    KDE is fitted on the first half; if `bandwidth` is None it is selected on
    the second half with `kde.select_bandwidth`. The threshold t is the
    `quantile` of the KDE log-density over the second half, so that about
    `1 - quantile` of the model mass lies above t. The coverage is the share
    of `data` points whose log-density exceeds t.

    Args:
      model_samples: `[M, ...]` samples from the model.
      data: `[N, ...]` data points.
      bandwidth: kernel std; selected from `grid` when None.
      quantile: model mass left below the threshold.
      grid: candidate bandwidths used when `bandwidth` is None.
      seed: seed of the shuffle.
      batch_size: see `kde.kde_log_density`.

    Returns:
      Dict with `coverage` in [0, 1], `threshold` (log-density) and
      `bandwidth`.
    """
    fit, held_back = kde.split_samples(model_samples, seed)
    if bandwidth is None:
        bandwidth = kde.select_bandwidth(fit, held_back, grid, batch_size)
    held_back_density = kde.kde_log_density(held_back, fit, bandwidth,
                                            batch_size)
    threshold = float(np.quantile(held_back_density, quantile))
    data_density = kde.kde_log_density(data, fit, bandwidth, batch_size)
    return {
        'coverage': float(np.mean(data_density > threshold)),
        'threshold': threshold,
        'bandwidth': float(bandwidth),
    }
