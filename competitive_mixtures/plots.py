"""Figures written as PNG files into `workdir/figures/`."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# Scatter plots draw at most this many data points; more only blur the picture.
MAX_SCATTER_POINTS = 20000


def _colours(k: int):
    cmap = plt.get_cmap("tab10" if k <= 10 else "tab20")
    return [cmap(j % cmap.N) for j in range(k)]


def owners_and_samples(path: str, x: np.ndarray, owner: np.ndarray, samples: np.ndarray,
                       sample_component: np.ndarray, alpha: np.ndarray, title: str = "") -> str:
    """2-D data coloured by owning component (left), mixture samples by component (right).

    Args:
      x: `[N, 2]` data. owner: `[N]` int. samples: `[M, 2]`.
      sample_component: `[M]` int. alpha: `[K]` mixture weights.
    """
    k = alpha.shape[0]
    colours = _colours(k)
    rng = np.random.default_rng(0)
    keep = rng.permutation(len(x))[:MAX_SCATTER_POINTS]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5), sharex=True, sharey=True)
    for j in range(k):
        mine = keep[owner[keep] == j]
        axes[0].scatter(x[mine, 0], x[mine, 1], s=2, color=colours[j], alpha=0.5,
                        label=f"component {j}: {np.sum(owner == j)} points")
        drawn = samples[sample_component == j]
        axes[1].scatter(x[keep, 0], x[keep, 1], s=1, color="0.85") if j == 0 else None
        axes[1].scatter(drawn[:, 0], drawn[:, 1], s=2, color=colours[j], alpha=0.6,
                        label=f"g_{j}, alpha={alpha[j]:.3f}")
    axes[0].set_title("data, coloured by owner")
    axes[1].set_title("mixture samples (grey: data)")
    for ax in axes:
        ax.legend(markerscale=5, fontsize=7, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def counts_over_rounds(path: str, rounds: list[int], counts: list[list[int]]) -> str:
    """Points owned by each component after every round (stacked area)."""
    counts_arr = np.asarray(counts).T
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.stackplot(rounds, counts_arr, colors=_colours(counts_arr.shape[0]),
                 labels=[f"component {j}" for j in range(counts_arr.shape[0])])
    ax.set_xlabel("round (0 = pre-training)")
    ax.set_ylabel("points owned")
    ax.set_title("points per component over rounds")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str) -> str:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
