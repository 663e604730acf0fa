"""Mode coverage and sample quality for datasets with known mode centres."""

import numpy as np


def nearest_centre(samples, centres, batch_size: int = 8192):
    """Nearest centre of each sample.

    Args:
      samples: `[M, D]` points.
      centres: `[C, D]` mode centres.
      batch_size: samples per chunk, bounding memory to `[batch_size, C]`.

    Returns:
      int `[M]` index of the nearest centre and float `[M]` distance to it.
    """
    samples = np.asarray(samples, np.float64).reshape(len(samples), -1)
    centres = np.asarray(centres, np.float64).reshape(len(centres), -1)
    index = np.empty(samples.shape[0], np.int64)
    dist = np.empty(samples.shape[0], np.float64)
    for start in range(0, samples.shape[0], batch_size):
        chunk = samples[start:start + batch_size]
        sq_dist = np.sum(
            np.square(chunk[:, None, :] - centres[None, :, :]), axis=-1)
        idx = np.argmin(sq_dist, axis=1)
        index[start:start + len(chunk)] = idx
        dist[start:start + len(chunk)] = np.sqrt(
            sq_dist[np.arange(len(chunk)), idx])
    return index, dist


def mode_metrics(samples, centres, std: float, num_sigmas: float = 3.0,
                 min_count: int = 1) -> dict:
    """Number of modes covered and share of high-quality samples.

    A sample is high quality if it lies within `num_sigmas * std` (Euclidean)
    of its nearest centre. A mode is covered if at least `min_count`
    high-quality samples have it as nearest centre.

    Args:
      samples: `[M, D]` samples.
      centres: `[C, D]` mode centres.
      std: isotropic std of the modes.
      num_sigmas: quality radius in units of `std`.
      min_count: high-quality samples needed to cover a mode.

    Returns:
      Dict with `modes_covered`, `high_quality_share`, `num_modes` and
      `mode_counts` (`[C]` high-quality samples per mode).
    """
    num_modes = len(centres)
    index, dist = nearest_centre(samples, centres)
    high_quality = dist <= num_sigmas * std
    counts = np.bincount(index[high_quality], minlength=num_modes)
    return {
        'modes_covered': int(np.sum(counts >= min_count)),
        'high_quality_share': (float(np.mean(high_quality))
                               if len(high_quality) else 0.0),
        'num_modes': num_modes,
        'mode_counts': counts,
    }
