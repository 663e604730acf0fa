"""Two-dimensional toy datasets with known modes.

All datasets are deterministic given a seed. Training and held-out points are
drawn from the same distribution with two independent random streams derived
from that seed.
"""

import dataclasses

import numpy as np

NAMES = ('gaussians', 'ring', 'grid')

# Skew of Locatello et al. (2018): x2 <- x2 + b * x1**2 - 100 * b.
_SKEW = 0.04
_SKEW_OFFSET = 100 * _SKEW


def _geometric_weights(num_modes, ratio):
    weights = ratio ** np.arange(num_modes)
    return weights / weights.sum()


# Mixtures before the skew. `stds` are per-axis standard deviations (diagonal
# covariances); `weights` are mixture proportions.
_GAUSSIAN_MIXTURES = {
    3: dict(
        centres=[(-6.0, 0.0), (6.0, 0.0), (0.0, 7.0)],
        stds=[(1.0, 1.0)] * 3,
        weights=np.full(3, 1.0 / 3),
    ),
    # Four isotropic modes and one mode elongated along x1 (std 4 vs. 0.5),
    # which the skew bends into an arc x2 = 3 + 0.04 * x1**2 above the others.
    5: dict(
        centres=[(-5.0, -7.0), (5.0, -7.0), (-5.0, 0.0), (5.0, 0.0),
                 (0.0, 7.0)],
        stds=[(1.0, 1.0)] * 4 + [(4.0, 0.5)],
        weights=np.full(5, 1.0 / 5),
    ),
    # 3x3 grid; mode j (row-major from the bottom-left) has weight
    # proportional to 0.7**j, so the last mode holds ~1.8% of the points.
    9: dict(
        centres=[(x1, x2) for x2 in (-7.0, 0.0, 7.0)
                 for x1 in (-7.0, 0.0, 7.0)],
        stds=[(1.0, 1.0)] * 9,
        weights=_geometric_weights(9, 0.7),
    ),
}

# Isotropic std of the (pre-skew) Gaussian modes, used for the 3-sigma test.
_GAUSSIAN_MODE_STD = 1.0


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A dataset with training and held-out splits.

    Attributes:
      x: float32 `[N, D]` training points.
      label: int32 `[N]` true mode of each point, -1 if unknown.
      heldout_x: float32 `[M, D]` held-out points.
      heldout_label: int32 `[M]` true mode of each held-out point.
      name: dataset name.
      centres: `[C, D]` mode centres in data space, or None.
      mode_std: isotropic mode std for the 3-sigma quality test, or None.
      first: `x` and `label` are the training rows `first`..`first + len(x) - 1`
        of `num_points` (a process's share, see `data.load`); 0 for all of them.
      total: N, the number of training points, when `x` holds a share only.
    """

    x: np.ndarray
    label: np.ndarray
    heldout_x: np.ndarray
    heldout_label: np.ndarray
    name: str
    centres: np.ndarray | None = None
    mode_std: float | None = None
    first: int = 0
    total: int | None = None

    @property
    def num_points(self) -> int:
        """N, the number of training points (of which `x` may hold a share)."""
        return self.x.shape[0] if self.total is None else self.total

    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of distinct known labels in the training split."""
        return int(np.unique(self.label[self.label >= 0]).size)


def _rngs(seed):
    train_seq, heldout_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(train_seq), np.random.default_rng(heldout_seq)


def _sample_mixture(rng, num_points, centres, stds, weights):
    """Samples a diagonal Gaussian mixture; returns `[N, D]` points, `[N]` labels."""
    label = rng.choice(len(weights), size=num_points, p=weights)
    noise = rng.standard_normal((num_points, centres.shape[1]))
    return centres[label] + stds[label] * noise, label


def _make_dataset(name, num_points, num_heldout, seed, centres, stds, weights,
                  transform=None, data_centres=None, mode_std=None):
    centres = np.asarray(centres, np.float64)
    stds = np.asarray(stds, np.float64)
    stds = np.broadcast_to(stds, centres.shape)
    weights = np.asarray(weights, np.float64)
    train_rng, heldout_rng = _rngs(seed)
    x, label = _sample_mixture(train_rng, num_points, centres, stds, weights)
    hx, hlabel = _sample_mixture(heldout_rng, num_heldout, centres, stds,
                                 weights)
    if transform is not None:
        x, hx = transform(x), transform(hx)
    if data_centres is None:
        data_centres = centres
    return Dataset(
        x=x.astype(np.float32),
        label=label.astype(np.int32),
        heldout_x=hx.astype(np.float32),
        heldout_label=hlabel.astype(np.int32),
        name=name,
        centres=np.asarray(data_centres, np.float32),
        mode_std=mode_std,
    )


def skew(x: np.ndarray) -> np.ndarray:
    """Applies `x2 <- x2 + 0.04 * x1**2 - 4` to `[N, 2]` points; returns `[N, 2]`."""
    x = np.array(x, dtype=np.float64, copy=True)
    x[:, 1] += _SKEW * np.square(x[:, 0]) - _SKEW_OFFSET
    return x


def gaussian_mixture(modes: int, num_points: int = 64000,
                     num_heldout: int = 10000, seed: int = 0) -> Dataset:
    """Skewed Gaussian mixture benchmark of Locatello et al. (2018).

    Points are drawn from a 2-D Gaussian mixture, then every point is mapped
    through `skew`. Mixtures (see `_GAUSSIAN_MIXTURES`):
      * 3 modes: centres (-6, 0), (6, 0), (0, 7), std 1, equal weights.
      * 5 modes: isotropic std-1 modes at (+-5, -7) and (+-5, 0), and one mode
        at (0, 7) with per-axis std (4, 0.5) that the skew bends into an arc;
        equal weights.
      * 9 modes: std-1 modes on the grid {-7, 0, 7}^2, mode j (row-major from
        the bottom-left, x1 varying fastest) has weight 0.7**j / sum_k 0.7**k.
    Centres above are before the skew; `Dataset.centres` holds their images.
    `Dataset.mode_std` is 1, the isotropic std before the skew (for the 5-mode
    arc it only describes the short axis).

    Args:
      modes: number of modes, one of 3, 5, 9.
      num_points: number of training points N.
      num_heldout: number of held-out points M.
      seed: random seed.

    Returns:
      A `Dataset` with `x` `[N, 2]` and `heldout_x` `[M, 2]`.
    """
    if modes not in _GAUSSIAN_MIXTURES:
        raise ValueError(
            f'modes must be one of {sorted(_GAUSSIAN_MIXTURES)}, got {modes}.')
    spec = _GAUSSIAN_MIXTURES[modes]
    centres = np.asarray(spec['centres'], np.float64)
    return _make_dataset(
        f'gaussians{modes}', num_points, num_heldout, seed,
        centres=centres, stds=spec['stds'], weights=spec['weights'],
        transform=skew, data_centres=skew(centres),
        mode_std=_GAUSSIAN_MODE_STD)


def ring(num_points: int = 64000, num_heldout: int = 10000, seed: int = 0,
         modes: int = 8, radius: float = 2.0, std: float = 0.02) -> Dataset:
    """Equal-weight isotropic Gaussians evenly spaced on a circle.

    Returns:
      A `Dataset` with `x` `[N, 2]`; label k is the mode at angle 2*pi*k/modes.
    """
    angles = 2 * np.pi * np.arange(modes) / modes
    centres = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return _make_dataset(
        'ring', num_points, num_heldout, seed, centres=centres, stds=std,
        weights=np.full(modes, 1.0 / modes), mode_std=std)


def grid(num_points: int = 64000, num_heldout: int = 10000, seed: int = 0,
         side: int = 5, spacing: float = 2.0, std: float = 0.05) -> Dataset:
    """Equal-weight isotropic Gaussians on a `side x side` grid centred at 0.

    With the defaults the centres are {-4, -2, 0, 2, 4}^2.

    Returns:
      A `Dataset` with `x` `[N, 2]`; label `side * i + j` is the mode at
      coordinates (c_i, c_j).
    """
    coords = (np.arange(side) - (side - 1) / 2) * spacing
    c1, c2 = np.meshgrid(coords, coords, indexing='ij')
    centres = np.stack([c1.ravel(), c2.ravel()], axis=1)
    num_modes = side * side
    return _make_dataset(
        'grid', num_points, num_heldout, seed, centres=centres, stds=std,
        weights=np.full(num_modes, 1.0 / num_modes), mode_std=std)


def load(name: str, **kwargs) -> Dataset:
    """Returns the dataset `name` (one of `NAMES`) built with `kwargs`."""
    if name == 'gaussians':
        return gaussian_mixture(**kwargs)
    if name == 'ring':
        return ring(**kwargs)
    if name == 'grid':
        return grid(**kwargs)
    raise ValueError(f'Unknown dataset {name!r}; expected one of {NAMES}.')
